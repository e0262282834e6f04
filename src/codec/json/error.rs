//! Why a payload is not JSON, or a value cannot be written as JSON.

/// Why a payload could not be decoded as JSON or a value encoded as JSON: the event's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The payload is not valid JSON.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// A transform produced a value JSON cannot represent.
    #[error("result is not valid JSON: {0}")]
    NotJson(&'static str),
}
