//! The NATS client's connection (connects, disconnects, slow consumers, failed attempts) and the
//! core NATS input.

use std::fmt::Display;

use super::InternalEvent;
use crate::observe::names;

/// `tls.insecure_skip_verify` is set on a NATS connection.
pub struct NatsInsecureTls<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The servers, as they may be shown.
    pub servers: &'a str,
}

impl InternalEvent for NatsInsecureTls<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = self.pipeline, servers = %self.servers, "tls.insecure_skip_verify is set: the NATS server's certificate is not checked");
    }
}

/// The first attempt to connect failed; the client keeps trying.
pub struct NatsFirstAttemptFailed<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The servers, as they may be shown.
    pub servers: &'a str,
    /// Why, with what to check.
    pub error: &'a str,
}

impl InternalEvent for NatsFirstAttemptFailed<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = self.pipeline, servers = %self.servers, error = self.error, "nats connection attempt failed; retrying");
    }
}

/// An attempt to (re)connect failed; the client keeps trying. Only the first of a run of
/// failures is a warning.
pub struct NatsAttemptFailed<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The servers, as they may be shown.
    pub servers: &'a str,
    /// Why.
    pub error: &'a dyn Display,
    /// Whether the attempt before failed too.
    pub again: bool,
}

impl InternalEvent for NatsAttemptFailed<'_> {
    fn emit(self) {
        let (pipeline, servers, error) = (self.pipeline, self.servers, self.error);
        if self.again {
            tracing::debug!(pipeline, servers = %servers, error = %error, "nats connection attempt failed");
        } else {
            tracing::warn!(pipeline, servers = %servers, error = %error, "nats connection attempt failed; retrying");
        }
    }
}

/// The client is connected (at first, or again).
pub struct NatsConnected<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The servers, as they may be shown.
    pub servers: &'a str,
}

impl InternalEvent for NatsConnected<'_> {
    fn emit(self) {
        metrics::counter!(names::NATS_CONNECTS_TOTAL, "pipeline" => self.pipeline.to_string())
            .increment(1);
        tracing::info!(pipeline = self.pipeline, servers = %self.servers, "nats connected");
    }
}

/// The client lost its connection; it reconnects by itself.
pub struct NatsDisconnected<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The servers, as they may be shown.
    pub servers: &'a str,
}

impl InternalEvent for NatsDisconnected<'_> {
    fn emit(self) {
        metrics::counter!(names::NATS_DISCONNECTS_TOTAL, "pipeline" => self.pipeline.to_string())
            .increment(1);
        tracing::warn!(pipeline = self.pipeline, servers = %self.servers, "nats disconnected; reconnecting");
    }
}

/// The client dropped messages of a subscription that was not read fast enough.
pub struct NatsSlowConsumer<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The subscription's id.
    pub subscription: u64,
}

impl InternalEvent for NatsSlowConsumer<'_> {
    fn emit(self) {
        metrics::counter!(names::NATS_SLOW_CONSUMER_TOTAL, "pipeline" => self.pipeline.to_string())
            .increment(1);
        tracing::warn!(
            pipeline = self.pipeline,
            subscription = self.subscription,
            "nats slow consumer: messages were dropped"
        );
    }
}

/// Any other event of the client (a server entering lame duck mode, ...).
pub struct NatsClientEvent<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// What the client reported.
    pub event: &'a dyn Display,
}

impl InternalEvent for NatsClientEvent<'_> {
    fn emit(self) {
        tracing::info!(pipeline = self.pipeline, event = %self.event, "nats event");
    }
}

/// The core NATS input stopped before its subscriptions were in place.
pub struct NatsStoppedBeforeSubscribing<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
}

impl InternalEvent for NatsStoppedBeforeSubscribing<'_> {
    fn emit(self) {
        tracing::info!(pipeline = %self.pipeline, "nats input stopped before it subscribed");
    }
}

/// The core NATS input's subscriptions are in place on the server.
pub struct NatsSubscribed<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The subjects subscribed to.
    pub subjects: &'a [String],
    /// The queue group, if any.
    pub queue_group: Option<&'a str>,
}

impl InternalEvent for NatsSubscribed<'_> {
    fn emit(self) {
        tracing::info!(pipeline = %self.pipeline, subjects = ?self.subjects, queue_group = ?self.queue_group, "nats subscribed");
    }
}

#[cfg(test)]
mod tests {
    use super::super::{captured, emit};
    use super::*;

    #[test]
    fn connection_changes_are_counted_by_pipeline_and_logged_with_the_servers() {
        let (pipeline, servers) = ("orders", "nats://a:4222");
        let seen = captured(|| {
            emit(NatsConnected { pipeline, servers });
            emit(NatsDisconnected { pipeline, servers });
            emit(NatsAttemptFailed {
                pipeline,
                servers,
                error: &"connection refused",
                again: false,
            });
            emit(NatsAttemptFailed {
                pipeline,
                servers,
                error: &"connection refused",
                again: true,
            });
            emit(NatsConnected { pipeline, servers });
            emit(NatsSlowConsumer {
                pipeline,
                subscription: 3,
            });
        });
        assert_eq!(
            seen.metrics,
            [
                "sluice_nats_connects_total{pipeline=\"orders\"} 2",
                "sluice_nats_disconnects_total{pipeline=\"orders\"} 1",
                "sluice_nats_slow_consumer_total{pipeline=\"orders\"} 1",
            ]
        );
        assert_eq!(
            seen.logs,
            [
                "INFO nats connected pipeline=\"orders\" servers=nats://a:4222",
                "WARN nats disconnected; reconnecting pipeline=\"orders\" servers=nats://a:4222",
                "WARN nats connection attempt failed; retrying pipeline=\"orders\" servers=nats://a:4222 error=connection refused",
                "DEBUG nats connection attempt failed pipeline=\"orders\" servers=nats://a:4222 error=connection refused",
                "INFO nats connected pipeline=\"orders\" servers=nats://a:4222",
                "WARN nats slow consumer: messages were dropped pipeline=\"orders\" subscription=3",
            ]
        );
    }

    #[test]
    fn the_input_subscribing_is_logged_and_not_counted() {
        let subjects = ["orders.>".to_string()];
        let seen = captured(|| {
            emit(NatsSubscribed {
                pipeline: "orders",
                subjects: &subjects,
                queue_group: Some("workers"),
            });
            emit(NatsFirstAttemptFailed {
                pipeline: "orders",
                servers: "nats://a:4222",
                error: "connection refused",
            });
        });
        assert!(seen.metrics.is_empty(), "{:?}", seen.metrics);
        assert_eq!(
            seen.logs,
            [
                "INFO nats subscribed pipeline=orders subjects=[\"orders.>\"] queue_group=Some(\"workers\")",
                "WARN nats connection attempt failed; retrying pipeline=\"orders\" servers=nats://a:4222 error=\"connection refused\"",
            ]
        );
    }
}
