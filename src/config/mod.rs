//! Reading configuration files: `${VAR}` interpolation, YAML with positions, the value types
//! every component's settings use, and errors reported at file:line:column.

pub mod vars;
pub mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use marked_yaml::{Node, Spanned};
use serde::{Deserialize, Deserializer};

/// A duration written with a unit: `250ms`, `5s`, `2m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Parses `<number><unit>` with unit one of `ms`, `s`, `m`, `h`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let value: f64 = number.parse().map_err(|_| {
            format!("invalid duration `{text}`: expected a number then a unit, like `5s`")
        })?;
        let seconds = match unit.trim() {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            "" => return Err(format!("duration `{text}` needs a unit: ms, s, m or h")),
            other => {
                return Err(format!(
                    "unknown duration unit `{other}` in `{text}`: use ms, s, m or h"
                ));
            }
        };
        Duration::try_from_secs_f64(seconds)
            .map(HumanDuration)
            .map_err(|_| format!("duration `{text}` is out of range"))
    }
}

impl schemars::JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration: a number and a unit, ms, s, m or h.",
            "pattern": "^\\s*[0-9.]+\\s*(ms|s|m|h)\\s*$",
            "examples": ["500ms", "30s", "5m"]
        })
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        HumanDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0.as_millis())
    }
}

/// A size in bytes, written as a number of bytes or with a unit: `512KiB`, `1MiB`, `2GiB`, `1MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl ByteSize {
    /// Parses `<number>[unit]`, unit one of `B`, `KB`, `MB`, `GB` (powers of 1000) or `KiB`,
    /// `MiB`, `GiB` (powers of 1024).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let value: u64 = number
            .parse()
            .map_err(|_| format!("invalid size `{text}`: expected a number, like `1MiB`"))?;
        let scale: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" => 1000,
            "MB" => 1000 * 1000,
            "GB" => 1000 * 1000 * 1000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            other => {
                return Err(format!(
                    "unknown size unit `{other}` in `{text}`: use B, KB, MB, GB, KiB, MiB or GiB"
                ));
            }
        };
        value
            .checked_mul(scale)
            .and_then(|b| usize::try_from(b).ok())
            .map(ByteSize)
            .ok_or_else(|| format!("size `{text}` is out of range"))
    }
}

impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A size: a number of bytes, or a number and a unit, B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^\\s*[0-9]+\\s*(B|KB|MB|GB|KiB|MiB|GiB)?\\s*$"}
            ],
            "examples": ["1MiB", "64MiB", 1048576]
        })
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, schemars::JsonSchema)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => usize::try_from(n)
                .map(ByteSize)
                .map_err(|_| serde::de::Error::custom(format!("size {n} is out of range"))),
            Raw::Text(t) => ByteSize::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Client properties passed through to the client library (librdkafka for Kafka). Values whose
/// name suggests a secret are never shown in logs or `Debug` output.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct ClientOptions(pub std::collections::BTreeMap<String, String>);

impl schemars::JsonSchema for ClientOptions {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ClientOptions".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // Values are read as text, so `fetch.wait.max.ms: 100` is as good as `"100"`.
        schemars::json_schema!({
            "type": "object",
            "description": "Client properties passed through to the client library (librdkafka for Kafka), by name.",
            "additionalProperties": {"type": ["string", "number", "boolean"]}
        })
    }
}

/// Whether a property name holds a secret (password, token, private key, client secret).
pub fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "key.pem",
        "private",
        "sasl.jaas",
        "credential",
    ]
    .iter()
    .any(|s| name.contains(s))
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                (
                    k,
                    if is_secret(k) {
                        "<redacted>"
                    } else {
                        v.as_str()
                    },
                )
            }))
            .finish()
    }
}

/// A secret string (password, token): never shown in logs or `Debug` output.
#[derive(Clone, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A configuration error at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The pipeline file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, in the file's terms.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// What building an input or output may need to know of its pipeline.
#[derive(Debug, Clone, Copy)]
pub struct BuildContext<'a> {
    /// The pipeline's name (client ids, logs).
    pub pipeline: &'a str,
    /// The pipeline's largest event (`settings.max_event_bytes`).
    pub max_event_bytes: usize,
}

