//! What every running output is given ([`SinkContext`]).

use std::sync::Arc;

use crate::context::PipelineContext;
use crate::delivery::Outcome;
use crate::event::Event;
use crate::observe::Telemetry;
use crate::observe::events::pipeline::{EventsDeadLettered, EventsSent};
use crate::policy::Failures;

use super::retry;

/// What a running sink is given.
pub struct SinkContext {
    /// The pipeline's in-flight budget, acknowledgement channels and control channel.
    pub pipeline: PipelineContext,
    /// The pipeline's counters.
    pub telemetry: Arc<Telemetry>,
    /// True for the dead-letter output: deliveries complete inputs as rejected, not delivered.
    pub dead_letter: bool,
    /// Where events the output rejects go (the pipeline's error policy).
    pub failures: Failures,
    /// Where an output that talks to a broker reports whether it is connected (readiness).
    pub link: Option<Arc<crate::observe::health::Link>>,
    /// Readiness, for conditions other than the connection (a circuit open too long).
    pub health: Arc<crate::observe::health::Health>,
    /// How deliveries that failed for a passing reason are retried.
    pub retry: retry::RetryConfig,
    /// The pipeline's largest event (`settings.max_event_bytes`).
    pub max_event_bytes: usize,
}

impl SinkContext {
    /// `output` or `dead-letter output`, for logs and metrics.
    pub fn component(&self) -> &'static str {
        if self.dead_letter {
            "dead-letter output"
        } else {
            "output"
        }
    }

    /// The outcome a confirmed delivery gives the input.
    pub fn delivered(&self) -> Outcome {
        if self.dead_letter {
            Outcome::Rejected
        } else {
            Outcome::Delivered
        }
    }

    /// Completes the acks of a delivered batch and counts it.
    pub fn confirm(&self, batch: impl IntoIterator<Item = Event>) {
        let outcome = self.delivered();
        let mut n = 0;
        for e in batch {
            e.ack.complete(outcome);
            n += 1;
        }
        self.count(n);
    }

    fn count(&self, n: usize) {
        if self.dead_letter {
            self.telemetry.emit(EventsDeadLettered { count: n });
        } else {
            self.telemetry.emit(EventsSent { count: n });
        }
    }
}
