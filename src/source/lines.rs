//! Line reading shared by the stdin and file inputs: one event per non-blank line, in batches.

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{SourceContext, send};
use crate::event::{Event, Position};

/// How a pump ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pumped {
    /// The reader is at end of input; everything read was sent.
    Eof,
    /// Shutdown was requested or the pipeline stopped taking events.
    Stopped,
}

/// Reads lines and sends them as events until end of input or shutdown. Blank lines are skipped
/// but counted, so positions are real line numbers. `line` is the number of the last line read.
pub(crate) async fn pump<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    source: &Arc<str>,
    line: &mut u64,
    ctx: &SourceContext,
) -> std::io::Result<Pumped> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let mut batch = Vec::with_capacity(ctx.batch_size.min(1024));
        let mut eof = false;
        // Wait for the first line; take more only while they are already buffered.
        while batch.len() < ctx.batch_size {
            if !batch.is_empty() && !reader.buffer().contains(&b'\n') {
                break;
            }
            buf.clear();
            let n = tokio::select! {
                biased;
                _ = ctx.shutdown.cancelled() => {
                    // What was read is delivered; nothing more is read.
                    send(ctx, batch).await;
                    return Ok(Pumped::Stopped);
                }
                n = reader.read_until(b'\n', &mut buf) => n?,
            };
            if n == 0 {
                eof = true;
                break;
            }
            *line += 1;
            let mut text = &buf[..];
            if let Some(rest) = text.strip_suffix(b"\n") {
                text = rest.strip_suffix(b"\r").unwrap_or(rest);
            }
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let position = Position::Line {
                source: source.clone(),
                line: *line,
            };
            batch.push(Event::new(
                Bytes::copy_from_slice(text),
                position,
                ctx.counted.ack(0, 0),
            ));
        }
        if !send(ctx, batch).await {
            return Ok(Pumped::Stopped);
        }
        if eof {
            return Ok(Pumped::Eof);
        }
    }
}
