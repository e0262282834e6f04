//! Why a Protobuf schema does not compile, a body does not read, or a value does not fit.

use crate::codec::json::JsonError;

/// Why Protobuf failed. A schema that does not compile, or lacks the message type named, is the
/// settings' fault when it is a schema file, the event's when it is the schema a payload's id
/// names; the rest are the event's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// A schema file that could not be read.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Not a compiled descriptor set.
    #[error("not a valid Protobuf descriptor set: {0}")]
    DescriptorSet(String),
    /// `.proto` files that do not compile.
    #[error("cannot compile: {0}")]
    Compile(String),
    /// A registry schema that does not compile.
    #[error("the registry's Protobuf schema does not compile: {0}")]
    RegistryCompile(String),
    /// No message type of that name.
    #[error("no message type `{name}` in the schema (it has {})", .names.join(", "))]
    NoSuchMessage {
        /// The name asked for.
        name: String,
        /// The message types there are.
        names: Vec<String>,
    },
    /// A schema without message types.
    #[error("the schema has no message type")]
    NoMessages,
    /// A schema whose message type must be named.
    #[error("name the message type with `message` (the schema has {})", .names.join(", "))]
    Unnamed {
        /// The message types there are.
        names: Vec<String>,
    },
    /// A body that is not a message of the type.
    #[error("Protobuf body is not a {message}: {reason}")]
    NotMessage {
        /// The message type.
        message: String,
        /// Why.
        reason: String,
    },
    /// A well-known type's value that has no JSON form.
    #[error("{message}: {reason}")]
    WellKnown {
        /// The message type.
        message: String,
        /// Why.
        reason: String,
    },
    /// A well-known type's JSON form that is no jq value.
    #[error("{0}")]
    Json(String),
    /// A value that is not JSON, so not in the Protobuf JSON mapping.
    #[error(transparent)]
    NotJson(#[from] JsonError),
    /// A value that does not fit the message type.
    #[error("{0}")]
    Value(String),
    /// A field of the value that does not fit; `path` names it (`inner.name`).
    #[error("field .{path}: {reason}")]
    Field {
        /// Where the field is.
        path: String,
        /// Why it does not fit.
        reason: String,
    },
    /// A message that does not encode.
    #[error("encoding {message}: {reason}")]
    Encoding {
        /// The message type.
        message: String,
        /// Why.
        reason: String,
    },
}
