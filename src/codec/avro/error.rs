//! Why an Avro schema does not parse, a body does not read, or a value does not fit.

use crate::codec::value::FitError;

/// Why Avro failed. A schema that does not parse is the settings' fault when it is a schema
/// file, the event's when it is the schema a payload's id names; the rest are the event's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvroError {
    /// The schema's text is not a valid Avro schema.
    #[error("not a valid Avro schema: {0}")]
    Schema(String),
    /// The body does not read as its schema says.
    #[error("Avro body does not match its schema: {0}")]
    Mismatch(String),
    /// The body ends before its value does.
    #[error("Avro body of {0} bytes ends inside the value its schema describes")]
    Truncated(usize),
    /// Bytes after the value.
    #[error("{0} bytes left over after the Avro body")]
    LeftOver(usize),
    /// A field of the value does not fit; `path` names it (`.rec.x`, `.items[2]`).
    #[error("field {path}: {source}")]
    Field {
        /// Where the field is.
        path: String,
        /// Why it does not fit.
        source: Box<AvroError>,
    },
    /// The value fits the schema, but apache-avro does not write it.
    #[error("does not fit the Avro schema: {0}")]
    Datum(String),
    /// A number, text or bytes that do not fit the field's type.
    #[error(transparent)]
    Value(#[from] FitError),
    /// A value of a kind the schema node does not hold.
    #[error("{found} where the schema has {expected}")]
    Kind {
        /// What the value is ("a string").
        found: &'static str,
        /// What the schema node is ("record t.Inner", "long").
        expected: String,
    },
    /// Text that is not a UUID.
    #[error("`{text}` is not a UUID: {reason}")]
    NotUuid {
        /// The text.
        text: String,
        /// Why not.
        reason: String,
    },
    /// Bytes of the wrong size for a `fixed`.
    #[error("{len} bytes where fixed {name} holds {size}")]
    FixedSize {
        /// How many bytes the value has.
        len: usize,
        /// The fixed type's name.
        name: String,
        /// How many it holds.
        size: usize,
    },
    /// Text that is not a symbol of the enum.
    #[error("`{symbol}` is not a symbol of enum {name} ({})", .symbols.join(", "))]
    NotSymbol {
        /// The text.
        symbol: String,
        /// The enum's name.
        name: String,
        /// Its symbols.
        symbols: Vec<String>,
    },
    /// Text that is not a decimal, for a big decimal.
    #[error("`{text}` is not a decimal: {reason}")]
    NotBigDecimal {
        /// The text.
        text: String,
        /// Why not.
        reason: String,
    },
    /// The schema refers to a named type it does not define.
    #[error("the schema names {0} but does not define it")]
    Undefined(String),
    /// The value fits none of the union's branches; the reason for each, in order.
    #[error("{found} fits no branch of the union ({})", join(.reasons))]
    NoBranch {
        /// What the value is.
        found: &'static str,
        /// Why each branch refused it.
        reasons: Vec<AvroError>,
    },
    /// An object member the record does not have.
    #[error("record {record} has no field `{field}`")]
    NoField {
        /// The record's name.
        record: String,
        /// The member's name.
        field: String,
    },
    /// A record field the object lacks, without a default.
    #[error("missing, and the schema gives no default")]
    Missing,
    /// A field's default that is not a value of its type.
    #[error("the schema's default is not usable: {0}")]
    Default(String),
    /// A part of a duration out of its range.
    #[error("{part} {value} is not between 0 and 4294967295")]
    DurationPart {
        /// `months`, `days` or `milliseconds`.
        part: &'static str,
        /// The value.
        value: i64,
    },
    /// A member of a duration object that is not one of its parts.
    #[error("a duration has months, days and milliseconds, not `{0}`")]
    DurationMember(String),
}

fn join(reasons: &[AvroError]) -> String {
    let reasons: Vec<String> = reasons.iter().map(ToString::to_string).collect();
    reasons.join("; ")
}