/// What an input or output is built with: where in the file its configuration is (problems
/// are reported under `path`, as `output.kafka`), what it may know of its pipeline, and where
/// problems go.
pub struct Build<'a, 'v> {
    /// The component's place in the file, as `output.kafka`.
    pub path: &'a str,
    /// What it may know of its pipeline.
    pub cx: BuildContext<'a>,
    /// Where problems are reported.
    pub v: &'a mut Validator<'v>,
}

/// Collects semantic errors with positions in the file while walking a parsed config.
pub struct Validator<'a> {
    root: &'a Node,
    text: &'a vars::Interpolated,
    file: &'a Path,
    /// Errors found so far.
    pub errors: Vec<Diagnostic>,
}

impl<'a> Validator<'a> {
    /// A validator of the parsed tree `root` of `file`, whose text (after interpolation) is
    /// `text`.
    pub fn new(root: &'a Node, text: &'a vars::Interpolated, file: &'a Path) -> Self {
        Validator {
            root,
            text,
            file,
            errors: Vec::new(),
        }
    }

    /// Records an error at the node found by a dotted path (`transforms.2.jq`), or as near to it
    /// as the tree allows.
    pub fn error_at(&mut self, path: &str, message: impl Into<String>) {
        let steps = Self::steps(path);
        self.error_at_steps(&steps, message.into());
    }

    /// Records an error at the value of `key` in the mapping at the dotted `path`: for keys
    /// that contain dots themselves, like librdkafka property names.
    pub fn error_at_key(&mut self, path: &str, key: &str, message: impl Into<String>) {
        let mut steps = Self::steps(path);
        steps.push(yaml::Step::Key(key.to_string()));
        self.error_at_steps(&steps, message.into());
    }

    fn steps(path: &str) -> Vec<yaml::Step> {
        path.split('.')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .map_or_else(|_| yaml::Step::Key(s.to_string()), yaml::Step::Index)
            })
            .collect()
    }

    fn error_at_steps(&mut self, steps: &[yaml::Step], message: String) {
        let node = yaml::find(self.root, steps);
        let (line, column) = yaml::node_start(node).unwrap_or((1, 1));
        self.push(line, column, message);
    }

    /// Records an error at a position inside a spanned string value: `offset` is a char offset
    /// into the value (for example where a jq parse error is).
    pub fn error_in(&mut self, value: &Spanned<String>, offset: usize, message: impl Into<String>) {
        let (line, column) = yaml::start(value.span()).unwrap_or((1, 1));
        let (line, column) =
            yaml::position_in_scalar(&self.text.text, line, column, value.as_str(), offset);
        self.push(line, column, message.into());
    }

    fn push(&mut self, line: usize, column: usize, message: String) {
        let (line, column) = self.text.original_position(line, column);
        self.errors.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let mut o = ClientOptions::default();
        o.0.insert("sasl.password".into(), "hunter2".into());
        o.0.insert("sasl.username".into(), "app".into());
        let shown = format!("{o:?} {:?}", Secret("tok".into()));
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok\""),
            "{shown}"
        );
        assert!(shown.contains("app"));
    }

    #[test]
    fn durations() {
        assert_eq!(
            HumanDuration::parse("250ms").unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!(
            HumanDuration::parse("1.5s").unwrap().0,
            Duration::from_millis(1500)
        );
        assert_eq!(
            HumanDuration::parse("2m").unwrap().0,
            Duration::from_secs(120)
        );
        assert!(
            HumanDuration::parse("5")
                .unwrap_err()
                .contains("needs a unit")
        );
        assert!(
            HumanDuration::parse("5 parsecs")
                .unwrap_err()
                .contains("unknown duration unit")
        );
    }

    #[test]
    fn sizes() {
        let bytes = |t: &str| ByteSize::parse(t).map(|b| b.0);
        assert_eq!(bytes("1024"), Ok(1024));
        assert_eq!(bytes("512KiB"), Ok(512 * 1024));
        assert_eq!(bytes("1MiB"), Ok(1 << 20));
        assert_eq!(bytes("2 MB"), Ok(2_000_000));
        assert!(bytes("1.5MiB").unwrap_err().contains("unknown size unit"));
        assert!(bytes("MiB").unwrap_err().contains("invalid size"));
        assert!(
            bytes("99999999999GiB")
                .unwrap_err()
                .contains("out of range")
        );
    }
}
