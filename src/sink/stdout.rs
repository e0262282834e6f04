//! The `stdout` output: one event per line on standard output.

use super::Batches;
use serde::Deserialize;

use super::deliver::{self, AllOrNothing, WriteAll};
use super::retry::Held;
use super::{BuiltOutput, OutputSpec};
use super::{LineWriter, SinkContext, SinkError, resolve_format};
use crate::codec::Format;
use crate::config::Build;

/// Writes each event as a line on standard output. Events are confirmed once written and
/// flushed.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    /// `payload` (the payload bytes) or `envelope` (a JSON object with payload, key, headers,
    /// timestamp and source). Default: `payload`, or `envelope` for a dead-letter output.
    #[serde(default)]
    pub format: Option<Format>,
}

/// Standard output, written a batch at a time.
struct Stdout(LineWriter<tokio::io::Stdout>);

impl WriteAll for Stdout {
    async fn write_all(&mut self, batch: &[Held]) -> Result<(), SinkError> {
        self.0.write(batch).await.map_err(|source| SinkError::Io {
            output: "stdout",
            path: None,
            source,
        })
    }
}

impl OutputSpec for StdoutConfig {
    const KIND: &'static str = "stdout";
    type Built = StdoutConfig;

    fn build(&self, _: Build<'_, '_>) -> Option<StdoutConfig> {
        Some(self.clone())
    }
}

impl BuiltOutput for StdoutConfig {
    /// Writes batches until the channel closes.
    async fn run(self, rx: Batches, ctx: SinkContext) -> Result<(), SinkError> {
        let config = &self;
        let format = resolve_format(config.format, &ctx);
        let writer = Stdout(LineWriter::new(format, tokio::io::stdout()));
        deliver::run(AllOrNothing(writer), rx, ctx).await
    }
}
