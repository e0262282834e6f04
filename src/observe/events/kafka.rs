//! Kafka clients (consumers and producers alike): brokers reachable or not, client errors,
//! librdkafka's own log lines, and the settings a user should know are in effect.

use std::fmt::{Debug, Display};

use tracing::Level;

use super::InternalEvent;
use crate::observe::names;

/// A client can reach the cluster again (or for the first time).
pub struct BrokersReachable<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// Which client (`consumer`, `producer`).
    pub client: &'static str,
}

impl InternalEvent for BrokersReachable<'_> {
    fn emit(self) {
        metrics::counter!(names::KAFKA_CONNECTS_TOTAL, "pipeline" => self.pipeline.to_string(), "client" => self.client)
            .increment(1);
        tracing::info!(pipeline = %self.pipeline, client = self.client, "kafka brokers reachable");
    }
}

/// A client can reach no broker of the cluster (librdkafka's "all brokers down").
pub struct BrokersUnreachable<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// Which client (`consumer`, `producer`).
    pub client: &'static str,
}

impl InternalEvent for BrokersUnreachable<'_> {
    fn emit(self) {
        metrics::counter!(names::KAFKA_DISCONNECTS_TOTAL, "pipeline" => self.pipeline.to_string(), "client" => self.client)
            .increment(1);
        tracing::warn!(pipeline = %self.pipeline, client = self.client, "no kafka broker reachable");
    }
}

/// A client-wide error reported by librdkafka.
pub struct ClientError<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// Which client (`consumer`, `producer`).
    pub client: &'static str,
    /// The error.
    pub error: &'a dyn Display,
    /// librdkafka's explanation.
    pub reason: &'a str,
}

impl InternalEvent for ClientError<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, client = self.client, error = %self.error, reason = self.reason, "kafka client error");
    }
}

/// A log line of librdkafka's, as a record of target `librdkafka` at `level` (which the client
/// translates from librdkafka's levels).
pub struct LibrdkafkaLog<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// Which client (`consumer`, `producer`).
    pub client: &'static str,
    /// The level it is logged at.
    pub level: Level,
    /// librdkafka's facility (`FAIL`, `REQTMOUT`, ...).
    pub fac: &'a str,
    /// The line.
    pub message: &'a str,
}

impl InternalEvent for LibrdkafkaLog<'_> {
    fn emit(self) {
        let (pipeline, client, fac, message) = (self.pipeline, self.client, self.fac, self.message);
        if self.level == Level::ERROR {
            tracing::error!(target: "librdkafka", pipeline = %pipeline, client, "{fac} {message}");
        } else if self.level == Level::WARN {
            tracing::warn!(target: "librdkafka", pipeline = %pipeline, client, "{fac} {message}");
        } else if self.level == Level::INFO {
            tracing::info!(target: "librdkafka", pipeline = %pipeline, client, "{fac} {message}");
        } else {
            tracing::debug!(target: "librdkafka", pipeline = %pipeline, client, "{fac} {message}");
        }
    }
}

/// `tls.insecure_skip_verify` is set on a Kafka client.
pub struct InsecureTls<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
}

impl InternalEvent for InsecureTls<'_> {
    fn emit(self) {
        tracing::warn!(
            pipeline = self.pipeline,
            "tls.insecure_skip_verify is set: Kafka brokers' certificates are not checked"
        );
    }
}

/// SASL PLAIN is used without TLS: the password crosses the network in the clear.
pub struct PlainWithoutTls<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
}

impl InternalEvent for PlainWithoutTls<'_> {
    fn emit(self) {
        tracing::warn!(
            pipeline = self.pipeline,
            "sasl PLAIN without tls: the password crosses the network unencrypted"
        );
    }
}

/// A log line of the client that reads the consumer lag (the consumer's own client reports the
/// brokers' state, so these are only for debugging).
pub struct LagClientLog<'a> {
    /// librdkafka's level.
    pub level: &'a dyn Debug,
    /// librdkafka's facility.
    pub fac: &'a str,
    /// The line.
    pub message: &'a str,
}

impl InternalEvent for LagClientLog<'_> {
    fn emit(self) {
        let (level, fac, message) = (self.level, self.fac, self.message);
        tracing::debug!(?level, fac, message, "kafka lag client");
    }
}

/// An error of the client that reads the consumer lag (only for debugging, as its log lines).
pub struct LagClientError<'a> {
    /// The error.
    pub error: &'a dyn Display,
    /// librdkafka's explanation.
    pub reason: &'a str,
}

impl InternalEvent for LagClientError<'_> {
    fn emit(self) {
        tracing::debug!(error = %self.error, reason = self.reason, "kafka lag client");
    }
}

/// The consumer lag could not be read this time: the committed offsets (`partition` None) or a
/// partition's watermarks.
pub struct LagUnread<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The partition whose watermarks could not be read; None for the committed offsets.
    pub partition: Option<(&'a str, i32)>,
    /// Why.
    pub error: &'a dyn Display,
}

impl InternalEvent for LagUnread<'_> {
    fn emit(self) {
        let (pipeline, error) = (self.pipeline, self.error);
        match self.partition {
            None => {
                tracing::debug!(pipeline = %pipeline, error = %error, "cannot read committed offsets for the lag");
            }
            Some((topic, partition)) => {
                tracing::debug!(pipeline = %pipeline, topic = %topic, partition, error = %error, "cannot read watermarks for the lag");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{captured, emit};
    use super::*;

    #[test]
    fn brokers_coming_and_going_are_counted_by_pipeline_and_client() {
        let seen = captured(|| {
            let (pipeline, client) = ("orders", "consumer");
            emit(BrokersReachable { pipeline, client });
            emit(BrokersUnreachable { pipeline, client });
            emit(BrokersReachable { pipeline, client });
            emit(BrokersReachable {
                pipeline,
                client: "producer",
            });
        });
        assert_eq!(
            seen.metrics,
            [
                "sluice_kafka_connects_total{pipeline=\"orders\",client=\"consumer\"} 2",
                "sluice_kafka_connects_total{pipeline=\"orders\",client=\"producer\"} 1",
                "sluice_kafka_disconnects_total{pipeline=\"orders\",client=\"consumer\"} 1",
            ]
        );
        assert_eq!(
            seen.logs[..2],
            [
                "INFO kafka brokers reachable pipeline=orders client=\"consumer\"",
                "WARN no kafka broker reachable pipeline=orders client=\"consumer\"",
            ]
        );
    }

    #[test]
    fn librdkafka_lines_keep_their_level_and_errors_are_not_counted() {
        let seen = captured(|| {
            let log = |level, fac| LibrdkafkaLog {
                pipeline: "orders",
                client: "producer",
                level,
                fac,
                message: "broker gone",
            };
            emit(log(Level::ERROR, "ERROR"));
            emit(log(Level::DEBUG, "FAIL"));
            emit(ClientError {
                pipeline: "orders",
                client: "producer",
                error: &"Local: All broker connections are down",
                reason: "3/3 brokers are down",
            });
        });
        assert!(seen.metrics.is_empty(), "{:?}", seen.metrics);
        assert_eq!(
            seen.logs,
            [
                "ERROR ERROR broker gone pipeline=orders client=\"producer\"",
                "DEBUG FAIL broker gone pipeline=orders client=\"producer\"",
                "WARN kafka client error pipeline=orders client=\"producer\" error=Local: All broker connections are down reason=\"3/3 brokers are down\"",
            ]
        );
    }
}
