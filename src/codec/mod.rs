//! Payload codecs: bytes to jq values and back, and the JSON envelope of local outputs.

use base64::Engine as _;
use bytes::Bytes;
use jaq_json::Val;
use serde::{Deserialize, Serialize};

use crate::event::Event;

pub mod avro;
mod avro_direct;
pub mod body;
mod fit;
mod json;
pub mod payloads;
mod plan;
pub mod protobuf;
mod resolve;
pub mod schema;
mod time;
pub mod wire;

use json::escape_into;
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

/// Why a payload could not be decoded or a value encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The payload is not valid JSON.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// A transform produced a value JSON cannot represent.
    #[error("result is not valid JSON: {0}")]
    NotJson(&'static str),
}

/// Decodes a payload for transforms. Strings without escapes share the payload's memory
/// instead of being copied out of it.
pub fn decode(codec: Codec, payload: &Bytes) -> Result<Val, CodecError> {
    match codec {
        Codec::Json => json::decode(payload),
        Codec::Raw => Ok(match std::str::from_utf8(payload) {
            Ok(_) => Val::utf8_str(payload.clone()),
            Err(_) => Val::byte_str(payload.clone()),
        }),
    }
}

/// Encodes a transform result as a payload.
pub fn encode(codec: Codec, val: &Val, out: &mut Vec<u8>) -> Result<(), CodecError> {
    match (codec, val) {
        (Codec::Raw, Val::TStr(s) | Val::BStr(s)) => {
            out.extend_from_slice(s);
            Ok(())
        }
        _ => write_json(val, out, 0),
    }
}

/// How local outputs (stdout, file) write an event.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The payload bytes, one event per line.
    #[default]
    Payload,
    /// A JSON object per line with the payload and its metadata (see [`write_envelope`]).
    Envelope,
}

/// Writes the envelope of an event, one JSON object on one line:
/// `{"payload": {...}, "key": "...", "headers": {"name": "value"}, "timestamp": 1700000000000,
/// "destination": "...", "source": "kafka:orders/0@42"}`. A payload that is JSON is embedded as
/// JSON; one that is other UTF-8 text is written as `payload_text`, anything else base64-encoded
/// as `payload_base64` (likewise `key` / `key_base64`). Absent fields are left out.
pub fn write_envelope(event: &Event, out: &mut Vec<u8>) {
    out.push(b'{');
    write_payload(&event.payload, out);
    if let Some(key) = &event.key {
        out.push(b',');
        match std::str::from_utf8(key) {
            Ok(s) => field_str(out, "key", s),
            Err(_) => field_str(
                out,
                "key_base64",
                &base64::engine::general_purpose::STANDARD.encode(key),
            ),
        }
    }
    if !event.headers.is_empty() {
        out.extend_from_slice(b",\"headers\":{");
        for (i, (name, value)) in event.headers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            field_str(out, name, &String::from_utf8_lossy(value));
        }
        out.push(b'}');
    }
    if let Some(ts) = event.timestamp {
        out.extend_from_slice(b",\"timestamp\":");
        out.extend_from_slice(itoa::Buffer::new().format(ts).as_bytes());
    }
    if let Some(dest) = &event.destination {
        out.push(b',');
        field_str(out, "destination", dest);
    }
    out.push(b',');
    field_str(out, "source", &event.position.to_string());
    out.push(b'}');
}

fn field_str(out: &mut Vec<u8>, name: &str, value: &str) {
    escape_into(name, out);
    out.push(b':');
    escape_into(value, out);
}

fn write_payload(payload: &[u8], out: &mut Vec<u8>) {
    let json = serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_ok();
    match std::str::from_utf8(payload) {
        Ok(_) if json && !payload.contains(&b'\n') => {
            out.extend_from_slice(b"\"payload\":");
            out.extend_from_slice(payload.trim_ascii());
        }
        Ok(_) if json => {
            // Multi-line JSON: written compact so the envelope stays on one line.
            out.extend_from_slice(b"\"payload\":");
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) {
                let _ = serde_json::to_writer(&mut *out, &v);
            }
        }
        Ok(text) => field_str(out, "payload_text", text),
        Err(_) => field_str(
            out,
            "payload_base64",
            &base64::engine::general_purpose::STANDARD.encode(payload),
        ),
    }
}

