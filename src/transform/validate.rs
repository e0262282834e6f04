//! The `validate` step: an event whose payload a JSON Schema refuses fails, with its first
//! violations as the reason.

use std::path::{Path, PathBuf};

use jaq_json::{Num, Val};
use serde::Deserialize;
use serde_json::Value;

use super::error::{SchemaError, TransformError};
use super::step::{Record, Transform};
use crate::event::Position;

/// How many violations a failed event's reason lists.
const REASONS: usize = 3;

/// Longest description of one violation (it quotes the value, which may be large).
const MAX_REASON: usize = 200;

/// `validate: {schema_file: ...}`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateConfig {
    /// A JSON Schema file. Its `$schema` picks the draft (4, 6, 7, 2019-09 or 2020-12; 2020-12
    /// without one); `$ref`s to other files are resolved relative to it, never over the network.
    pub schema_file: PathBuf,
    /// A name for this step in errors, dead-letter headers and metrics.
    #[serde(default)]
    pub name: Option<String>,
}

impl ValidateConfig {
    /// Reads and compiles the schema: what `sluice check` and each worker do.
    pub fn compile(&self) -> Result<jsonschema::Validator, SchemaError> {
        let file = || self.schema_file.clone();
        let text = std::fs::read(&self.schema_file).map_err(|source| SchemaError::Read {
            file: file(),
            source,
        })?;
        let schema: Value =
            serde_json::from_slice(&text).map_err(|source| SchemaError::NotJson {
                file: file(),
                source,
            })?;
        jsonschema::options()
            .with_base_uri(base_uri(&self.schema_file))
            .build(&schema)
            .map_err(|e| SchemaError::Unusable {
                file: file(),
                reason: e.to_string(),
            })
    }
}

/// The `file://` URI of the schema, so that relative `$ref`s resolve beside it.
fn base_uri(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    format!("file://{}", absolute.display())
}

/// Passes records the schema accepts; fails the others.
pub struct Validate {
    validator: jsonschema::Validator,
}

impl Validate {
    /// A step checking records against `validator`.
    pub fn new(validator: jsonschema::Validator) -> Self {
        Validate { validator }
    }
}

impl Transform for Validate {
    fn apply(
        &self,
        record: Record,
        _source: &Position,
        out: &mut Vec<Record>,
    ) -> Result<(), TransformError> {
        let instance = json_value(&record.value);
        if self.validator.is_valid(&instance) {
            out.push(record);
            return Ok(());
        }
        let violations = self
            .validator
            .iter_errors(&instance)
            .take(REASONS)
            .map(|e| {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { "/".to_string() } else { at };
                let mut what = e.to_string();
                if what.len() > MAX_REASON {
                    let cut = (0..=MAX_REASON)
                        .rev()
                        .find(|i| what.is_char_boundary(*i))
                        .unwrap_or(0);
                    what.truncate(cut);
                    what.push_str("...");
                }
                format!("at {at}: {what}")
            })
            .collect();
        Err(TransformError::Refused { violations })
    }
}

/// A jq value as a JSON value (byte strings as text, numbers as JSON holds them).
fn json_value(val: &Val) -> Value {
    match val {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(Num::Int(i)) => Value::from(*i as i64),
        Val::Num(Num::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        Val::Num(n) => {
            let text = n.to_string();
            match serde_json::from_str::<serde_json::Number>(&text) {
                Ok(number) => Value::Number(number),
                Err(_) => Value::String(text),
            }
        }
        Val::TStr(s) | Val::BStr(s) => Value::String(String::from_utf8_lossy(s).into_owned()),
        Val::Arr(items) => Value::Array(items.iter().map(json_value).collect()),
        Val::Obj(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Val::TStr(s) | Val::BStr(s) => String::from_utf8_lossy(s).into_owned(),
                        other => other.to_string(),
                    };
                    (key, json_value(v))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::json_record;

    fn step(schema: &str) -> (Validate, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.json"), schema).unwrap();
        let config = ValidateConfig {
            schema_file: dir.path().join("s.json"),
            name: None,
        };
        (Validate::new(config.compile().unwrap()), dir)
    }

    fn run(step: &Validate, json: &str) -> Result<usize, TransformError> {
        let mut out = Vec::new();
        step.apply(json_record(json), &Position::Generated { seq: 0 }, &mut out)?;
        Ok(out.len())
    }

    const ORDER: &str = r#"{"type":"object","required":["id","qty"],"additionalProperties":false,
        "properties":{"id":{"type":"string"},"qty":{"type":"integer","minimum":1},
        "tags":{"type":"array","items":{"type":"string"}}}}"#;

    #[test]
    fn valid_events_pass_and_invalid_ones_fail_with_their_first_violations() {
        let (step, _dir) = step(ORDER);
        assert_eq!(run(&step, r#"{"id":"a","qty":2,"tags":["x"]}"#), Ok(1));
        let err = run(
            &step,
            r#"{"id":5,"qty":0,"tags":["x",3],"extra":1,"more":2}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("refused by the JSON Schema: at "), "{err}");
        assert_eq!(err.matches("; at ").count(), REASONS - 1, "{err}");
        let err = run(&step, r#"{"qty":1}"#).unwrap_err().to_string();
        assert!(err.contains("at /: \"id\" is a required property"), "{err}");
        let err = run(&step, r#"{"id":"a","qty":1,"tags":[3]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("at /tags/0: 3 is not of type \"string\""),
            "{err}"
        );
    }

    #[test]
    fn references_resolve_beside_the_schema_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("id.json"),
            r#"{"type":"string","minLength":2}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("s.json"),
            r#"{"type":"object","properties":{"id":{"$ref":"id.json"}}}"#,
        )
        .unwrap();
        let config = ValidateConfig {
            schema_file: dir.path().join("s.json"),
            name: None,
        };
        let step = Validate::new(config.compile().unwrap());
        assert_eq!(run(&step, r#"{"id":"ab"}"#), Ok(1));
        let err = run(&step, r#"{"id":"a"}"#).unwrap_err().to_string();
        assert!(err.contains("at /id"), "{err}");
    }

    #[test]
    fn a_schema_that_cannot_be_used_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let compile = |text: &str| {
            std::fs::write(dir.path().join("s.json"), text).unwrap();
            ValidateConfig {
                schema_file: dir.path().join("s.json"),
                name: None,
            }
            .compile()
            .err()
            .map(|e| e.to_string())
        };
        assert!(compile("{nope").unwrap().contains("is not JSON"));
        assert!(
            compile(r#"{"type": 5}"#)
                .unwrap()
                .contains("is not a usable JSON Schema")
        );
        let missing = ValidateConfig {
            schema_file: dir.path().join("missing.json"),
            name: None,
        };
        assert!(missing.compile().is_err());
    }
}
