//! What every payload format gives the wiring ([`super::payloads`]): a decoder, of which each
//! worker thread has its own, and an encoder. Both run once per event: the wiring holds them in
//! enums and calls them through these traits without boxing.

use bytes::Bytes;
use jaq_json::Val;

/// Reads payloads into jq values.
pub trait Decode {
    /// Why a payload was not read.
    type Error;

    /// Reads one payload. Strings may share its memory instead of being copied out of it.
    fn decode(&mut self, payload: &Bytes) -> Result<Val, Self::Error>;
}

/// Writes jq values as payloads.
pub trait Encode {
    /// Why a value was not written.
    type Error;

    /// Writes `val`, appending to `out`.
    fn encode(&self, val: &Val, out: &mut Vec<u8>) -> Result<(), Self::Error>;
}
