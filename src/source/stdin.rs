//! The `stdin` input: one event per line of standard input.

use std::sync::Arc;

use serde::Deserialize;

use super::lines::Lines;
use super::{BuiltInput, InputSpec};
use super::{SourceContext, SourceError};
use crate::codec::Codec;
use crate::codec::CodecConfig;
use crate::config::Build;

/// Reads standard input line by line; blank lines are skipped. The pipeline ends at end of
/// input, after every event read is delivered.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StdinConfig {
    /// `json` (each line is a JSON document) or `raw` (each line is opaque text).
    #[serde(default)]
    pub codec: Codec,
}

impl InputSpec for StdinConfig {
    const KIND: &'static str = "stdin";
    type Built = StdinConfig;

    fn codec(&self) -> CodecConfig {
        super::component::line_codec(self.codec)
    }

    fn build(&self, _: Build<'_, '_>) -> Option<StdinConfig> {
        Some(self.clone())
    }
}

impl BuiltInput for StdinConfig {
    /// Reads stdin until end of input or shutdown.
    async fn run(self, ctx: SourceContext) -> Result<(), SourceError> {
        let mut reader = tokio::io::BufReader::with_capacity(256 * 1024, tokio::io::stdin());
        let mut lines = Lines::new(Arc::from("stdin"), ctx.max_event_bytes);
        lines
            .pump(&mut reader, &ctx, true)
            .await
            .map_err(|source| SourceError::Io {
                input: "stdin",
                path: None,
                source,
            })?;
        Ok(())
    }
}
