//! Payloads in the Schema Registry's wire format, read with the schema their id names: fetched
//! once per process (the registry client caches it), made ready once per worker and id (here).
//! [`Registered`] is what each format adds: the schema type it reads, how a fetched schema is
//! made ready, and how a body is read with it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use bytes::Bytes;
use jaq_json::Val;

use super::fetch::Fetcher;
use crate::client::registry::{RegistryError, SchemaType};
use crate::codec::avro::{AvroDecoder, AvroSchema};
use crate::codec::error::DecodeError;
use crate::codec::format::Decode;
use crate::codec::protobuf::{self, ProtoSchema};
use crate::codec::wire::{self, WireError};

/// A format whose payloads name their schema by its registry id.
pub trait Registered {
    /// The kind of schema it reads.
    const TYPE: SchemaType;
    /// A schema fetched by id, ready to read bodies.
    type Ready: std::fmt::Debug;
    /// What a payload names after the schema id (Protobuf: its message type's indexes).
    type Path;

    /// The path at the start of what follows the schema id, and the body after it.
    fn path(rest: &[u8]) -> Result<(Self::Path, &[u8]), WireError>;

    /// Makes the schema `text` ready, with the `(import name, text)` of what it references.
    fn ready(
        &self,
        text: &str,
        references: &[(String, String)],
    ) -> Result<Self::Ready, DecodeError>;

    /// Reads `body`, which lies within `payload`, with the schema `id` made ready.
    fn read(
        ready: &Self::Ready,
        id: u32,
        path: Self::Path,
        payload: &Bytes,
        body: &[u8],
    ) -> Result<Val, DecodeError>;
}

/// Decodes wire-format payloads of one format: one per worker thread.
#[derive(Debug)]
pub struct RegistryDecoder<F: Registered> {
    fetcher: Fetcher,
    format: F,
    /// Schemas by id, made ready by this worker (or why they could not be: the event's fault).
    ready: HashMap<u32, Result<F::Ready, DecodeError>>,
}

impl<F: Registered> RegistryDecoder<F> {
    /// Payloads whose schemas `fetcher` fetches, read as `format` says.
    pub fn new(fetcher: Fetcher, format: F) -> RegistryDecoder<F> {
        RegistryDecoder {
            fetcher,
            format,
            ready: HashMap::new(),
        }
    }
}

impl<F: Registered> Decode for RegistryDecoder<F> {
    type Error = DecodeError;

    fn decode(&mut self, payload: &Bytes) -> Result<Val, DecodeError> {
        let (id, rest) = wire::split(payload)?;
        let (path, body) = F::path(rest)?;
        let ready = match self.ready.entry(id) {
            Entry::Occupied(ready) => ready.into_mut(),
            Entry::Vacant(slot) => slot.insert(fetch(&self.fetcher, &self.format, id)?),
        };
        let ready = ready.as_ref().map_err(Clone::clone)?;
        F::read(ready, id, path, payload, body)
    }
}

/// Schema `id` made ready; inside, an error for the event when the registry does not have it,
/// it is of another kind, or it is not ready; outside, the registry's failure.
fn fetch<F: Registered>(
    fetcher: &Fetcher,
    format: &F,
    id: u32,
) -> Result<Result<F::Ready, DecodeError>, DecodeError> {
    let schema = match fetcher.by_id(id) {
        Ok(schema) => schema,
        Err(RegistryError::NotFound(m)) => return Ok(Err(DecodeError::NotFound(m))),
        Err(e) => return Err(e.into()),
    };
    if schema.schema_type != F::TYPE {
        return Ok(Err(DecodeError::WrongType {
            id,
            found: schema.schema_type,
            wanted: F::TYPE,
        }));
    }
    let mut references = Vec::new();
    fetcher.references(&schema, &mut references)?;
    Ok(format
        .ready(&schema.schema, &references)
        .map_err(|e| e.at(id)))
}

/// Avro payloads: read as the reader's schema when there is one, and of the top-level record
/// only the fields the worker's transforms read, when known.
#[derive(Debug)]
pub struct RegisteredAvro {
    /// The reader's schema.
    pub reader: Option<Arc<AvroSchema>>,
    /// The only top-level fields the worker's transforms read, when they read only some.
    pub fields: Option<Vec<Val>>,
}

impl Registered for RegisteredAvro {
    const TYPE: SchemaType = SchemaType::Avro;
    type Ready = AvroDecoder;
    type Path = ();

    fn path(rest: &[u8]) -> Result<((), &[u8]), WireError> {
        Ok(((), rest))
    }

    fn ready(
        &self,
        text: &str,
        references: &[(String, String)],
    ) -> Result<AvroDecoder, DecodeError> {
        let texts: Vec<&str> = references.iter().map(|(_, text)| text.as_str()).collect();
        let schema = AvroSchema::parse(text, &texts)?;
        Ok(AvroDecoder::new(
            Arc::new(schema),
            self.reader.as_ref(),
            self.fields.as_deref(),
        ))
    }

    fn read(
        ready: &AvroDecoder,
        id: u32,
        (): (),
        payload: &Bytes,
        body: &[u8],
    ) -> Result<Val, DecodeError> {
        ready
            .read(payload, body)
            .map_err(|e| DecodeError::from(e).at(id))
    }
}

/// Protobuf payloads, whose message type their indexes name.
#[derive(Debug)]
pub struct RegisteredProtobuf;

impl Registered for RegisteredProtobuf {
    const TYPE: SchemaType = SchemaType::Protobuf;
    type Ready = ProtoSchema;
    type Path = Vec<usize>;

    fn path(rest: &[u8]) -> Result<(Vec<usize>, &[u8]), WireError> {
        wire::indexes(rest)
    }

    fn ready(
        &self,
        text: &str,
        references: &[(String, String)],
    ) -> Result<ProtoSchema, DecodeError> {
        Ok(ProtoSchema::from_registry(text, references)?)
    }

    fn read(
        ready: &ProtoSchema,
        id: u32,
        path: Vec<usize>,
        _: &Bytes,
        body: &[u8],
    ) -> Result<Val, DecodeError> {
        let Some(message) = ready.message_at(&path) else {
            return Err(DecodeError::NoMessage { id, path });
        };
        protobuf::decode(&message, body).map_err(|e| DecodeError::from(e).at(id))
    }
}
