//! What the schema formats share: numbers, text, bytes, decimals, dates and times read out of jq
//! values for encoding, the values decoders make of them, and why a value does not fit.

mod error;
pub mod fit;
pub mod time;

pub use error::FitError;
