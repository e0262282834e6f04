//! What happens to a pipeline's events (read, delivered, filtered, failed, dropped,
//! dead-lettered), counted on the pipeline's [`Telemetry`]; and the pipeline starting, failing
//! and stopping.

use std::fmt::Display;

use super::super::{
    DEAD_LETTERED, DROPPED, FAILED, FILTERED, RECEIVED, REDELIVERED, REDELIVERY_REQUESTED, SENT,
    Summary, Telemetry, names,
};
use super::{InternalEvent, RegisteredEvent};
use crate::delivery::Step;

/// Events read by the input and handed to the pipeline.
pub struct EventsReceived {
    /// How many.
    pub count: usize,
}

impl RegisteredEvent<Telemetry> for EventsReceived {
    fn emit(self, t: &Telemetry) {
        t.received.increment(self.count as u64);
        t.add(RECEIVED, self.count);
    }
}

/// Events confirmed delivered by the output.
pub struct EventsSent {
    /// How many.
    pub count: usize,
}

impl RegisteredEvent<Telemetry> for EventsSent {
    fn emit(self, t: &Telemetry) {
        t.sent.increment(self.count as u64);
        t.add(SENT, self.count);
    }
}

/// Inputs that produced no output (a filter, or a jq program that emitted nothing).
pub struct EventsFiltered {
    /// How many (none is nothing to count).
    pub count: usize,
}

impl RegisteredEvent<Telemetry> for EventsFiltered {
    fn emit(self, t: &Telemetry) {
        if self.count > 0 {
            t.filtered.increment(self.count as u64);
            t.add(FILTERED, self.count);
        }
    }
}

/// An event failed at a step (decode, a transform, encode, output); the error policy decides
/// what happens to it next.
pub struct EventFailed<'a> {
    /// Where it failed.
    pub step: &'a Step,
    /// Why.
    pub reason: &'a str,
    /// The input it came from (its position).
    pub source: &'a str,
}

impl RegisteredEvent<Telemetry> for EventFailed<'_> {
    fn emit(self, t: &Telemetry) {
        let step = self.step;
        metrics::counter!(names::EVENTS_FAILED_TOTAL, "pipeline" => t.pipeline.to_string(), "step" => step.to_string()).increment(1);
        t.add(FAILED, 1);
        tracing::warn!(pipeline = %t.pipeline, %step, reason = self.reason, source = self.source, "event failed");
    }
}

/// A failed event's input will be delivered again by the bus instead of following the error
/// policy (JetStream below `max_deliver`).
pub struct RedeliveryRequested<'a> {
    /// The input (its position).
    pub source: &'a str,
}

impl RegisteredEvent<Telemetry> for RedeliveryRequested<'_> {
    fn emit(self, t: &Telemetry) {
        metrics::counter!(names::EVENTS_REDELIVERY_REQUESTED_TOTAL, "pipeline" => t.pipeline.to_string())
            .increment(1);
        t.add(REDELIVERY_REQUESTED, 1);
        tracing::warn!(pipeline = %t.pipeline, source = self.source, "input not acknowledged; it will be redelivered");
    }
}

/// A message read had been delivered before (it is counted in [`EventsReceived`] too); the
/// bus's own series count it by consumer.
pub struct Redelivered;

impl RegisteredEvent<Telemetry> for Redelivered {
    fn emit(self, t: &Telemetry) {
        t.add(REDELIVERED, 1);
    }
}

/// Failed events dropped by `errors: drop`.
pub struct EventsDropped {
    /// How many.
    pub count: usize,
}

impl RegisteredEvent<Telemetry> for EventsDropped {
    fn emit(self, t: &Telemetry) {
        t.dropped.increment(self.count as u64);
        t.add(DROPPED, self.count);
    }
}

/// A dead letter the dead-letter output refused for what it is (too large even once cut):
/// dropped, since it would be refused again after any restart.
pub struct DeadLetterDropped<'a> {
    /// Why the dead-letter output refused it.
    pub reason: &'a str,
    /// The input it came from (its position).
    pub source: &'a str,
}

impl RegisteredEvent<Telemetry> for DeadLetterDropped<'_> {
    fn emit(self, t: &Telemetry) {
        t.dropped.increment(1);
        t.add(DROPPED, 1);
        tracing::error!(pipeline = %t.pipeline, reason = self.reason, source = self.source, "dead letter refused by the dead-letter output; dropped");
    }
}

/// Failed events confirmed delivered to the dead-letter output.
pub struct EventsDeadLettered {
    /// How many.
    pub count: usize,
}

impl RegisteredEvent<Telemetry> for EventsDeadLettered {
    fn emit(self, t: &Telemetry) {
        t.dead_lettered.increment(self.count as u64);
        t.add(DEAD_LETTERED, self.count);
    }
}

/// A pipeline's tasks are running.
pub struct PipelineStarted<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// Its input's kind.
    pub input: &'a str,
    /// Its output's kind.
    pub output: &'a str,
    /// How many transforms it has.
    pub transforms: usize,
}

impl InternalEvent for PipelineStarted<'_> {
    fn emit(self) {
        tracing::info!(pipeline = %self.pipeline, input = self.input, output = self.output, transforms = self.transforms, "pipeline started");
    }
}

