//! Payload codecs: bytes to jq values and back, and the JSON envelope of local outputs.
//!
//! Each format has its own module, a folder for JSON, Avro and Protobuf ([`json`], [`avro`],
//! [`protobuf`]) and a file for opaque payloads ([`raw`]), whose decoder and encoder implement
//! the traits of [`format`]; `value` holds the rules the schema formats share for fitting
//! values. Where a schema comes from is [`schema`]'s: the settings, the checks when a pipeline
//! file loads, and the Schema Registry (its wire format, fetching schemas by id, resolving the
//! output's); it depends on the formats, not they on it. [`payloads`] wires a pipeline's input
//! and output to them: adding a format is adding its module and its variants of
//! [`payloads::Decoder`] and [`payloads::Encoder`] (and its settings in [`schema`]).

use bytes::Bytes;
use jaq_json::Val;
use serde::{Deserialize, Serialize};

use format::Encode;
use json::JsonError;

pub mod avro;
pub mod body;
mod envelope;
pub mod error;
pub mod format;
pub mod json;
pub mod payloads;
pub mod protobuf;
pub mod raw;
pub mod schema;
#[cfg(test)]
pub(crate) mod test_support;
mod value;
pub mod wire;

pub use envelope::{Format, write_envelope};
pub use json::{MAX_DEPTH, decode_fields, write_json};

/// How JSON and opaque payloads are handed to transforms.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    /// The payload is one JSON document; malformed JSON is a failed event.
    #[default]
    Json,
    /// The payload is opaque: transforms see it as one string (invalid UTF-8 as a byte string),
    /// and a string result is written back as-is.
    Raw,
}

/// `codec` of an input: what its payloads are.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodecConfig {
    /// One JSON document per payload; malformed JSON is a failed event.
    #[default]
    Json,
    /// Opaque payloads: transforms see each as one string (invalid UTF-8 as a byte string),
    /// and a string result is written back as-is.
    Raw,
    /// Avro, with the schema from a file or the Schema Registry:
    /// `avro: {registry: {url: ...}}` or `avro: {schema_file: order.avsc}`.
    Avro(schema::AvroCodecConfig),
    /// Protobuf, with the schema from a file or the Schema Registry:
    /// `protobuf: {registry: {url: ...}}` or `protobuf: {schema_file: order.proto, message: shop.Order}`.
    Protobuf(schema::ProtobufCodecConfig),
}

impl CodecConfig {
    /// How an input that splits request bodies into payloads treats them: as JSON documents,
    /// or as opaque bytes (Avro and Protobuf included).
    pub fn plain(&self) -> Codec {
        match self {
            CodecConfig::Json => Codec::Json,
            _ => Codec::Raw,
        }
    }

    /// The codec's name, as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            CodecConfig::Json => "json",
            CodecConfig::Raw => "raw",
            CodecConfig::Avro(_) => "avro",
            CodecConfig::Protobuf(_) => "protobuf",
        }
    }
}

/// Decodes a payload for transforms. Strings without escapes share the payload's memory
/// instead of being copied out of it.
pub fn decode(codec: Codec, payload: &Bytes) -> Result<Val, JsonError> {
    match codec {
        Codec::Json => json::decode(payload),
        Codec::Raw => Ok(raw::decode(payload)),
    }
}

/// Encodes a transform result as a payload.
pub fn encode(codec: Codec, val: &Val, out: &mut Vec<u8>) -> Result<(), JsonError> {
    match (codec, val) {
        (Codec::Raw, Val::TStr(s) | Val::BStr(s)) => {
            out.extend_from_slice(s);
            Ok(())
        }
        _ => write_json(val, out, 0),
    }
}

/// JSON, or strings as they are after a `raw` input.
impl Encode for Codec {
    type Error = JsonError;

    fn encode(&self, val: &Val, out: &mut Vec<u8>) -> Result<(), JsonError> {
        encode(*self, val, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_codec_reads_and_writes_json() {
        let v = decode(Codec::Json, &Bytes::from_static(b" {\"a\": [1, \"x\"]} ")).unwrap();
        let mut out = Vec::new();
        encode(Codec::Json, &v, &mut out).unwrap();
        assert_eq!(out, br#"{"a":[1,"x"]}"#);
        assert!(matches!(
            decode(Codec::Json, &Bytes::from_static(b"{")),
            Err(JsonError::MalformedJson(_))
        ));
    }

    #[test]
    fn raw_codec_passes_bytes_through() {
        let v = decode(Codec::Raw, &bytes::Bytes::from_static(b"not json \xff")).unwrap();
        let mut out = Vec::new();
        encode(Codec::Raw, &v, &mut out).unwrap();
        assert_eq!(out, b"not json \xff");
    }

    #[test]
    fn raw_results_that_are_not_strings_are_written_as_json() {
        let mut out = Vec::new();
        let v = decode(Codec::Json, &Bytes::from_static(b"[1]")).unwrap();
        encode(Codec::Raw, &v, &mut out).unwrap();
        assert_eq!(out, b"[1]");
    }
}
