//! What happens, as typed events that log and count (see [`events`]); a pipeline's counters and
//! its totals for the summary logged when it ends; health and the metrics endpoint.

pub mod events;
pub mod health;
pub mod names;
pub mod partitions;
pub mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{Counter, counter};

/// Where a pipeline's in-flight budget and acknowledgements report: bytes and inputs in flight,
/// and seconds from reading an input to the delivery of everything derived from it. Registered
/// once per pipeline; the budget sets the gauges every [`crate::delivery::GAUGE_REFRESH`].
pub struct InFlightSeries {
    /// Bytes of inputs read and not finished.
    pub bytes: metrics::Gauge,
    /// Inputs read and not finished.
    pub inputs: metrics::Gauge,
    /// Seconds from reading an input to its delivery.
    pub latency: metrics::Histogram,
}

impl InFlightSeries {
    /// The series of `pipeline`.
    pub fn new(pipeline: &str) -> InFlightSeries {
        let label = || ("pipeline", pipeline.to_string());
        InFlightSeries {
            bytes: metrics::gauge!(names::BYTES_IN_FLIGHT, &[label()]),
            inputs: metrics::gauge!(names::EVENTS_IN_FLIGHT, &[label()]),
            latency: metrics::histogram!(names::EVENT_LATENCY_SECONDS, &[label()]),
        }
    }
}

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

    /// Logs `event` and counts it on this pipeline's counters (see [`events`]).
    pub fn emit(&self, event: impl events::RegisteredEvent<Telemetry>) {
        event.emit(self);
    }

    /// Events per batch entering the transforms (`input`) and handed to the output (`output`).
    pub fn batch_size_histogram(&self, stage: &'static str) -> metrics::Histogram {
        metrics::histogram!(names::BATCH_SIZE, "pipeline" => self.pipeline.to_string(), "stage" => stage)
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
}
