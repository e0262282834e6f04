//! Local outputs writing events as lines (standard output, a file).

use super::SinkContext;
use super::retry;
use crate::codec::Format;
use crate::event::Event;

/// A local output writing events as lines (standard output, a file): one write and one flush
/// per batch.
pub(crate) struct LineWriter<W> {
    format: Format,
    /// Where the lines go.
    pub out: W,
    buf: Vec<u8>,
}

impl<W: tokio::io::AsyncWrite + Unpin> LineWriter<W> {
    /// Lines in `format` to `out`.
    pub fn new(format: Format, out: W) -> Self {
        LineWriter {
            format,
            out,
            buf: Vec::with_capacity(256 * 1024),
        }
    }

    /// Writes the events of `batch` as lines, and flushes.
    pub async fn write(&mut self, batch: &[retry::Held]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.buf.clear();
        encode_lines(batch.iter().map(|h| &h.event), self.format, &mut self.buf);
        self.out.write_all(&self.buf).await?;
        self.out.flush().await
    }
}

/// Writes a batch as lines in `format` into `buf`.
pub(crate) fn encode_lines<'a>(
    batch: impl IntoIterator<Item = &'a Event>,
    format: Format,
    buf: &mut Vec<u8>,
) {
    for e in batch {
        match format {
            Format::Payload => buf.extend_from_slice(&e.payload),
            Format::Envelope => crate::codec::write_envelope(e, buf),
        }
        buf.push(b'\n');
    }
}

/// The format of a local output: as configured, or by default the payload for outputs and the
/// envelope for dead letters (so the reason headers are not lost).
pub(crate) fn resolve_format(format: Option<Format>, ctx: &SinkContext) -> Format {
    format.unwrap_or(if ctx.dead_letter {
        Format::Envelope
    } else {
        Format::Payload
    })
}
