//! The `stdout` output: one event per line on standard output.

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::deliver::{self, Attempt, Protocol};
use super::retry::Held;
use super::{SinkContext, SinkError, encode_lines, resolve_format};
use crate::codec::Format;
use crate::event::Event;

/// Writes each event as a line on standard output. Events are confirmed once written and
/// flushed.
#[derive(Debug, Clone, Default, Deserialize)]
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
    let writer = Lines {
        format: resolve_format(config.format, &ctx),
        out: tokio::io::stdout(),
        buf: Vec::with_capacity(256 * 1024),
    };
    deliver::run(writer, rx, ctx).await
}

/// Standard output, written a batch at a time.
struct Lines {
    format: Format,
    out: tokio::io::Stdout,
    buf: Vec<u8>,
}

impl Protocol for Lines {
    // A failed write is final: the output stops.
    const RETRIES: bool = false;

    async fn attempt(
        &mut self,
        batch: Vec<Held>,
        attempt: &mut Attempt,
        _ctx: &SinkContext,
    ) -> Result<(), SinkError> {
        self.buf.clear();
        encode_lines(batch.iter().map(|h| &h.event), self.format, &mut self.buf);
        let written = async {
            self.out.write_all(&self.buf).await?;
            self.out.flush().await
        };
        // On failure the batch is dropped unconfirmed: its inputs count as failed.
        written.await.map_err(|e| SinkError::Write {
            output: "stdout",
            message: e.to_string(),
        })?;
        batch.into_iter().for_each(|h| attempt.delivered(h.event));
        Ok(())
    }
}