/// A pipeline stopped, with its totals; `unfinished` when the process exits with events of it
/// still in flight (the shutdown deadline passed).
pub struct PipelineStopped<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// Its totals.
    pub summary: Summary,
    /// Inputs read and not finished.
    pub in_flight: usize,
    /// Whether the process exits before the pipeline finished.
    pub unfinished: bool,
}

impl InternalEvent for PipelineStopped<'_> {
    fn emit(self) {
        let s = self.summary;
        tracing::info!(
            pipeline = %self.pipeline,
            received = s.received,
            sent = s.sent,
            filtered = s.filtered,
            failed = s.failed,
            dead_lettered = s.dead_lettered,
            dropped = s.dropped,
            redelivered = s.redelivered,
            redelivery_requested = s.redelivery_requested,
            in_flight = self.in_flight,
            unfinished = self.unfinished,
            "pipeline stopped"
        );
    }
}

/// One of a pipeline's tasks failed: the pipeline stops.
pub struct PipelineFailed<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// What failed.
    pub error: &'a dyn Display,
}

impl InternalEvent for PipelineFailed<'_> {
    fn emit(self) {
        tracing::error!(pipeline = %self.pipeline, error = %self.error, "pipeline failed");
    }
}

/// Shutdown came while a transform waited on a remote (the Schema Registry): the input and the
/// rest of its batch are left unfinished, to be read again.
pub struct InputsLeftUnfinished<'a> {
    /// Why the transform could not finish.
    pub reason: &'a dyn Display,
}

impl InternalEvent for InputsLeftUnfinished<'_> {
    fn emit(self) {
        tracing::warn!(reason = %self.reason, "leaving inputs unfinished at shutdown");
    }
}

#[cfg(test)]
mod tests {
    use super::super::{captured, emit};
    use super::*;

    #[test]
    fn events_count_on_the_pipeline_s_series_and_totals() {
        let mut summary = None;
        let seen = captured(|| {
            let t = Telemetry::new("orders");
            t.emit(EventsReceived { count: 5 });
            t.emit(EventsSent { count: 3 });
            t.emit(EventsFiltered { count: 0 });
            t.emit(EventsFiltered { count: 1 });
            let source = "orders/0@7";
            t.emit(EventFailed {
                step: &Step::Decode,
                reason: "not JSON",
                source,
            });
            t.emit(RedeliveryRequested { source });
            t.emit(Redelivered);
            t.emit(EventsDropped { count: 1 });
            t.emit(DeadLetterDropped {
                reason: "too large",
                source,
            });
            t.emit(EventsDeadLettered { count: 2 });
            summary = Some(t.summary());
        });
        let expected = Summary {
            received: 5,
            sent: 3,
            filtered: 1,
            failed: 1,
            dropped: 2,
            dead_lettered: 2,
            redelivered: 1,
            redelivery_requested: 1,
        };
        assert_eq!(summary, Some(expected));
        let counted: Vec<&String> = seen
            .metrics
            .iter()
            .filter(|l| l.contains("_total"))
            .collect();
        assert_eq!(
            counted,
            [
                "sluice_events_dead_lettered_total{pipeline=\"orders\"} 2",
                "sluice_events_dropped_total{pipeline=\"orders\"} 2",
                "sluice_events_failed_total{pipeline=\"orders\",step=\"decode\"} 1",
                "sluice_events_filtered_total{pipeline=\"orders\"} 1",
                "sluice_events_received_total{pipeline=\"orders\"} 5",
                "sluice_events_redelivery_requested_total{pipeline=\"orders\"} 1",
                "sluice_events_sent_total{pipeline=\"orders\"} 3",
            ]
        );
        assert_eq!(
            seen.logs,
            [
                "WARN event failed pipeline=orders step=decode reason=\"not JSON\" source=\"orders/0@7\"",
                "WARN input not acknowledged; it will be redelivered pipeline=orders source=\"orders/0@7\"",
                "ERROR dead letter refused by the dead-letter output; dropped pipeline=orders reason=\"too large\" source=\"orders/0@7\"",
            ]
        );
    }

    #[test]
    fn a_pipeline_starting_failing_and_stopping_is_logged_with_its_totals() {
        let seen = captured(|| {
            emit(PipelineStarted {
                pipeline: "orders",
                input: "kafka",
                output: "nats",
                transforms: 2,
            });
            emit(PipelineFailed {
                pipeline: "orders",
                error: &"output gone",
            });
            emit(InputsLeftUnfinished {
                reason: &"registry unavailable",
            });
            let summary = Summary {
                received: 4,
                sent: 3,
                failed: 1,
                ..Summary::default()
            };
            emit(PipelineStopped {
                pipeline: "orders",
                summary,
                in_flight: 0,
                unfinished: false,
            });
        });
        assert!(seen.metrics.is_empty(), "{:?}", seen.metrics);
        assert_eq!(
            seen.logs,
            [
                "INFO pipeline started pipeline=orders input=\"kafka\" output=\"nats\" transforms=2",
                "ERROR pipeline failed pipeline=orders error=output gone",
                "WARN leaving inputs unfinished at shutdown reason=registry unavailable",
                "INFO pipeline stopped pipeline=orders received=4 sent=3 filtered=0 failed=1 dead_lettered=0 dropped=0 redelivered=0 redelivery_requested=0 in_flight=0 unfinished=false",
            ]
        );
    }
}
