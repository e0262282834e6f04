//! The `filter` step: keep events whose condition is true.

use super::error::TransformError;
use super::program::Program;
use super::step::{Record, Transform};
use crate::event::Position;
use jaq_json::Val;

/// Keeps a record when the program's first output is neither `false` nor `null`; drops it when
/// that output is falsy or there is none.
pub struct Filter {
    program: Program,
}

impl Filter {
    /// A step keeping records for which `program` is true.
    pub fn new(program: Program) -> Self {
        Filter { program }
    }
}

impl Transform for Filter {
    fn apply(
        &self,
        record: Record,
        source: &Position,
        out: &mut Vec<Record>,
    ) -> Result<(), TransformError> {
        let verdict = self
            .program
            .first(record.value.clone(), &record.meta(source))?;
        if matches!(verdict, Some(v) if !matches!(v, Val::Null | Val::Bool(false))) {
            out.push(record);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::json_record;
    use crate::transform::program::compile;

    fn keep(cond: &str, json: &str) -> Result<bool, TransformError> {
        let step = Filter::new(compile(cond).unwrap());
        let mut out = Vec::new();
        step.apply(json_record(json), &Position::Generated { seq: 0 }, &mut out)?;
        Ok(out.len() == 1)
    }

    #[test]
    fn truthiness_follows_jq() {
        assert!(keep(".status >= 500", r#"{"status":503}"#).unwrap());
        assert!(!keep(".status >= 500", r#"{"status":200}"#).unwrap());
        assert!(!keep(".missing", "{}").unwrap(), "null is false");
        assert!(keep(".n", r#"{"n":0}"#).unwrap(), "0 is true in jq");
        assert!(!keep("empty", "{}").unwrap(), "no output drops");
        assert!(
            keep(".a.b", r#"{"a":5}"#).is_err(),
            "a runtime error is an error, not a drop"
        );
    }
}
