//! Payload codecs: bytes to jq values and back, and the JSON envelope of local outputs.

use base64::Engine as _;
use bytes::Bytes;
use jaq_json::{Num, Val};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::event::Event;

/// How payload bytes are handed to transforms.
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

/// Deepest nesting written; deeper values come only from transforms and are refused.
pub const MAX_DEPTH: usize = 256;

/// Decodes a payload for transforms. Strings without escapes share the payload's memory
/// instead of being copied out of it.
pub fn decode(codec: Codec, payload: &Bytes) -> Result<Val, CodecError> {
    match codec {
        Codec::Json => json(Shared::whole(payload)),
        Codec::Raw => Ok(match std::str::from_utf8(payload) {
            Ok(_) => Val::utf8_str(payload.clone()),
            Err(_) => Val::byte_str(payload.clone()),
        }),
    }
}

/// [`decode`] of a JSON payload that builds, of a top-level object, only the members named in
/// `fields` (the others are parsed all the same, so what is refused, and why, does not change).
/// Any other payload is decoded whole.
pub fn decode_fields(payload: &Bytes, fields: &[Val]) -> Result<Val, CodecError> {
    json(Shared {
        payload,
        fields: Some(fields),
    })
}

/// Parses the payload of `seed` as one JSON document.
fn json(seed: Shared<'_, '_>) -> Result<Val, CodecError> {
    // serde_json is strict (no comments, NaN or trailing data) and limits nesting to 128.
    let mut de = serde_json::Deserializer::from_slice(seed.payload);
    let val = seed
        .deserialize(&mut de)
        .map_err(|e| CodecError::MalformedJson(e.to_string()))?;
    de.end()
        .map_err(|e| CodecError::MalformedJson(e.to_string()))?;
    Ok(val)
}

/// A member name of the top-level object: which of the wanted fields it is, if any.
struct Wanted<'f>(&'f [Val]);

impl<'de> DeserializeSeed<'de> for Wanted<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Wanted<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, name: &str) -> Result<Option<usize>, E> {
        Ok(self
            .0
            .iter()
            .position(|f| matches!(f, Val::TStr(s) if s.as_ref() == name.as_bytes())))
    }
}

/// Parses a JSON value as [`Shared`] does, checking it the same way, and builds nothing.
#[derive(Clone, Copy)]
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        Ok(())
    }

    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

/// Builds jq values from JSON as jaq-json's own deserializer does, except that a string read
/// straight from the payload becomes a slice of it (no allocation, no copy), and that of a
/// top-level object only the members named in `fields` are built, when given.
#[derive(Clone, Copy)]
struct Shared<'p, 'f> {
    payload: &'p Bytes,
    fields: Option<&'f [Val]>,
}

impl<'p> Shared<'p, '_> {
    /// A value built whole.
    fn whole(payload: &'p Bytes) -> Self {
        Shared {
            payload,
            fields: None,
        }
    }

    /// The seed of the values inside this one: built whole.
    fn inner(self) -> Self {
        Shared::whole(self.payload)
    }
}

impl<'de> DeserializeSeed<'de> for Shared<'_, '_> {
    type Value = Val;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Val, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Shared<'_, '_> {
    type Value = Val;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Val, E> {
        Ok(Val::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Val, E> {
        Ok(Val::Num(Num::from_integral(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Val, E> {
        Ok(Val::Num(Num::from_integral(v)))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Val, E> {
        Ok(Val::Num(Num::from_integral(v)))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Val, E> {
        Ok(Val::Num(Num::from_integral(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Val, E> {
        Ok(Val::Num(Num::Float(v)))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Val, E> {
        // Borrowed strings lie within the payload being parsed.
        Ok(Val::utf8_str(self.payload.slice_ref(v.as_bytes())))
    }

    fn visit_str<E>(self, v: &str) -> Result<Val, E> {
        Ok(Val::utf8_str(Bytes::copy_from_slice(v.as_bytes())))
    }

    fn visit_string<E>(self, v: String) -> Result<Val, E> {
        Ok(Val::utf8_str(v.into_bytes()))
    }

    fn visit_none<E>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Val, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_unit<E>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(self.inner())? {
            items.push(item);
        }
        Ok(items.into_iter().collect())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val, A::Error> {
        let inner = self.inner();
        let Some(fields) = self.fields else {
            let mut obj = jaq_json::Map::with_capacity_and_hasher(
                map.size_hint().unwrap_or(0).min(64),
                Default::default(),
            );
            while let Some(key) = map.next_key_seed(inner)? {
                let value = map.next_value_seed(inner)?;
                obj.insert(key, value);
            }
            return Ok(Val::obj(obj));
        };
        let mut obj = jaq_json::Map::with_capacity_and_hasher(fields.len(), Default::default());
        while let Some(wanted) = map.next_key_seed(Wanted(fields))? {
            match wanted {
                Some(i) => {
                    let value = map.next_value_seed(inner)?;
                    obj.insert(fields[i].clone(), value);
                }
                None => map.next_value_seed(Skip)?,
            }
        }
        Ok(Val::obj(obj))
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

/// Writes strict JSON: non-finite numbers, byte strings and non-string keys are errors.
pub fn write_json(val: &Val, out: &mut Vec<u8>, depth: usize) -> Result<(), CodecError> {
    if depth > MAX_DEPTH {
        return Err(CodecError::NotJson("nested deeper than 256 levels"));
    }
    match val {
        Val::Null => out.extend_from_slice(b"null"),
        Val::Bool(true) => out.extend_from_slice(b"true"),
        Val::Bool(false) => out.extend_from_slice(b"false"),
        Val::Num(n) => write_num(n, out)?,
        Val::TStr(s) => write_str(s, out),
        Val::BStr(_) => return Err(CodecError::NotJson("byte string")),
        Val::Arr(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(item, out, depth + 1)?;
            }
            out.push(b']');
        }
        Val::Obj(map) => {
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match k {
                    Val::TStr(s) => write_str(s, out),
                    _ => return Err(CodecError::NotJson("object key that is not a string")),
                }
                out.push(b':');
                write_json(v, out, depth + 1)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_num(n: &Num, out: &mut Vec<u8>) -> Result<(), CodecError> {
    use std::io::Write as _;
    match n {
        Num::Float(f) if !f.is_finite() => {
            return Err(CodecError::NotJson("NaN or infinite number"));
        }
        Num::Float(f) => out.extend_from_slice(ryu::Buffer::new().format_finite(*f).as_bytes()),
        Num::Dec(d) if d.parse::<f64>().is_ok_and(|f| f.is_finite()) => {
            out.extend_from_slice(d.as_bytes())
        }
        Num::Dec(_) => return Err(CodecError::NotJson("NaN or infinite number")),
        Num::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        other => {
            let _ = write!(out, "{other}");
        }
    }
    Ok(())
}

fn write_str(s: &[u8], out: &mut Vec<u8>) {
    match std::str::from_utf8(s) {
        Ok(s) => escape_into(s, out),
        Err(_) => escape_into(&String::from_utf8_lossy(s), out),
    }
}

/// Writes `s` as a JSON string, escaped as serde_json escapes: `"`, `\\` and the control
/// characters, short forms where JSON has them. Runs needing no escape are copied at once.
fn escape_into(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0x00..=0x1f => 0,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        if short == 0 {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.push(b'\\');
            out.push(short);
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Ack;
    use crate::event::Position;

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
