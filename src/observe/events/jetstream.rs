//! The JetStream input: messages read, acknowledgements sent and pull requests lost, counted on
//! the consumer's [`JetStreamSeries`]; setting the consumer up, pull requests ending, stopping.

use std::fmt::Display;

use metrics::{Counter, Gauge};

use super::{InternalEvent, RegisteredEvent};
use crate::observe::names;

/// A JetStream consumer's series, labelled once with the pipeline, the stream and the consumer.
pub struct JetStreamSeries {
    pending: Gauge,
    redelivered: Counter,
    acked: Counter,
    naked: Counter,
    in_progress: Counter,
    lost_pulls: Counter,
}

impl JetStreamSeries {
    /// The series of `consumer` on `stream`, read by `pipeline`.
    pub fn new(pipeline: &str, stream: &str, consumer: &str) -> JetStreamSeries {
        let labels = [
            ("pipeline", pipeline.to_string()),
            ("stream", stream.to_string()),
            ("consumer", consumer.to_string()),
        ];
        let acks = |kind: &'static str| {
            let mut l = labels.to_vec();
            l.push(("kind", kind.to_string()));
            metrics::counter!(names::JETSTREAM_ACKS_TOTAL, &l)
        };
        JetStreamSeries {
            pending: metrics::gauge!(names::JETSTREAM_PENDING, &labels),
            redelivered: metrics::counter!(names::JETSTREAM_REDELIVERED_TOTAL, &labels),
            acked: acks("ack"),
            naked: acks("nak"),
            in_progress: acks("in_progress"),
            lost_pulls: metrics::counter!(names::JETSTREAM_LOST_PULLS_TOTAL, &labels),
        }
    }

    /// Counts `event` on these series.
    pub fn emit(&self, event: impl RegisteredEvent<JetStreamSeries>) {
        event.emit(self);
    }
}

/// A message of the stream was read from a pull request.
pub struct MessageRead {
    /// Messages of the stream not yet delivered to the consumer, as the message says.
    pub pending: u64,
    /// Whether the server had delivered it before.
    pub redelivered: bool,
}

impl RegisteredEvent<JetStreamSeries> for MessageRead {
    fn emit(self, s: &JetStreamSeries) {
        s.pending.set(self.pending as f64);
        if self.redelivered {
            s.redelivered.increment(1);
        }
    }
}

/// The kinds of acknowledgement sent to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    /// `+ACK`: every event of the message is done.
    Ack,
    /// `-NAK`: deliver it again (after a backoff, or at once when stopping).
    Nak,
    /// `+WPI`: still being worked on.
    InProgress,
}

/// An acknowledgement of a message was sent.
pub struct AckSent(pub AckKind);

impl RegisteredEvent<JetStreamSeries> for AckSent {
    fn emit(self, s: &JetStreamSeries) {
        match self.0 {
            AckKind::Ack => s.acked.increment(1),
            AckKind::Nak => s.naked.increment(1),
            AckKind::InProgress => s.in_progress.increment(1),
        }
    }
}

/// Pull requests the server never finished: it restarted, or the connection dropped.
pub struct PullsLost {
    /// How many.
    pub count: usize,
}

impl RegisteredEvent<JetStreamSeries> for PullsLost {
    fn emit(self, s: &JetStreamSeries) {
        s.lost_pulls.increment(self.count as u64);
    }
}

/// The consumer could not be set up for a reason that may pass; setting up is tried again.
pub struct ConsumerNotReady<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// Why.
    pub error: &'a dyn Display,
}

impl InternalEvent for ConsumerNotReady<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, error = %self.error, "jetstream consumer not ready; retrying");
    }
}

/// The input stopped while setting the consumer up, before reading anything.
pub struct StoppedBeforeConsuming<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
}

impl InternalEvent for StoppedBeforeConsuming<'_> {
    fn emit(self) {
        tracing::info!(pipeline = %self.pipeline, "jetstream input stopped before it consumed");
    }
}

/// The consumer is set up: the input pulls messages.
pub struct Consuming<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The stream.
    pub stream: &'a str,
    /// The durable consumer.
    pub consumer: &'a str,
}

impl InternalEvent for Consuming<'_> {
    fn emit(self) {
        tracing::info!(pipeline = self.pipeline, stream = %self.stream, consumer = %self.consumer, "jetstream consuming");
    }
}

/// A pull request ended with a status other than expiry (the description says why).
pub struct PullEnded<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The status code.
    pub status: &'a dyn Display,
    /// The server's description.
    pub description: &'a str,
}

impl InternalEvent for PullEnded<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, status = %self.status, description = self.description, "jetstream pull request ended");
    }
}

/// A pull request could not be sent (the connection is down): pulling pauses.
pub struct PullNotSent<'a> {
    /// Why.
    pub error: &'a dyn Display,
}

impl InternalEvent for PullNotSent<'_> {
    fn emit(self) {
        tracing::debug!(error = %self.error, "jetstream pull request not sent");
    }
}