/// JSON text as a jq value and back, for the tests of the schema codecs.
#[cfg(test)]
pub(crate) mod tests_support {
    use jaq_json::Val;

    /// A record of every Avro type (also the end-to-end tests' schema).
    pub const AVRO_ALL: &str = include_str!("../../tests/schemas/all-types.avsc");

    /// `json` decoded as a JSON payload.
    pub fn val(json: &str) -> Val {
        super::decode(super::Codec::Json, &bytes::Bytes::from(json.to_string())).unwrap()
    }

    /// `v` written as JSON.
    pub fn json(v: &Val) -> String {
        let mut out = Vec::new();
        super::write_json(v, &mut out, 0).unwrap();
        String::from_utf8(out).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Ack;
    use crate::event::Position;
    use jaq_json::Num;

    fn roundtrip(input: &str) -> String {
        let v = decode(
            Codec::Json,
            &bytes::Bytes::copy_from_slice(input.as_bytes()),
        )
        .unwrap();
        let mut out = Vec::new();
        encode(Codec::Json, &v, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_roundtrip_keeps_order_and_values() {
        assert_eq!(
            roundtrip(r#"{"b":1,"a":[true,null,"x\"y\n"],"c":-2.5,"d":{}}"#),
            r#"{"b":1,"a":[true,null,"x\"y\n"],"c":-2.5,"d":{}}"#
        );
        assert_eq!(roundtrip(" 12345678901234567890 "), "12345678901234567890");
        assert_eq!(roundtrip(r#""\u00e9\ud83d\ude00""#), "\"é😀\"");
    }

    #[test]
    fn malformed_inputs_are_errors() {
        for bad in [
            "",
            "{",
            "{\"a\":1} x",
            "NaN",
            "[1,]",
            "{'a':1}",
            "\u{feff}{}",
            "# c\n{}",
        ] {
            assert!(
                matches!(
                    decode(Codec::Json, &bytes::Bytes::copy_from_slice(bad.as_bytes())),
                    Err(CodecError::MalformedJson(_))
                ),
                "{bad:?}"
            );
        }
        assert!(decode(Codec::Json, &bytes::Bytes::from_static(b"\xff\xfe")).is_err());
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(
            decode(Codec::Json, &bytes::Bytes::copy_from_slice(deep.as_bytes())).is_err(),
            "deep nesting must be refused, not overflow the stack"
        );
    }

    fn fields(names: &[&str]) -> Vec<Val> {
        names.iter().map(|n| Val::utf8_str(n.to_string())).collect()
    }

    #[test]
    fn decoding_some_fields_builds_those_and_refuses_what_decode_refuses() {
        let decode_json = |s: &str| decode(Codec::Json, &Bytes::copy_from_slice(s.as_bytes()));
        let some = |s: &str, names: &[&str]| {
            decode_fields(&Bytes::copy_from_slice(s.as_bytes()), &fields(names))
        };
        let doc = r#"{"a":1,"b":{"x":[1,"y"]},"c":"s\"t","d":null,"a":2,"st\u0061tus":5}"#;
        let full = decode_json(doc).unwrap();
        let picked = some(doc, &["b", "status", "a", "missing"]).unwrap();
        let Val::Obj(map) = &picked else {
            panic!("not an object: {picked}")
        };
        // Later duplicates win, escaped names match, absent names are absent.
        assert_eq!(map.len(), 3);
        for name in ["a", "b", "status"] {
            let Val::Obj(all) = &full else { panic!() };
            let k = Val::utf8_str(name.to_string());
            assert_eq!(map.get(&k), all.get(&k), "{name}");
        }
        assert_eq!(
            map.get(&Val::utf8_str("a".to_string())),
            Some(&Val::Num(Num::from_integral(2i64)))
        );
        // Anything but an object is decoded whole.
        for other in ["[1,{\"a\":2}]", "\"s\"", "3.5", "null", "true"] {
            assert_eq!(some(other, &["a"]), decode_json(other), "{other}");
        }
        // What decode refuses, in a field that is not built too, with the same reason.
        let deep = format!("{{\"a\":1,\"z\":{}{}}}", "[".repeat(200), "]".repeat(200));
        for bad in [
            r#"{"a":1,"z":1e400}"#,
            r#"{"a":1,"z":"\u00zz"}"#,
            "{\"a\":1,\"z\":\"tab\there\"}",
            r#"{"a":1,"z":[1,]}"#,
            r#"{"a":1,"z":01}"#,
            r#"{"a":1,"z":tru}"#,
            r#"{"a":1,"z":1} x"#,
            r#"{"a":1,"z":1"#,
            deep.as_str(),
        ] {
            let refused = decode_json(bad);
            assert!(refused.is_err(), "{bad}");
            assert_eq!(some(bad, &["a"]), refused, "{bad}");
        }
        let invalid_utf8 = Bytes::from_static(b"{\"a\":1,\"z\":\"\xff\"}");
        assert!(decode(Codec::Json, &invalid_utf8).is_err());
        assert_eq!(
            decode_fields(&invalid_utf8, &fields(&["a"])),
            decode(Codec::Json, &invalid_utf8)
        );
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut every: String = (0u8..0x80).map(char::from).collect();
        every.push_str("é😀\u{2028}\u{7f}");
        for s in [
            every.as_str(),
            "",
            "plain",
            "\"\\",
            "tail\n",
            "\u{1}x\u{1f}",
        ] {
            let mut out = Vec::new();
            escape_into(s, &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn strings_share_the_payload_unless_escaped() {
        let payload = Bytes::from(r#"{"plain":"abc","esc":"a\nb","k\u0041":[1,"x"]}"#.to_string());
        let v = decode(Codec::Json, &payload).unwrap();
        let Val::Obj(map) = &v else { panic!("{v}") };
        let inside = |b: &Bytes| payload.as_ptr_range().contains(&b.as_ptr());
        let (k, plain) = map.get_index(0).unwrap();
        assert!(
            matches!((k, plain), (Val::TStr(k), Val::TStr(p)) if inside(k) && inside(p) && &p[..] == b"abc")
        );
        assert!(
            matches!(map.get_index(1).unwrap().1, Val::TStr(e) if !inside(e) && &e[..] == b"a\nb")
        );
        assert!(matches!(map.get_index(2).unwrap().0, Val::TStr(k) if &k[..] == b"kA"));
        assert_eq!(
            v.to_string(),
            r#"{"plain":"abc","esc":"a\nb","kA":[1,"x"]}"#
        );
    }

    #[test]
    fn non_json_results_are_errors() {
        let mut out = Vec::new();
        assert!(write_json(&Val::Num(Num::Float(f64::NAN)), &mut out, 0).is_err());
        assert!(write_json(&Val::byte_str(Bytes::from_static(b"\xff")), &mut out, 0).is_err());
    }

    #[test]
    fn raw_codec_passes_bytes_through() {
        let v = decode(Codec::Raw, &bytes::Bytes::from_static(b"not json \xff")).unwrap();
        let mut out = Vec::new();
        encode(Codec::Raw, &v, &mut out).unwrap();
        assert_eq!(out, b"not json \xff");
    }

    #[test]
    fn envelope_has_payload_metadata_and_source() {
        let mut e = Event::new(
            Bytes::from_static(b"{bad"),
            Position::Line {
                source: "stdin".into(),
                line: 7,
            },
            Ack::untracked(),
        );
        e.key = Some(Bytes::from_static(b"\xff\x00"));
        e.headers.push((
            "sluice-error-reason".into(),
            Bytes::from_static(b"malformed JSON"),
        ));
        e.timestamp = Some(1700000000000);
        let mut out = Vec::new();
        write_envelope(&e, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["payload_text"], "{bad");
        assert_eq!(v["key_base64"], "/wA=");
        assert_eq!(v["headers"]["sluice-error-reason"], "malformed JSON");
        assert_eq!(v["timestamp"], 1700000000000i64);
        assert_eq!(v["source"], "stdin:7");
        assert!(v.get("payload").is_none());

        e.payload = Bytes::from_static(b"{\n  \"a\": [1, 2]\n}");
        let mut out = Vec::new();
        write_envelope(&e, &mut out);
        assert!(!out.contains(&b'\n'), "one line per event");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["payload"], serde_json::json!({"a": [1, 2]}));

        e.payload = Bytes::from_static(b"\xff");
        let mut out = Vec::new();
        write_envelope(&e, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["payload_base64"], "/w==");
    }
}
