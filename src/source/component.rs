//! What an input is to the pipeline: its configuration ([`InputSpec`]) says what it is and
//! builds it; the built input ([`BuiltInput`]) runs. The registry in `source/mod.rs` lists each
//! input once and dispatches to these two traits.

use super::{SourceContext, SourceError};
use crate::codec::{Codec, CodecConfig};
use crate::config::Build;

/// An input's configuration, as read from the pipeline file.
pub trait InputSpec {
    /// Its key under `input:`.
    const KIND: &'static str;
    /// Whether it talks to a broker or serves a port, and so has a state for readiness
    /// (connected, listening).
    const REMOTE: bool = false;
    /// What it builds into.
    type Built: BuiltInput;

    /// How its payloads are decoded.
    fn codec(&self) -> CodecConfig;

    /// Builds the input without connecting: everything that can be known without connecting is
    /// checked and what it runs with is prepared. Problems are reported under `b.path`
    /// (`input.kafka`); None when it cannot be built.
    fn build(&self, b: Build<'_, '_>) -> Option<Self::Built>;
}

/// A built input.
pub trait BuiltInput: std::fmt::Debug + Clone + Send + 'static {
    /// Reads until the input ends, `ctx.shutdown` is cancelled, or the pipeline stops taking
    /// events; each event's input is acknowledged only once its ack completes (see
    /// `docs/components.md`).
    fn run(self, ctx: SourceContext) -> impl Future<Output = Result<(), SourceError>> + Send;
}

/// The codec of an input that reads lines, which are JSON documents or opaque text.
pub fn line_codec(codec: Codec) -> CodecConfig {
    match codec {
        Codec::Json => CodecConfig::Json,
        Codec::Raw => CodecConfig::Raw,
    }
}
