//! Opaque payloads: transforms see each as one string (invalid UTF-8 as a byte string). A string
//! result is written back as-is ([`super::encode`]).

use std::convert::Infallible;

use bytes::Bytes;
use jaq_json::Val;

use super::format::Decode;

/// Decodes opaque payloads; nothing is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawDecoder;

impl Decode for RawDecoder {
    type Error = Infallible;

    fn decode(&mut self, payload: &Bytes) -> Result<Val, Infallible> {
        Ok(decode(payload))
    }
}

/// The payload as a string, sharing its memory.
pub fn decode(payload: &Bytes) -> Val {
    match std::str::from_utf8(payload) {
        Ok(_) => Val::utf8_str(payload.clone()),
        Err(_) => Val::byte_str(payload.clone()),
    }
}
