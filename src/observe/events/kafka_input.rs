//! The Kafka input: subscribing, partitions assigned and revoked, offsets committed, fetching
//! paused while the pipeline is full (on the consumer's [`KafkaInputSeries`]), consumer errors.

use std::fmt::Display;

use metrics::Gauge;

use super::{InternalEvent, RegisteredEvent};
use crate::observe::names;

/// A Kafka input's series, labelled once with the pipeline.
pub struct KafkaInputSeries {
    pipeline: String,
    paused: Gauge,
}

impl KafkaInputSeries {
    /// The series of the Kafka input of `pipeline`.
    pub fn new(pipeline: &str) -> KafkaInputSeries {
        KafkaInputSeries {
            pipeline: pipeline.to_string(),
            paused: metrics::gauge!(names::KAFKA_FETCH_PAUSED, "pipeline" => pipeline.to_string()),
        }
    }

    /// Logs `event` and counts it on these series.
    pub fn emit(&self, event: impl RegisteredEvent<KafkaInputSeries>) {
        event.emit(self);
    }
}

/// The pipeline has been full for a while: fetching pauses (the member keeps polling, and stays
/// in its group).
pub struct FetchPaused;

impl RegisteredEvent<KafkaInputSeries> for FetchPaused {
    fn emit(self, s: &KafkaInputSeries) {
        s.paused.set(1.0);
        tracing::debug!(pipeline = %s.pipeline, "pipeline full: fetching paused");
    }
}

/// The pipeline has room again: fetching resumes.
pub struct FetchResumed;

impl RegisteredEvent<KafkaInputSeries> for FetchResumed {
    fn emit(self, s: &KafkaInputSeries) {
        s.paused.set(0.0);
    }
}

/// The consumer subscribed to its topics.
pub struct Subscribed<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The topics.
    pub topics: &'a [String],
    /// The consumer group.
    pub group: &'a str,
}

impl InternalEvent for Subscribed<'_> {
    fn emit(self) {
        tracing::info!(pipeline = %self.pipeline, topics = ?self.topics, group = %self.group, "kafka consumer subscribed");
    }
}

/// The consumer left its group and closed.
pub struct ConsumerClosed<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
}

impl InternalEvent for ConsumerClosed<'_> {
    fn emit(self) {
        tracing::info!(pipeline = %self.pipeline, "kafka consumer closed");
    }
}

/// A partition was assigned to this member.
pub struct PartitionAssigned<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
}

impl InternalEvent for PartitionAssigned<'_> {
    fn emit(self) {
        tracing::info!(pipeline = %self.pipeline, topic = self.topic, partition = self.partition, "partition assigned");
    }
}

/// A partition was taken from this member, once its events in flight were waited for and
/// what was done committed.
pub struct PartitionRevoked<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The offset last committed, if any.
    pub committed: Option<u64>,
}

impl InternalEvent for PartitionRevoked<'_> {
    fn emit(self) {
        tracing::info!(pipeline = %self.pipeline, topic = %self.topic, partition = self.partition, committed = ?self.committed, "partition revoked");
    }
}

/// librdkafka reported a failed rebalance.
pub struct RebalanceError<'a> {
    /// What failed.
    pub error: &'a dyn Display,
}

impl InternalEvent for RebalanceError<'_> {
    fn emit(self) {
        tracing::warn!(error = %self.error, "rebalance error");
    }
}

/// Offsets were committed (or, for an asynchronous commit, sent).
pub struct OffsetsCommitted<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
}

impl InternalEvent for OffsetsCommitted<'_> {
    fn emit(self) {
        metrics::counter!(names::KAFKA_COMMITS_TOTAL, "pipeline" => self.pipeline.to_string())
            .increment(1);
    }
}

/// A commit was refused by the client; it is sent again.
pub struct OffsetCommitFailed<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// Why.
    pub error: &'a dyn Display,
}

impl InternalEvent for OffsetCommitFailed<'_> {
    fn emit(self) {
        metrics::counter!(names::KAFKA_COMMIT_ERRORS_TOTAL, "pipeline" => self.pipeline.to_string())
            .increment(1);
        tracing::warn!(pipeline = self.pipeline, error = %self.error, "offset commit failed; retrying");
    }
}

