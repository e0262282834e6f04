//! Why a payload was not decoded or a result not encoded, as the wiring ([`super::payloads`])
//! reports it to the pipeline's workers, and what a caller does about it ([`ErrorKind`]).

use std::convert::Infallible;

use super::avro::AvroError;
use super::json::JsonError;
use super::protobuf::ProtobufError;
use super::wire::WireError;
use crate::client::registry::{RegistryError, SchemaType};
use crate::delivery::{Cause, ErrorKind};

/// Why a payload was not decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// Not an Avro body of its schema.
    #[error(transparent)]
    Avro(#[from] AvroError),
    /// Not a Protobuf body of its message type.
    #[error(transparent)]
    Protobuf(#[from] ProtobufError),
    /// Not in the Schema Registry's wire format.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The registry has no schema by the payload's id (the registry's words).
    #[error("{0}")]
    NotFound(String),
    /// The registry failed to give the payload's schema.
    #[error(transparent)]
    Registry(RegistryError),
    /// The payload's schema id names a schema of another kind.
    #[error("schema id {id} is a {found:?} schema, not {wanted:?}")]
    WrongType {
        /// The schema id.
        id: u32,
        /// Its kind.
        found: SchemaType,
        /// The input's kind.
        wanted: SchemaType,
    },
    /// The schema the payload's id names does not read it (or does not parse).
    #[error("schema id {id}: {source}")]
    Schema {
        /// The schema id.
        id: u32,
        /// Why.
        source: Box<DecodeError>,
    },
    /// The payload's message indexes name no message type of its schema.
    #[error("schema id {id} has no message type at indexes {path:?}")]
    NoMessage {
        /// The schema id.
        id: u32,
        /// The message indexes.
        path: Vec<usize>,
    },
    /// Shutdown came while the registry was unavailable (the registry client's reason).
    #[error("{0}")]
    Stopped(String),
}

impl DecodeError {
    /// What the worker does: refuses the event (the event's fault), or leaves it unfinished at
    /// shutdown (the Schema Registry was unavailable until then: retriable, it is read again).
    pub fn kind(&self) -> ErrorKind {
        match self {
            DecodeError::Stopped(_) => ErrorKind::Retriable,
            _ => ErrorKind::Refused(Cause::Event),
        }
    }

    /// `self` as the reason schema `id` gave.
    pub(crate) fn at(self, id: u32) -> DecodeError {
        DecodeError::Schema {
            id,
            source: Box::new(self),
        }
    }
}

impl From<RegistryError> for DecodeError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Stopped(m) => DecodeError::Stopped(m),
            RegistryError::NotFound(m) => DecodeError::NotFound(m),
            other => DecodeError::Registry(other),
        }
    }
}

impl From<Infallible> for DecodeError {
    fn from(e: Infallible) -> Self {
        match e {}
    }
}

/// Why a result was not encoded: always the event's fault ([`Cause::Event`]); the reason names
/// the field that does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Not representable as JSON.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// Does not fit the Avro schema.
    #[error(transparent)]
    Avro(#[from] AvroError),
    /// Does not fit the Protobuf message type.
    #[error(transparent)]
    Protobuf(#[from] ProtobufError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_unavailable_until_shutdown_is_retriable_a_bad_payload_refused() {
        let stopped = DecodeError::from(RegistryError::Stopped("unreachable".into()));
        assert_eq!(stopped.kind(), ErrorKind::Retriable);
        let missing = DecodeError::from(RegistryError::NotFound("no schema 7".into()));
        assert_eq!(missing.kind(), ErrorKind::Refused(Cause::Event));
        let wrong = DecodeError::WrongType {
            id: 7,
            found: SchemaType::Avro,
            wanted: SchemaType::Protobuf,
        };
        assert_eq!(wrong.kind(), ErrorKind::Refused(Cause::Event));
    }
}
