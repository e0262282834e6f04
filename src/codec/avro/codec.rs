//! Avro bodies of one schema, decoded and encoded for the wiring.

use std::sync::Arc;

use bytes::Bytes;
use jaq_json::Val;

use super::error::AvroError;
use super::schema::AvroSchema;
use crate::codec::format::{Decode, Encode};

/// Reads bodies written with one schema: as a reader's schema when given (schema evolution),
/// and of the top-level record only the fields the worker's transforms read, when known.
#[derive(Debug, Clone)]
pub struct AvroDecoder {
    schema: Arc<AvroSchema>,
    /// The reader's schema, unless it is the same as the writer's.
    reader: Option<Arc<AvroSchema>>,
    /// Which fields of the top-level record to build.
    wanted: Option<Arc<[bool]>>,
}

impl AvroDecoder {
    /// Bodies written with `schema`, read as `reader` when given, of which the transforms read
    /// only the top-level `fields` when given.
    pub fn new(
        schema: Arc<AvroSchema>,
        reader: Option<&Arc<AvroSchema>>,
        fields: Option<&[Val]>,
    ) -> AvroDecoder {
        let reader = reader
            .filter(|r| r.canonical() != schema.canonical())
            .cloned();
        let wanted = match (&reader, fields) {
            (None, Some(fields)) => schema.wanted(fields).map(Arc::from),
            _ => None,
        };
        AvroDecoder {
            schema,
            reader,
            wanted,
        }
    }

    /// Reads `body`, which lies within `payload` (after a header, or the whole of it).
    pub fn read(&self, payload: &Bytes, body: &[u8]) -> Result<Val, AvroError> {
        self.schema.read(
            payload,
            body,
            self.reader.as_deref(),
            self.wanted.as_deref(),
        )
    }
}

impl Decode for AvroDecoder {
    type Error = AvroError;

    fn decode(&mut self, payload: &Bytes) -> Result<Val, AvroError> {
        self.read(payload, payload)
    }
}

/// Writes values as bodies of one schema.
#[derive(Debug, Clone)]
pub struct AvroEncoder {
    /// The schema.
    pub schema: Arc<AvroSchema>,
}

impl AvroEncoder {
    /// A decoder of what this encoder writes.
    pub fn decoder(&self) -> AvroDecoder {
        AvroDecoder::new(self.schema.clone(), None, None)
    }
}

impl Encode for AvroEncoder {
    type Error = AvroError;

    fn encode(&self, val: &Val, out: &mut Vec<u8>) -> Result<(), AvroError> {
        self.schema.encode(val, out)
    }
}
