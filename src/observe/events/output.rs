//! Outputs: retries and the circuit breaker (on an output's [`OutputSeries`]), objects stored.

use std::fmt::Display;
use std::sync::Arc;

use metrics::{Counter, Gauge};

use super::{InternalEvent, RegisteredEvent};
use crate::observe::names;

/// An output's retry series, labelled once with the pipeline and the component (`output`,
/// `dead-letter output`).
pub struct OutputSeries {
    pipeline: Arc<str>,
    component: &'static str,
    retried: Counter,
    open: Gauge,
}

impl OutputSeries {
    /// The series of `component` of `pipeline`, its circuit closed.
    pub fn new(pipeline: &str, component: &'static str) -> OutputSeries {
        let labels = [
            ("pipeline", pipeline.to_string()),
            ("component", component.to_string()),
        ];
        let open = metrics::gauge!(names::OUTPUT_CIRCUIT_OPEN, &labels);
        open.set(0.0);
        OutputSeries {
            pipeline: Arc::from(pipeline),
            component,
            retried: metrics::counter!(names::OUTPUT_RETRIES_TOTAL, &labels),
            open,
        }
    }

    /// Logs `event` and counts it on these series.
    pub fn emit(&self, event: impl RegisteredEvent<OutputSeries>) {
        event.emit(self);
    }
}

/// Events failed for a passing reason and are held to be tried again after a backoff.
pub struct Retrying<'a> {
    /// Events held.
    pub held: usize,
    /// Failed attempts in a row.
    pub attempt: u32,
    /// The backoff before the next attempt.
    pub delay_ms: u64,
    /// Why the last one failed.
    pub reason: &'a dyn Display,
}

impl RegisteredEvent<OutputSeries> for Retrying<'_> {
    fn emit(self, s: &OutputSeries) {
        s.retried.increment(self.held as u64);
        tracing::debug!(
            pipeline = %s.pipeline,
            component = s.component,
            held = self.held,
            attempt = self.attempt,
            delay_ms = self.delay_ms,
            reason = %self.reason,
            "output failed; retrying"
        );
    }
}

/// Failed attempts in a row reached `open_after`: the circuit opens, reading pauses and the
/// held events are probed every `max_backoff`.
pub struct CircuitOpened<'a> {
    /// Events held, to be tried again.
    pub held: usize,
    /// Why the last attempt failed.
    pub reason: &'a dyn Display,
    /// How often the held events are tried.
    pub probe_every_ms: u64,
}

impl RegisteredEvent<OutputSeries> for CircuitOpened<'_> {
    fn emit(self, s: &OutputSeries) {
        s.retried.increment(self.held as u64);
        s.open.set(1.0);
        tracing::warn!(
            pipeline = %s.pipeline,
            component = s.component,
            held = self.held,
            reason = %self.reason,
            probe_every_ms = self.probe_every_ms,
            "output unavailable; circuit open: reading pauses and the held events are retried"
        );
    }
}

/// An attempt delivered with the circuit open: it closes, reading resumes.
pub struct CircuitClosed {
    /// How long it was open.
    pub open_ms: u64,
    /// Failed attempts in a row before this one.
    pub failed_attempts: u32,
}

impl RegisteredEvent<OutputSeries> for CircuitClosed {
    fn emit(self, s: &OutputSeries) {
        s.open.set(0.0);
        tracing::info!(
            pipeline = %s.pipeline,
            component = s.component,
            open_ms = self.open_ms,
            failed_attempts = self.failed_attempts,
            "output recovered; circuit closed, reading resumes"
        );
    }
}

/// An object was stored.
pub struct ObjectStored<'a> {
    /// Its path.
    pub object: &'a dyn Display,
    /// Events in it.
    pub events: usize,
}

impl InternalEvent for ObjectStored<'_> {
    fn emit(self) {
        tracing::debug!(object = %self.object, events = self.events, "object stored");
    }
}

/// What is already stored could not be listed: events read again may be written twice.
pub struct ObjectsUnlisted<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The folder that could not be listed.
    pub folder: &'a dyn Display,
    /// Why.
    pub error: &'a dyn Display,
}

impl InternalEvent for ObjectsUnlisted<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, folder = %self.folder, error = %self.error, "object_store: cannot list what is stored; events read again may be written twice");
    }
}

#[cfg(test)]
mod tests {
    use super::super::{captured, emit};
    use super::*;

    #[test]
    fn retries_count_the_held_events_and_the_circuit_shows_in_its_gauge() {
        let labels = "pipeline=\"orders\",component=\"output\"";
        let closed = captured(|| {
            let s = OutputSeries::new("orders", "output");
            s.emit(Retrying {
                held: 3,
                attempt: 1,
                delay_ms: 100,
                reason: &"timed out",
            });
        });
        assert_eq!(
            closed.metrics,
            [
                format!("sluice_output_circuit_open{{{labels}}} 0"),
                format!("sluice_output_retries_total{{{labels}}} 3"),
            ]
        );
        let opened = captured(|| {
            let s = OutputSeries::new("orders", "output");
            s.emit(CircuitOpened {
                held: 2,
                reason: &"timed out",
                probe_every_ms: 5000,
            });
        });
        assert_eq!(
            opened.metrics,
            [
                format!("sluice_output_circuit_open{{{labels}}} 1"),
                format!("sluice_output_retries_total{{{labels}}} 2"),
            ]
        );
        assert_eq!(
            opened.logs,
            [
                "WARN output unavailable; circuit open: reading pauses and the held events are retried pipeline=orders component=\"output\" held=2 reason=timed out probe_every_ms=5000"
            ]
        );
        let recovered = captured(|| {
            let s = OutputSeries::new("orders", "output");
            s.emit(CircuitOpened {
                held: 2,
                reason: &"timed out",
                probe_every_ms: 5000,
            });
            s.emit(CircuitClosed {
                open_ms: 7,
                failed_attempts: 4,
            });
        });
        assert_eq!(
            recovered.metrics[0],
            format!("sluice_output_circuit_open{{{labels}}} 0")
        );
        assert_eq!(
            recovered.logs[1],
            "INFO output recovered; circuit closed, reading resumes pipeline=orders component=\"output\" open_ms=7 failed_attempts=4"
        );
    }

    #[test]
    fn objects_stored_or_not_listed_are_logged_and_not_counted() {
        let seen = captured(|| {
            emit(ObjectStored {
                object: &"orders/2026/a.jsonl",
                events: 3,
            });
            emit(ObjectsUnlisted {
                pipeline: "orders",
                folder: &"orders/2026",
                error: &"access denied",
            });
        });
        assert!(seen.metrics.is_empty(), "{:?}", seen.metrics);
        assert_eq!(
            seen.logs,
            [
                "DEBUG object stored object=orders/2026/a.jsonl events=3",
                "WARN object_store: cannot list what is stored; events read again may be written twice pipeline=orders folder=orders/2026 error=access denied",
            ]
        );
    }
}
