//! What happens to events, each emitted once as a metric (and a log record where useful), plus
//! per-pipeline totals for the summary logged when a pipeline ends.

pub mod health;
pub mod names;
pub mod partitions;
pub mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::delivery::{Budget, Step};

use metrics::{Counter, counter};

/// Per-pipeline counters: Prometheus metrics and in-process totals.
pub struct Telemetry {
    pipeline: Arc<str>,
    received: Counter,
    sent: Counter,
    filtered: Counter,
    dropped: Counter,
    dead_lettered: Counter,
    totals: [AtomicU64; 8],
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("pipeline", &self.pipeline)
            .field("summary", &self.summary())
            .finish_non_exhaustive()
    }
}

/// Totals of one pipeline run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events read by the input.
    pub received: u64,
    /// Events confirmed delivered by the output.
    pub sent: u64,
    /// Inputs that produced no output.
    pub filtered: u64,
    /// Events that failed (decode, transform, encode, output).
    pub failed: u64,
    /// Failed events dropped by `errors: drop`.
    pub dropped: u64,
    /// Failed events delivered to the dead-letter output.
    pub dead_lettered: u64,
    /// Of `received`, messages the bus had delivered before (JetStream redeliveries: after a
    /// nak, an ack wait or a restart). They are read, and counted, once per delivery.
    pub redelivered: u64,
    /// Failed events whose input was given back for redelivery instead of following the error
    /// policy (JetStream below `max_deliver`); the redelivery counts again in `received`.
    pub redelivery_requested: u64,
}

const RECEIVED: usize = 0;
const SENT: usize = 1;
const FILTERED: usize = 2;
const FAILED: usize = 3;
const DROPPED: usize = 4;
const DEAD_LETTERED: usize = 5;
const REDELIVERED: usize = 6;
const REDELIVERY_REQUESTED: usize = 7;

impl Telemetry {
    /// Counters for `pipeline`.
    pub fn new(pipeline: &str) -> Arc<Telemetry> {
        let label = || ("pipeline", pipeline.to_string());
        Arc::new(Telemetry {
            pipeline: Arc::from(pipeline),
            received: counter!(names::EVENTS_RECEIVED_TOTAL, &[label()]),
            sent: counter!(names::EVENTS_SENT_TOTAL, &[label()]),
            filtered: counter!(names::EVENTS_FILTERED_TOTAL, &[label()]),
            dropped: counter!(names::EVENTS_DROPPED_TOTAL, &[label()]),
            dead_lettered: counter!(names::EVENTS_DEAD_LETTERED_TOTAL, &[label()]),
            totals: Default::default(),
        })
    }

    /// The pipeline's name.
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    fn add(&self, which: usize, n: usize) {
        self.totals[which].fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Events read by the input.
    pub fn received(&self, n: usize) {
        self.received.increment(n as u64);
        self.add(RECEIVED, n);
    }

    /// Events confirmed delivered by the output.
    pub fn sent(&self, n: usize) {
        self.sent.increment(n as u64);
        self.add(SENT, n);
    }

    /// Inputs that produced no output (a filter, or a jq program that emitted nothing).
    pub fn filtered(&self, n: usize) {
        if n > 0 {
            self.filtered.increment(n as u64);
            self.add(FILTERED, n);
        }
    }

    /// An event failed at `step` (decode, a transform, encode, output); the error policy decides
    /// what happens to it next.
    pub fn failed(&self, step: &Step, reason: &str, source: &str) {
        counter!(names::EVENTS_FAILED_TOTAL, "pipeline" => self.pipeline.to_string(), "step" => step.to_string()).increment(1);
        self.add(FAILED, 1);
        tracing::warn!(pipeline = %self.pipeline, %step, reason, source, "event failed");
    }

    /// A failed event's input will be delivered again by the bus instead of following the error
    /// policy (JetStream below `max_deliver`).
    pub fn redelivery_requested(&self, source: &str) {
        counter!(names::EVENTS_REDELIVERY_REQUESTED_TOTAL, "pipeline" => self.pipeline.to_string())
            .increment(1);
        self.add(REDELIVERY_REQUESTED, 1);
        tracing::warn!(pipeline = %self.pipeline, source, "input not acknowledged; it will be redelivered");
    }

    /// A message read had been delivered before (counted in `received` too).
    pub fn redelivered(&self) {
        self.add(REDELIVERED, 1);
    }

    /// Events per batch entering the transforms (`input`) and handed to the output (`output`).
    pub fn batch_size_histogram(&self, stage: &'static str) -> metrics::Histogram {
        metrics::histogram!(names::BATCH_SIZE, "pipeline" => self.pipeline.to_string(), "stage" => stage)
    }

    /// Failed events dropped by `errors: drop`.
    pub fn dropped(&self, n: usize) {
        self.dropped.increment(n as u64);
        self.add(DROPPED, n);
    }

    /// A dead letter the dead-letter output refused for what it is (too large even once cut):
    /// dropped, since it would be refused again after any restart.
    pub fn dead_letter_dropped(&self, reason: &str, source: &str) {
        self.dropped(1);
        tracing::error!(pipeline = %self.pipeline, reason, source, "dead letter refused by the dead-letter output; dropped");
    }

    /// Failed events confirmed delivered to the dead-letter output.
    pub fn dead_lettered(&self, n: usize) {
        self.dead_lettered.increment(n as u64);
        self.add(DEAD_LETTERED, n);
    }

    /// Totals so far.
    pub fn summary(&self) -> Summary {
        let get = |i: usize| self.totals[i].load(Ordering::Relaxed);
        Summary {
            received: get(RECEIVED),
            sent: get(SENT),
            filtered: get(FILTERED),
            failed: get(FAILED),
            dropped: get(DROPPED),
            dead_lettered: get(DEAD_LETTERED),
            redelivered: get(REDELIVERED),
            redelivery_requested: get(REDELIVERY_REQUESTED),
        }
    }

    /// Logs the pipeline's totals as it stops, with what is left of its `budget`; `unfinished`
    /// when the process exits with events of it still in flight (the shutdown deadline passed).
    pub fn log_stopped(&self, budget: &Budget, unfinished: bool) {
        budget.refresh_gauges();
        let s = self.summary();
        let (_, in_flight) = budget.in_flight();
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
            in_flight,
            unfinished,
            "pipeline stopped"
        );
    }
}
