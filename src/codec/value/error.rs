//! Why a jq value does not fit what a schema field holds.

/// Why a value does not fit a field: the event's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FitError {
    /// A value of the wrong kind: `found` is what it is, `wanted` what belongs there.
    #[error("{found} where {wanted}")]
    Misplaced {
        /// What the value is ("a string").
        found: &'static str,
        /// What belongs, with its verb ("an integer belongs").
        wanted: &'static str,
    },
    /// A number, or the text of one, with a fraction.
    #[error("`{0}` is not an integer")]
    NotInteger(String),
    /// An integer out of the field's range.
    #[error("{value} does not fit {range}")]
    Range {
        /// The integer.
        value: i128,
        /// The field's type ("an int (32 bits)").
        range: &'static str,
    },
    /// A number no float can hold.
    #[error("`{0}` is not a number")]
    NotNumber(String),
    /// Text that is not UTF-8.
    #[error("a string that is not UTF-8")]
    NotUtf8,
    /// An object key that is not text.
    #[error("{0} as an object key")]
    Key(&'static str),
    /// Text that is not base64 where bytes belong.
    #[error("a string that is not base64 where bytes belong")]
    NotBase64,
    /// A non-finite float (its text) where a decimal belongs.
    #[error("{0} is not a decimal")]
    NonFiniteDecimal(String),
    /// Text that is not a decimal number.
    #[error("`{0}` is not a decimal number")]
    NotDecimal(String),
    /// A decimal with more places than the field's scale.
    #[error("`{text}` has more than {scale} decimal places")]
    Places {
        /// The decimal's text.
        text: String,
        /// The field's scale.
        scale: usize,
    },
    /// A decimal with more digits than the field's precision.
    #[error("`{text}` has more than {precision} digits at scale {scale}")]
    Digits {
        /// The decimal's text.
        text: String,
        /// The field's precision.
        precision: usize,
        /// The field's scale.
        scale: usize,
    },
    /// Text that is not a date.
    #[error("`{text}` is not a date: {reason}")]
    NotDate {
        /// The text.
        text: String,
        /// Why not.
        reason: String,
    },
    /// Text that is not a time of day.
    #[error("`{text}` is not a time of day: {reason}")]
    NotTime {
        /// The text.
        text: String,
        /// Why not.
        reason: String,
    },
    /// Text that is not an RFC 3339 timestamp.
    #[error("`{text}` is not an RFC 3339 timestamp: {reason}")]
    NotTimestamp {
        /// The text.
        text: String,
        /// Why not.
        reason: String,
    },
    /// Text that is not a date and time (of a local timestamp).
    #[error("`{text}` is not a date and time: {reason}")]
    NotDateTime {
        /// The text.
        text: String,
        /// Why not.
        reason: String,
    },
    /// A date or time that is out of the range of the calendar.
    #[error("`{text}`: {reason}")]
    Calendar {
        /// The text.
        text: String,
        /// Why.
        reason: String,
    },
    /// A timestamp out of the range of the field's unit.
    #[error("`{0}` is out of range")]
    OutOfRange(String),
}