/// A message arrived on the pull inbox without a JetStream reply subject; it is ignored.
pub struct ReplyMissing<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The reply subject it had.
    pub reply: &'a dyn Display,
}

impl InternalEvent for ReplyMissing<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, reply = %self.reply, "message on the pull inbox without a JetStream reply subject; ignored");
    }
}

/// An acknowledgement could not be sent; the message will be redelivered, and the outputs
/// deduplicate it.
pub struct AckNotSent<'a> {
    /// Why.
    pub error: &'a dyn Display,
}

impl InternalEvent for AckNotSent<'_> {
    fn emit(self) {
        tracing::debug!(error = %self.error, "jetstream acknowledgement not sent");
    }
}

/// The server holds messages back until some are acknowledged: the outputs are asked to write
/// what they gather.
pub struct FlushAsked<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// Messages handed on and not yet settled.
    pub unsettled: usize,
}

impl InternalEvent for FlushAsked<'_> {
    fn emit(self) {
        tracing::debug!(pipeline = %self.pipeline, unsettled = self.unsettled, "jetstream input given no more until acknowledged; asking the outputs to write");
    }
}

/// Pull requests went unanswered: the consumer is looked up (and, unless bound, created) again.
pub struct PullsUnanswered<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The stream.
    pub stream: &'a str,
    /// The durable consumer.
    pub consumer: &'a str,
}

impl InternalEvent for PullsUnanswered<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, stream = %self.stream, consumer = %self.consumer, "jetstream pull requests unanswered; checking the consumer");
    }
}

/// The consumer could not be looked up again for a reason that may pass; pulling pauses.
pub struct ConsumerUnreachable<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// Why.
    pub error: &'a dyn Display,
}

impl InternalEvent for ConsumerUnreachable<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, error = %self.error, "jetstream consumer not reachable; retrying");
    }
}

/// The input stops with messages whose events are not all done: they are given back.
pub struct StoppingUnfinished<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// How many messages.
    pub unfinished: usize,
}

impl InternalEvent for StoppingUnfinished<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, unfinished = self.unfinished, "jetstream input stopping with unfinished messages; they will be redelivered");
    }
}

/// The last acknowledgements could not be flushed to the server as the input stopped.
pub struct AcksMayBeLost<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// Why.
    pub error: &'a dyn Display,
}

impl InternalEvent for AcksMayBeLost<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, error = %self.error, "jetstream acknowledgements may not have reached the server");
    }
}

#[cfg(test)]
mod tests {
    use super::super::{captured, emit};
    use super::*;

    #[test]
    fn reads_and_acknowledgements_count_on_the_consumer_s_series() {
        let seen = captured(|| {
            let s = JetStreamSeries::new("orders", "ORDERS", "sluice");
            s.emit(MessageRead {
                pending: 9,
                redelivered: false,
            });
            s.emit(MessageRead {
                pending: 8,
                redelivered: true,
            });
            s.emit(AckSent(AckKind::Ack));
            s.emit(AckSent(AckKind::Ack));
            s.emit(AckSent(AckKind::Nak));
            s.emit(AckSent(AckKind::InProgress));
            s.emit(PullsLost { count: 2 });
        });
        let labels = "pipeline=\"orders\",stream=\"ORDERS\",consumer=\"sluice\"";
        let expected = [
            format!("sluice_jetstream_acks_total{{{labels},kind=\"ack\"}} 2"),
            format!("sluice_jetstream_acks_total{{{labels},kind=\"in_progress\"}} 1"),
            format!("sluice_jetstream_acks_total{{{labels},kind=\"nak\"}} 1"),
            format!("sluice_jetstream_lost_pulls_total{{{labels}}} 2"),
            format!("sluice_jetstream_pending{{{labels}}} 8"),
            format!("sluice_jetstream_redelivered_total{{{labels}}} 1"),
        ];
        assert_eq!(seen.metrics, expected);
        assert!(seen.logs.is_empty(), "{:?}", seen.logs);
    }

    #[test]
    fn the_consumer_s_troubles_are_logged_with_the_pipeline() {
        let seen = captured(|| {
            emit(Consuming {
                pipeline: "orders",
                stream: "ORDERS",
                consumer: "sluice",
            });
            emit(PullEnded {
                pipeline: "orders",
                status: &409,
                description: "Consumer Deleted",
            });
            emit(StoppingUnfinished {
                pipeline: "orders",
                unfinished: 3,
            });
        });
        assert!(seen.metrics.is_empty(), "{:?}", seen.metrics);
        assert_eq!(
            seen.logs,
            [
                "INFO jetstream consuming pipeline=\"orders\" stream=ORDERS consumer=sluice",
                "WARN jetstream pull request ended pipeline=orders status=409 description=\"Consumer Deleted\"",
                "WARN jetstream input stopping with unfinished messages; they will be redelivered pipeline=orders unfinished=3",
            ]
        );
    }
}
