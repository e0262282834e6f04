//! Protobuf bodies as jq values and back. A message is an object keyed by the fields' names as
//! the `.proto` file spells them: fields without presence are always there (unset ones with
//! their default), fields with presence (messages, `oneof` members, `optional`) only when set.
//! Enums are their value's name (the number when the schema does not name it), 64-bit
//! integers exact numbers, `bytes` base64 text, non-finite floats the text `NaN`, `Infinity`,
//! `-Infinity`, and the well-known types as the Protobuf JSON mapping writes them
//! (`Timestamp` as RFC 3339 text, `Duration` as `"1.5s"`, wrappers as their value, `Struct`
//! and `Value` as JSON). Encoding takes values by the Protobuf JSON mapping, which also takes
//! these: field names in lowerCamelCase, enums by number, 64-bit integers as text.

mod codec;
mod error;
mod schema;
#[cfg(test)]
mod tests;
mod value;

pub use codec::{ProtobufDecoder, ProtobufEncoder};
pub use error::ProtobufError;
pub use schema::{ProtoSchema, load};
pub use value::{decode, encode};
