//! The `jq` step: each output of the program becomes an event.

use super::error::TransformError;
use super::program::Program;
use super::step::{Record, Transform};
use crate::event::Position;

/// Runs a jq program; 0 outputs drop the event, n outputs fan out into n events.
pub struct Jq {
    program: Program,
    max_fanout: usize,
}

impl Jq {
    /// A step running `program`, stopping a run that emits more than `max_fanout` outputs.
    pub fn new(program: Program, max_fanout: usize) -> Self {
        Jq {
            program,
            max_fanout,
        }
    }
}

impl Transform for Jq {
    fn apply(
        &self,
        record: Record,
        source: &Position,
        out: &mut Vec<Record>,
    ) -> Result<(), TransformError> {
        let start = out.len();
        let limit = self.max_fanout;
        let mut value = None;
        let mut extra = Vec::new();
        // The first output reuses the record's metadata; later ones clone it.
        self.program
            .run(record.value.clone(), &record.meta(source), |v| {
                if value.is_none() {
                    value = Some(v);
                } else {
                    extra.push(v);
                }
                extra.len() < limit
            })?;
        let Some(first) = value else { return Ok(()) };
        for v in extra {
            out.push(record.with_value(v));
        }
        let mut record = record;
        record.value = first;
        out.insert(start, record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::json_record;
    use crate::transform::program::compile;

    fn record(json: &str) -> Record {
        Record {
            key: Some(bytes::Bytes::from_static(b"k")),
            headers: vec![("h".into(), bytes::Bytes::from_static(b"v"))],
            timestamp: Some(5),
            ..json_record(json)
        }
    }

    #[test]
    fn fanout_keeps_order_and_metadata() {
        let step = Jq::new(compile(".[]").unwrap(), 100);
        let mut out = Vec::new();
        step.apply(record("[1,2,3]"), &Position::Generated { seq: 0 }, &mut out)
            .unwrap();
        let got: Vec<String> = out.iter().map(|r| r.value.to_string()).collect();
        assert_eq!(got, ["1", "2", "3"]);
        assert!(out.iter().all(|r| r.key.as_deref() == Some(&b"k"[..])
            && r.headers.len() == 1
            && r.timestamp == Some(5)));
    }

    #[test]
    fn endless_output_stops_at_the_limit() {
        let step = Jq::new(compile("repeat(1)").unwrap(), 10);
        let mut out = Vec::new();
        step.apply(record("{}"), &Position::Generated { seq: 0 }, &mut out)
            .unwrap();
        assert_eq!(
            out.len(),
            11,
            "one over the limit, so the chain can report it"
        );
    }
}
