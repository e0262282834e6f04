//! Avro bodies as jq values and back. Records and maps are objects, arrays arrays, a union is
//! its branch's value (untagged), an enum its symbol, `bytes` and `fixed` base64 text, decimals
//! exact numbers, dates, times and timestamps ISO 8601 text, durations `{months, days,
//! milliseconds}`, and non-finite floats the text `NaN`, `Infinity` or `-Infinity`. Encoding
//! takes the same values back, and also numbers for dates, times and timestamps (in the
//! schema's unit) and byte strings for `bytes` and `fixed`.

mod codec;
mod direct;
mod error;
mod schema;
#[cfg(test)]
mod tests;
mod to_avro;
mod to_val;

pub use codec::{AvroDecoder, AvroEncoder};
pub use error::AvroError;
pub use schema::AvroSchema;
