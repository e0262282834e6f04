//! What goes wrong in transform steps: building one from its config, or running it on an event.

use std::fmt;

use super::program::{CompileError, RunError};
use super::route::RouteError;
use super::validate::SchemaError;
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
