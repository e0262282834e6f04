//! The `stdout` output: one event per line on standard output.

use serde::Deserialize;
use tokio::sync::mpsc;

use super::deliver::{self, Attempt, Protocol};
use super::retry::Held;
use super::{LineWriter, SinkContext, SinkError, resolve_format};
use crate::codec::Format;
use crate::event::Event;

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

/// Writes batches until the channel closes.
pub async fn run(
    config: &StdoutConfig,
    rx: mpsc::Receiver<Vec<Event>>,
    ctx: SinkContext,
) -> Result<(), SinkError> {
    let format = resolve_format(config.format, &ctx);
    let writer = Stdout(LineWriter::new(format, tokio::io::stdout()));
    deliver::run(writer, rx, ctx).await
}

/// Standard output, written a batch at a time.
struct Stdout(LineWriter<tokio::io::Stdout>);

impl Protocol for Stdout {
    // A failed write is final: the output stops.
    const RETRIES: bool = false;

    async fn attempt(
        &mut self,
        batch: Vec<Held>,
        attempt: &mut Attempt,
        _ctx: &SinkContext,
    ) -> Result<(), SinkError> {
        // On failure the batch is dropped unconfirmed: its inputs count as failed.
        self.0.write(&batch).await.map_err(|e| SinkError::Write {
            output: "stdout",
            message: e.to_string(),
        })?;
        attempt.delivered_all(batch);
        Ok(())
    }
}
