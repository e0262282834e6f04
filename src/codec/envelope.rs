//! The JSON envelope local outputs (stdout, file) write an event in, when asked to.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::json::escape_into;
use crate::event::Event;

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
    use bytes::Bytes;

    use super::*;
    use crate::delivery::Ack;
    use crate::event::Position;

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
