//! Line reading shared by the stdin and file inputs: one event per non-blank line, in batches.
//!
//! A line is never held whole past `max_event_bytes`: once it is longer, only a prefix is kept
//! and the rest is skipped up to the next line break, so one huge line costs bounded memory. The
//! prefix becomes an event that fails at step `limits`, with the line's real size.

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::SourceContext;
use crate::event::{Event, Position};

/// Most bytes of an oversized line kept for its dead letter.
pub(crate) const OVERSIZE_PREFIX: usize = 64 * 1024;

/// How a pump ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pumped {
    /// The reader is at end of input; every complete line read was sent.
    Eof,
    /// Shutdown was requested or the pipeline stopped taking events.
    Stopped,
}

/// The lines of one input: the line count and the line being read, across reads and batches.
pub(crate) struct Lines {
    source: Arc<str>,
    /// Number of the last line read (1-based; blank lines count).
    line: u64,
    /// The start of a line whose end is not read yet.
    partial: Vec<u8>,
    /// Bytes of the current line so far, once it is over the limit (only a prefix is kept).
    oversize: Option<u64>,
    max: usize,
}

impl Lines {
    /// Lines of `source` (a path, or `stdin`), none over `max` bytes held whole.
    pub(crate) fn new(source: Arc<str>, max: usize) -> Lines {
        Lines {
            source,
            line: 0,
            partial: Vec::new(),
            oversize: None,
            max,
        }
    }

    /// Starts over at line 1 (a file replaced at its path). A line left without its line break
    /// ended with the old file: it is returned as an event.
    pub(crate) fn restart(&mut self, ctx: &SourceContext) -> Option<Event> {
        let last = self.finish(ctx);
        self.line = 0;
        last
    }

    /// The line left without a line break at end of input, if any.
    pub(crate) fn finish(&mut self, ctx: &SourceContext) -> Option<Event> {
        if self.partial.is_empty() && self.oversize.is_none() {
            return None;
        }
        self.end_line(&[], ctx)
    }

    /// Adds `text` to the line being read, keeping at most `max` bytes of it, then only a prefix.
    fn extend(&mut self, text: &[u8]) {
        if let Some(total) = &mut self.oversize {
            *total += text.len() as u64;
            return;
        }
        if self.partial.len() + text.len() <= self.max {
            self.partial.extend_from_slice(text);
            return;
        }
        let total = (self.partial.len() + text.len()) as u64;
        let keep = OVERSIZE_PREFIX.min(self.max);
        if self.partial.len() < keep {
            let more = keep - self.partial.len();
            self.partial.extend_from_slice(&text[..more]);
        }
        self.partial.truncate(keep);
        self.partial.shrink_to_fit();
        self.oversize = Some(total);
    }

    /// Ends the current line with `rest` (its text up to the line break): the event, or None for
    /// a blank line.
    fn end_line(&mut self, rest: &[u8], ctx: &SourceContext) -> Option<Event> {
        self.line += 1;
        let position = Position::Line {
            source: self.source.clone(),
            line: self.line,
        };
        let ack = ctx.counted.ack(0, 0);
        if self.partial.is_empty() && self.oversize.is_none() && rest.len() <= self.max {
            // The common case: the whole line is in the read buffer, copied once.
            let text = trim_cr(rest);
            if blank(text) {
                return None;
            }
            return Some(Event::new(Bytes::copy_from_slice(text), position, ack));
        }
        self.extend(rest);
        let oversize = self.oversize.take();
        let mut text = std::mem::take(&mut self.partial);
        if oversize.is_none() {
            if text.last() == Some(&b'\r') {
                text.pop();
            }
            if blank(&text) {
                return None;
            }
        }
        let mut event = Event::new(Bytes::from(text), position, ack);
        event.oversize = oversize;
        Some(event)
    }

