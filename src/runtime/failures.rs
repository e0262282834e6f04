//! Applying a pipeline's error policy to failed events, wherever they fail (decode, a transform,
//! encode, the output).

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::event::Event;
use crate::observe::Telemetry;
use crate::runtime::ack::Outcome;

/// Headers a dead letter gains, on top of its original ones.
pub mod headers {
    /// Why the event failed.
    pub const REASON: &str = "sluice-error-reason";
    /// Which step failed: `decode`, `transforms[N] (kind)`, `encode` or `output`.
    pub const STEP: &str = "sluice-error-step";
    /// Where the input was read, like `kafka:orders/3@1042` or `stdin:17`.
    pub const SOURCE: &str = "sluice-error-source";
    /// When it failed, RFC 3339 in UTC.
    pub const TIME: &str = "sluice-error-time";
    /// The pipeline's name.
    pub const PIPELINE: &str = "sluice-error-pipeline";
}

/// The step name of failures at the output.
pub const OUTPUT_STEP: &str = "output";

/// An event that could not be processed or delivered, with the step and reason.
#[derive(Debug)]
pub struct Failure {
    /// The event: the original input for decode and transform failures, the event as it was to
    /// be written for output failures.
    pub event: Event,
    /// Which step failed.
    pub step: String,
    /// Why.
    pub reason: String,
}

/// The pipeline must stop: `errors: stop` met a failure, or a dead letter could not be delivered.
#[derive(Debug, Clone, thiserror::Error)]
#[error("event from {position} failed at {step}: {reason}; stopping ({why})")]
pub struct MustStop {
    /// Where the event was read.
    pub position: String,
    /// The failing step.
    pub step: String,
    /// Why it failed.
    pub reason: String,
    /// Why that stops the pipeline.
    pub why: &'static str,
}

/// Where failed events go, per the pipeline's `errors` setting.
#[derive(Clone)]
pub enum Route {
    /// Count, log and acknowledge.
    Drop,
    /// Stop the pipeline without acknowledging.
    Stop,
    /// Send to the dead-letter output.
    DeadLetter(mpsc::Sender<Vec<Event>>),
    /// This is the dead-letter output itself: a failure here cannot go anywhere, so the pipeline
    /// stops and the input stays unacknowledged.
    Nowhere,
}

/// Applies the error policy.
#[derive(Clone)]
pub struct Failures {
    telemetry: Arc<Telemetry>,
    route: Route,
}

impl Failures {
    /// A handler sending failures along `route`.
    pub fn new(telemetry: Arc<Telemetry>, route: Route) -> Self {
        Failures { telemetry, route }
    }

    /// Handles failed events: counted and logged, then dropped, dead-lettered, or the pipeline
    /// stops (returned as an error; the event's input is not acknowledged).
    pub async fn handle(&self, failures: Vec<Failure>) -> Result<(), MustStop> {
        if failures.is_empty() {
            return Ok(());
        }
        let t = &self.telemetry;
        let mut letters = Vec::new();
        for f in failures {
            let position = f.event.position.to_string();
            t.failed(&f.step, &f.reason, &position);
            if f.step == OUTPUT_STEP && f.event.ack.redeliverable() {
                // The bus delivers it again (after a backoff): retry rather than give up.
                t.redelivery_requested(&position);
                f.event.ack.complete(Outcome::Failed);
                continue;
            }
            let why = match &self.route {
                Route::Drop => {
                    t.dropped(1);
                    f.event.ack.complete(Outcome::Rejected);
                    continue;
                }
                Route::DeadLetter(_) => {
                    letters.push(dead_letter(f, t.pipeline()));
                    continue;
                }
                Route::Stop => "errors: stop",
                Route::Nowhere => "the dead-letter output failed",
            };
            f.event.ack.complete(Outcome::Failed);
            return Err(MustStop {
                position,
                step: f.step,
                reason: f.reason,
                why,
            });
        }
        if let Route::DeadLetter(dlq) = &self.route
            && !letters.is_empty()
            && let Err(mpsc::error::SendError(letters)) = dlq.send(letters).await
        {
            let first = &letters[0];
            return Err(MustStop {
                position: first.position.to_string(),
                step: "dead letter".into(),
                reason: "the dead-letter output stopped".into(),
                why: "the dead-letter output failed",
            });
        }
        Ok(())
    }
}

/// The original event with headers saying what failed, for the dead-letter output.
pub fn dead_letter(f: Failure, pipeline: &str) -> Event {
    let mut e = f.event;
    let source = e.position.to_string();
    let time = jiff::Timestamp::now().to_string();
    // One line each: reasons can quote input (a jq `error(...)`), and NATS headers cannot carry
    // line breaks.
    let reason: String = f
        .reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for (name, value) in [
        (headers::REASON, reason),
        (headers::STEP, f.step),
        (headers::SOURCE, source),
        (headers::TIME, time),
        (headers::PIPELINE, pipeline.to_string()),
    ] {
        e.headers.push((name.to_string(), Bytes::from(value)));
    }
    // The dead-letter output decides where it goes.
    e.destination = None;
    e.partition = None;
    e
}
