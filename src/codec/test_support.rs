//! JSON text as a jq value and back, for the tests of the schema codecs.

use jaq_json::Val;

/// A record of every Avro type (also the end-to-end tests' schema).
pub const AVRO_ALL: &str = include_str!("../../tests/schemas/all-types.avsc");

/// `json` decoded as a JSON payload.
pub fn val(json: &str) -> Val {
    super::json::decode(&bytes::Bytes::from(json.to_string())).unwrap()
}

/// `v` written as JSON.
pub fn json(v: &Val) -> String {
    let mut out = Vec::new();
    super::json::write_json(v, &mut out, 0).unwrap();
    String::from_utf8(out).unwrap()
}
