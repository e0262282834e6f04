//! Why a pipeline's schemas could not be set up when it starts: the output's resolved against
//! the Schema Registry, or the payloads' without one.

use crate::client::registry::{RegistryError, SchemaType};
use crate::codec::avro::AvroError;
use crate::codec::protobuf::ProtobufError;
use crate::delivery::ErrorKind;

/// Why the payloads' schemas could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The registry client could not be built.
    #[error(transparent)]
    Client(RegistryError),
    /// A format without a schema file or a registry (which loading refuses).
    #[error("no schema")]
    NoSchema,
    /// The registry failed to answer about a subject.
    #[error("subject `{subject}`: {source}")]
    Registry {
        /// The subject.
        subject: String,
        /// Why.
        source: RegistryError,
    },
    /// A subject's latest Avro schema does not parse.
    #[error("subject `{subject}`: {source}")]
    Avro {
        /// The subject.
        subject: String,
        /// Why.
        source: AvroError,
    },
    /// A Protobuf schema that does not compile, or lacks the message type.
    #[error(transparent)]
    Protobuf(#[from] ProtobufError),
    /// A subject that holds a schema of another kind.
    #[error("subject `{subject}` holds a {found:?} schema, not {wanted:?}")]
    WrongType {
        /// The subject.
        subject: String,
        /// What it holds.
        found: SchemaType,
        /// What the output writes.
        wanted: SchemaType,
    },
    /// A subject whose Protobuf schema imports other subjects.
    #[error("subject `{0}`'s schema imports other subjects, which outputs do not support")]
    Imports(String),
    /// A message type that the subject's schema imports instead of defining.
    #[error("{0} is not defined in the subject's schema itself")]
    NotInSubject(String),
    /// A schema file not registered under the subject, and `auto_register` not set.
    #[error(
        "schema_file is not registered under subject `{0}`: register it, or set `auto_register: true`"
    )]
    NotRegistered(String),
    /// A pipeline run without a registry that needs one.
    #[error("this pipeline's codec or format needs a Schema Registry")]
    NeedsRegistry,
    /// An output format whose schema only the registry has, run without it.
    #[error("the output's format has no schema")]
    NoOutputSchema,
}

impl SchemaError {
    /// Retriable when shutdown came while the registry was unavailable; fatal when the settings,
    /// or what the registry holds for them, are wrong.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SchemaError::Client(RegistryError::Stopped(_))
            | SchemaError::Registry {
                source: RegistryError::Stopped(_),
                ..
            } => ErrorKind::Retriable,
            _ => ErrorKind::Fatal,
        }
    }
}
