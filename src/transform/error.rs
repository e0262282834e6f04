//! What goes wrong in transform steps: building one from its config, or running it on an event.

use std::fmt;
use std::path::PathBuf;

use super::program::{CompileError, RunError};
use crate::codec::json::JsonError;
use crate::delivery::Step;

/// A program that does not compile: every error, shown as `at 4: ...; at 9: ...` (char offsets
/// into the program).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileErrors(pub Vec<CompileError>);

impl fmt::Display for CompileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "at {}: {}", e.offset, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for CompileErrors {}

/// Why a step could not be built from its config. Checking the file finds these first, so at
/// run time they mean the file changed underneath (a schema file) and are fatal.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A jq program of the step does not compile.
    #[error(transparent)]
    Program(#[from] CompileErrors),
    /// The `validate` step's schema cannot be read or used.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// A step of the chain that could not be built: shown as `transforms[1] (jq): at 3: ...`.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct ChainError {
    /// The step.
    pub step: Step,
    /// What is wrong with it.
    pub source: BuildError,
}

/// Why a step failed on an event. Always the event's fault (its content makes the program fail,
/// or gives a value the step cannot use): the same event fails the same way every time, so it
/// follows the error policy and is never retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// A `jq` or `filter` program failed.
    #[error(transparent)]
    Program(#[from] RunError),
    /// A `route` expression failed or gave a value its field cannot take.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The JSON Schema of a `validate` step refused the payload, for its first violations.
    #[error("refused by the JSON Schema: {}", .violations.join("; "))]
    Refused {
        /// Each violation as `at /path: what`.
        violations: Vec<String>,
    },
    /// One input made more events than `settings.max_fanout`.
    #[error("more than {max} events from one input (settings.max_fanout)")]
    Fanout {
        /// `settings.max_fanout`.
        max: usize,
    },
}

/// A field a route sets, as errors name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `destination`.
    Destination,
    /// `key`.
    Key,
    /// `partition`.
    Partition,
    /// `timestamp`.
    Timestamp,
    /// A header, by name.
    Header(String),
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Destination => f.write_str("destination"),
            Field::Key => f.write_str("key"),
            Field::Partition => f.write_str("partition"),
            Field::Timestamp => f.write_str("timestamp"),
            Field::Header(name) => write!(f, "header `{name}`"),
        }
    }
}

/// Why a route could not set a field from an event: its expression failed, or gave a value the
/// field cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The expression failed.
    #[error("{field}: {source}")]
    Failed {
        /// The field.
        field: Field,
        /// How the program failed.
        source: RunError,
    },
    /// The expression produced nothing.
    #[error("{field}: the expression produced no value")]
    NoValue {
        /// The field.
        field: Field,
    },
    /// A number or boolean for a text field could not be written as JSON.
    #[error("{field}: {source}")]
    Unwritable {
        /// The field.
        field: Field,
        /// Why.
        source: JsonError,
    },
    /// A text field (key, header) got an array or object.
    #[error("{field} must be a string, number, boolean or null, got {got}")]
    NotText {
        /// The field.
        field: Field,
        /// The kind of value it got.
        got: &'static str,
    },
    /// The destination got something else than a string or null.
    #[error("destination must be a string, got {got}")]
    NotString {
        /// The kind of value it got.
        got: &'static str,
    },
    /// An integer field (partition, timestamp) got something else.
    #[error("{field} must be an integer, got {got}")]
    NotInteger {
        /// The field.
        field: Field,
        /// The number, or the kind of value it got.
        got: String,
    },
    /// The partition is negative or too large.
    #[error("partition must be between 0 and {}, got {got}", i32::MAX)]
    PartitionRange {
        /// The partition it got.
        got: i64,
    },
    /// The timestamp is a string that is not an RFC 3339 time.
    #[error("timestamp `{text}` is not an RFC 3339 time: {reason}")]
    NotTime {
        /// The string.
        text: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The timestamp is a number that does not read as one.
    #[error("timestamp must be a number, got {got}")]
    NotNumber {
        /// The number as jq shows it.
        got: String,
    },
}

/// Why a schema file cannot be used, shown after its path.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// It cannot be read.
    #[error("{}: {source}", .file.display())]
    Read {
        /// The schema file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not JSON.
    #[error("{} is not JSON: {source}", .file.display())]
    NotJson {
        /// The schema file.
        file: PathBuf,
        /// Where the JSON is broken.
        source: serde_json::Error,
    },
    /// It is JSON, but not a JSON Schema the validator can compile.
    #[error("{} is not a usable JSON Schema: {reason}", .file.display())]
    Unusable {
        /// The schema file.
        file: PathBuf,
        /// What the validator says.
        reason: String,
    },
}