    /// Reads lines and sends them as events until end of input or shutdown. Blank lines are
    /// skipped but counted, so positions are real line numbers. At end of input a line without
    /// a line break is sent too when `ended` (the input cannot grow); otherwise it is kept, to be
    /// completed by the next pump.
    pub(crate) async fn pump<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut BufReader<R>,
        ctx: &SourceContext,
        ended: bool,
    ) -> std::io::Result<Pumped> {
        loop {
            let mut batch = ctx.intake.batch();
            let mut eof = false;
            // Wait for the first line; take more only while they are already buffered.
            while !ctx.intake.is_full(&batch) {
                if !batch.is_empty() && memchr::memchr(b'\n', reader.buffer()).is_none() {
                    break;
                }
                let available = tokio::select! {
                    biased;
                    _ = ctx.shutdown.cancelled() => {
                        // What was read is delivered; nothing more is read.
                        ctx.intake.send(batch).await;
                        return Ok(Pumped::Stopped);
                    }
                    read = reader.fill_buf() => read?.len(),
                };
                if available == 0 {
                    eof = true;
                    if ended {
                        batch.extend(self.finish(ctx));
                    }
                    break;
                }
                let buffered = reader.buffer();
                let used = match memchr::memchr(b'\n', buffered) {
                    Some(end) => {
                        if let Some(event) = self.end_line(&buffered[..end], ctx) {
                            batch.push(event);
                        }
                        end + 1
                    }
                    None => {
                        self.extend(buffered);
                        buffered.len()
                    }
                };
                reader.consume(used);
            }
            if !ctx.intake.send(batch).await {
                return Ok(Pumped::Stopped);
            }
            if eof {
                return Ok(Pumped::Eof);
            }
        }
    }
}

fn trim_cr(text: &[u8]) -> &[u8] {
    text.strip_suffix(b"\r").unwrap_or(text)
}

fn blank(text: &[u8]) -> bool {
    text.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Telemetry;
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    /// The events `text` gives, read through a buffer of `capacity` bytes (so lines span
    /// several fills) with lines of at most `max` bytes kept whole.
    async fn read(text: &[u8], capacity: usize, max: usize, ended: bool) -> Vec<Event> {
        let cx = crate::context::PipelineContext::new("lines", usize::MAX);
        let telemetry = Telemetry::new("lines");
        let (tx, mut rx) = mpsc::channel(1024);
        let shutdown = CancellationToken::new();
        let budget = cx.budget().clone();
        let intake =
            super::super::intake::Intake::new(tx, telemetry.clone(), budget, shutdown.clone(), 3);
        let ctx = SourceContext {
            counted: cx.ack_counter(),
            pipeline: cx,
            intake,
            telemetry,
            shutdown,
            max_event_bytes: max,
            drain_timeout: std::time::Duration::from_secs(1),
            link: None,
        };
        let mut reader = BufReader::with_capacity(capacity, text);
        let mut lines = Lines::new(Arc::from("t"), max);
        assert_eq!(
            lines.pump(&mut reader, &ctx, ended).await.unwrap(),
            Pumped::Eof
        );
        drop(ctx);
        let mut events = Vec::new();
        while let Some(batch) = rx.recv().await {
            events.extend(batch);
        }
        events
    }

    fn summary(events: &[Event]) -> Vec<(u64, String, Option<u64>)> {
        events
            .iter()
            .map(|e| match &*e.position {
                Position::Line { line, .. } => (
                    *line,
                    String::from_utf8_lossy(&e.payload).into_owned(),
                    e.oversize,
                ),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn lines_across_buffer_fills_with_blank_lines_and_crlf() {
        let text = b"first line\r\n\n  \nsecond, longer than the buffer\nthird";
        for capacity in [1, 4, 7, 64] {
            let events = read(text, capacity, 100, true).await;
            assert_eq!(
                summary(&events),
                [
                    (1, "first line".to_string(), None),
                    (4, "second, longer than the buffer".to_string(), None),
                    (5, "third".to_string(), None),
                ],
                "buffer of {capacity}"
            );
        }
    }

    #[tokio::test]
    async fn a_last_line_without_a_break_waits_unless_the_input_has_ended() {
        let events = read(b"one\ntwo", 4, 100, false).await;
        assert_eq!(summary(&events), [(1, "one".to_string(), None)]);
    }

    #[tokio::test]
    async fn lines_over_the_limit_keep_a_prefix_and_their_size() {
        // At the limit, one over it (inside one buffer fill and across several), and a line
        // whose end is the input's end.
        let text = b"12345678\n123456789\nabcdefghijklmnopqrstuvwxyz\nok\n0123456789";
        for capacity in [3, 64] {
            let events = read(text, capacity, 8, true).await;
            assert_eq!(
                summary(&events),
                [
                    (1, "12345678".to_string(), None),
                    (2, "12345678".to_string(), Some(9)),
                    (3, "abcdefgh".to_string(), Some(26)),
                    (4, "ok".to_string(), None),
                    (5, "01234567".to_string(), Some(10)),
                ],
                "buffer of {capacity}"
            );
        }
    }
}
