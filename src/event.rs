//! Event: payload bytes, key, headers, timestamp, where it came from, and its acknowledgement.

use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::delivery::{Ack, Cause, Failure};

/// Bytes counted against the in-flight budget for each event on top of its payload: about what
/// the event, its acknowledgement and its position take, so that tiny events are bounded too.
pub const EVENT_OVERHEAD: usize = 256;

/// Message headers in order; a name may repeat (Kafka and NATS both allow it).
pub type Headers = Vec<(String, Bytes)>;

/// Where an event was read from: enough to find it again and to say so in a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// Not from a readable position (generated events).
    Generated {
        /// Sequence number of the generated event, from 0.
        seq: u64,
    },
    /// A line of a file or of standard input.
    Line {
        /// The file path, or `stdin`.
        source: Arc<str>,
        /// 1-based line number.
        line: u64,
    },
    /// A Kafka record.
    Kafka {
        /// Topic.
        topic: Arc<str>,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
    },
    /// A NATS message; JetStream messages also carry their stream and sequence.
    Nats {
        /// Subject it was published to.
        subject: Arc<str>,
        /// JetStream stream name and stream sequence, when read from JetStream.
        stream: Option<(Arc<str>, u64)>,
    },
    /// An item of a request made to sluice (an HTTP request, a Lambda invocation).
    Request {
        /// What received it: `http`, `lambda` (a Lambda invocation) or `sqs` (an SQS message
        /// a Lambda function was invoked with).
        source: &'static str,
        /// The request's id: a number per HTTP request, a Lambda request or SQS message id.
        request: Arc<str>,
        /// 0-based index of the item within the request.
        index: u32,
    },
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Generated { seq } => write!(f, "generate:{seq}"),
            Position::Line { source, line } => write!(f, "{source}:{line}"),
            Position::Kafka {
                topic,
                partition,
                offset,
            } => write!(f, "kafka:{topic}/{partition}@{offset}"),
            Position::Nats {
                subject,
                stream: None,
            } => write!(f, "nats:{subject}"),
            Position::Nats {
                subject,
                stream: Some((stream, seq)),
            } => {
                write!(f, "jetstream:{stream}/{seq} ({subject})")
            }
            Position::Request {
                source,
                request,
                index,
            } => write!(f, "{source}:{request}#{index}"),
        }
    }
}

/// One event moving through a pipeline.
#[derive(Debug)]
pub struct Event {
    /// The payload, as read or as produced by the transforms.
    pub payload: Bytes,
    /// Message key (Kafka key; NATS has none unless set by a transform).
    pub key: Option<Bytes>,
    /// Headers.
    pub headers: Headers,
    /// Milliseconds since the Unix epoch, when known.
    pub timestamp: Option<i64>,
    /// Output topic or subject chosen for this event; `None` uses the output's default.
    pub destination: Option<Arc<str>>,
    /// Output partition chosen for this event (Kafka); `None` lets the output choose.
    pub partition: Option<i32>,
    /// Where the input this event derives from was read.
    pub position: Arc<Position>,
    /// The input's real size in bytes when it was over `max_event_bytes` and the input kept only
    /// a prefix of it as the payload (a line of stdin or a file): it fails at step `limits`.
    pub oversize: Option<u64>,
    /// Index of this event among those derived from the same input (fan-out), from 0: with
    /// `position` it names the event uniquely (JetStream `Nats-Msg-Id`).
    pub derived: u32,
    /// Completed once this event is delivered (or deliberately dropped).
    pub ack: Ack,
}

impl Event {
    /// A new event read at `position`, with no key, headers or timestamp. Its payload (plus
    /// [`EVENT_OVERHEAD`]) counts against the pipeline's in-flight byte budget until its input
    /// is finished.
    pub fn new(payload: Bytes, position: Position, ack: Ack) -> Self {
        Event::at(payload, Arc::new(position), ack)
    }

    /// [`Event::new`] with a position that may be shared with other events.
    pub fn at(payload: Bytes, position: Arc<Position>, ack: Ack) -> Self {
        ack.charge(payload.len() + EVENT_OVERHEAD);
        Event {
            payload,
            key: None,
            headers: Headers::new(),
            timestamp: None,
            destination: None,
            partition: None,
            position,
            oversize: None,
            derived: 0,
            ack,
        }
    }

    /// The first header with this name.
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// An event that could not be processed or delivered, and why: the original input for decode
/// and transform failures, the event as it was to be written for output failures.
#[derive(Debug)]
pub struct Failed {
    /// The event.
    pub event: Event,
    /// What went wrong.
    pub failure: Failure,
}

impl Failed {
    /// The output could not deliver `event`, for `reason`.
    pub fn at_output(event: Event, reason: impl Into<String>, cause: Cause) -> Failed {
        Failed {
            event,
            failure: Failure::at_output(reason, cause),
        }
    }
}

/// Bytes of a buffer that payloads are cut from.
const ARENA: usize = 64 * 1024;

/// One buffer that many payloads are cut from: one allocation per 64 KiB rather than one per
/// payload, and copies of a payload (an output keeps one while it publishes another) share a
/// count instead of each allocating one. A buffer is freed once every payload cut from it is
/// gone; events finish about in the order they were made, so few buffers are held.
#[derive(Default)]
pub struct Arena(BytesMut);

impl Arena {
    /// A payload holding a copy of `bytes`.
    pub fn copy(&mut self, bytes: &[u8]) -> Bytes {
        if self.0.capacity() < bytes.len() {
            self.0 = BytesMut::with_capacity(ARENA.max(bytes.len()));
        }
        self.0.extend_from_slice(bytes);
        self.0.split().freeze()
    }
}

/// Current time in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{Budget, Outcome, ack_channel};

    #[test]
    fn an_event_holds_its_payload_and_overhead_against_the_budget_until_done() {
        let budget = Arc::new(Budget::new(
            5 + EVENT_OVERHEAD,
            metrics::Gauge::noop(),
            metrics::Gauge::noop(),
        ));
        let (ch, _rx) = ack_channel(&budget, metrics::Histogram::noop());
        let e = Event::new(
            Bytes::from_static(b"12345"),
            Position::Generated { seq: 0 },
            ch.ack(0, 1),
        );
        assert!(budget.is_full(), "payload plus overhead is counted");
        let fork = e.ack.fork();
        e.ack.complete(Outcome::Delivered);
        assert!(budget.is_full(), "held until every derived event is done");
        fork.complete(Outcome::Delivered);
        assert!(!budget.is_full());
    }

    #[test]
    fn payloads_cut_from_an_arena_keep_their_bytes_across_buffers() {
        let mut arena = Arena::default();
        let mut kept = Vec::new();
        // Enough to fill several buffers, one payload larger than a buffer among them.
        for i in 0..3_000u32 {
            let text = match i {
                1_234 => "x".repeat(ARENA + 10),
                _ => format!(
                    "{{\"n\":{i},\"pad\":\"{}\"}}",
                    "p".repeat((i % 97) as usize)
                ),
            };
            let payload = arena.copy(text.as_bytes());
            let copy = payload.clone();
            drop(payload);
            kept.push((text, copy));
        }
        for (text, payload) in &kept {
            assert_eq!(payload.as_ref(), text.as_bytes());
        }
    }
}
