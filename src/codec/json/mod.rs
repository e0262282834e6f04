//! JSON payloads: parsed into jq values (strings shared with the payload, only the fields a
//! chain reads built), and jq values written as strict JSON.

mod error;
mod read;
#[cfg(test)]
mod tests;
mod write;

pub use error::JsonError;
pub use read::{JsonDecoder, decode, decode_fields};
pub(crate) use write::escape_into;
pub use write::{MAX_DEPTH, write_json};