/// The broker refused an asynchronous commit (or a partition of it): the next commit sends
/// every partition's offset again.
pub struct AsyncCommitRefused<'a> {
    /// Why.
    pub error: &'a dyn Display,
}

impl InternalEvent for AsyncCommitRefused<'_> {
    fn emit(self) {
        tracing::warn!(error = %self.error, "offset commit failed; retrying at the next commit");
    }
}

/// The commit of a partition's offset could not be prepared.
pub struct CommitNotPrepared<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// Why.
    pub error: &'a dyn Display,
}

impl InternalEvent for CommitNotPrepared<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, error = %self.error, "cannot prepare commit");
    }
}

/// Partitions were given up (a rebalance, shutdown) before their events in flight were done:
/// those events are read again by whoever takes the partitions.
pub struct InFlightAbandoned<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// Inputs still in flight.
    pub in_flight: usize,
}

impl InternalEvent for InFlightAbandoned<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, in_flight = self.in_flight, "gave up waiting for in-flight events; they will be read again");
    }
}

/// The consumer's poll returned an error. A broker connection failure was logged by the client
/// already, so it is only logged at debug level here.
pub struct ConsumerError<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The error.
    pub error: &'a dyn Display,
    /// Whether it is a broker connection failure.
    pub connection: bool,
}

impl InternalEvent for ConsumerError<'_> {
    fn emit(self) {
        let (pipeline, error) = (self.pipeline, self.error);
        if self.connection {
            tracing::debug!(pipeline = %pipeline, error = %error, "kafka consumer error");
        } else {
            tracing::warn!(pipeline = %pipeline, error = %error, "kafka consumer error");
        }
    }
}

/// An acknowledgement arrived for an input that is not pending (its partition was revoked).
pub struct AckNotPending<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The lane (a partition's run of offsets).
    pub lane: u32,
    /// The input's id in its lane.
    pub id: u64,
}

impl InternalEvent for AckNotPending<'_> {
    fn emit(self) {
        tracing::debug!(pipeline = %self.pipeline, lane = self.lane, id = self.id, "acknowledgement for an input not pending");
    }
}

#[cfg(test)]
mod tests {
    use super::super::{captured, emit};
    use super::*;

    #[test]
    fn fetching_paused_shows_in_the_gauge_which_is_there_from_the_start() {
        let series = |events: &[bool]| {
            captured(|| {
                let s = KafkaInputSeries::new("orders");
                for &paused in events {
                    if paused {
                        s.emit(FetchPaused);
                    } else {
                        s.emit(FetchResumed);
                    }
                }
            })
        };
        let gauge = |v: u8| format!("sluice_kafka_fetch_paused{{pipeline=\"orders\"}} {v}");
        assert_eq!(series(&[]).metrics, [gauge(0)]);
        let paused = series(&[true]);
        assert_eq!(paused.metrics, [gauge(1)]);
        assert_eq!(
            paused.logs,
            ["DEBUG pipeline full: fetching paused pipeline=orders"]
        );
        assert_eq!(series(&[true, false]).metrics, [gauge(0)]);
    }

    #[test]
    fn commits_and_their_failures_are_counted_by_pipeline() {
        let seen = captured(|| {
            let pipeline = "orders";
            emit(OffsetsCommitted { pipeline });
            emit(OffsetsCommitted { pipeline });
            emit(OffsetCommitFailed {
                pipeline,
                error: &"coordinator not available",
            });
            emit(AsyncCommitRefused {
                error: &"rebalance in progress",
            });
            emit(PartitionRevoked {
                pipeline,
                topic: "orders",
                partition: 1,
                committed: Some(42),
            });
        });
        assert_eq!(
            seen.metrics,
            [
                "sluice_kafka_commit_errors_total{pipeline=\"orders\"} 1",
                "sluice_kafka_commits_total{pipeline=\"orders\"} 2",
            ]
        );
        assert_eq!(
            seen.logs,
            [
                "WARN offset commit failed; retrying pipeline=\"orders\" error=coordinator not available",
                "WARN offset commit failed; retrying at the next commit error=rebalance in progress",
                "INFO partition revoked pipeline=orders topic=orders partition=1 committed=Some(42)",
            ]
        );
    }
}
