//! What goes wrong in Lambda mode: an invocation answered with an error (with the kind Lambda
//! reports), or Lambda mode ending.

use lambda_runtime::Diagnostic;

use super::shapes::ReadError;
use crate::source::submit::Refused;

/// Why an invocation is answered with an error: the event source then retries all of it.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The in-flight budget is used up, or there was no room in the pipeline in time.
    #[error("the pipeline is full; retry later")]
    Busy,
    /// The pipeline takes no more events (shutting down, or failed).
    #[error("the pipeline is stopping")]
    Closed,
    /// The payload is not a well-formed event of its shape.
    #[error("malformed {shape} event: {error}")]
    Malformed {
        /// The shape it was taken for.
        shape: &'static str,
        /// What is wrong with it.
        #[source]
        error: ReadError,
    },
    /// Not every record was delivered or dead-lettered before the deadline.
    #[error(
        "{failed} of {total} records failed and {unfinished} were unfinished at the deadline; the invocation is to be retried"
    )]
    NotDelivered {
        /// Records in the invocation.
        total: usize,
        /// Records something derived from was not delivered.
        failed: usize,
        /// Records not finished at the deadline.
        unfinished: usize,
    },
}

impl From<Refused> for InvocationError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Busy => InvocationError::Busy,
            Refused::Closed => InvocationError::Closed,
        }
    }
}

impl From<InvocationError> for Diagnostic {
    fn from(error: InvocationError) -> Diagnostic {
        let kind = match error {
            InvocationError::Busy => "Busy",
            InvocationError::Closed => "Closed",
            InvocationError::Malformed { .. } => "MalformedEvent",
            InvocationError::NotDelivered { .. } => "NotDelivered",
        };
        Diagnostic {
            error_type: format!("sluice.{kind}"),
            error_message: error.to_string(),
        }
    }
}

/// Why Lambda mode ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    /// Not running as a Lambda function: its environment is missing or wrong.
    #[error("not running as an AWS Lambda function: {0}")]
    Environment(String),
    /// Talking to the Lambda runtime API failed.
    #[error("the Lambda runtime API failed: {0}")]
    Runtime(String),
    /// The pipeline failed.
    #[error("the pipeline failed: {}", .0.join("; "))]
    Pipeline(Vec<String>),
}
