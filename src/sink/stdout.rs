//! The `stdout` output: one event per line on standard output.

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

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
    mut rx: mpsc::Receiver<Vec<Event>>,
    ctx: SinkContext,
) -> Result<(), SinkError> {
    let format = resolve_format(config.format, &ctx);
    let mut out = tokio::io::stdout();
    let mut buf = Vec::with_capacity(256 * 1024);
    while let Some(batch) = rx.recv().await {
        buf.clear();
        encode_lines(&batch, format, &mut buf);
        let written = async {
            out.write_all(&buf).await?;
            out.flush().await
        };
        // On failure the batch is dropped unconfirmed: its inputs count as failed.
        written.await.map_err(|e| SinkError::Write {
            output: "stdout",
            message: e.to_string(),
        })?;
        ctx.confirm(batch);
    }
    Ok(())
}
