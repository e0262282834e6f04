//! What the checks give a running component, made in one place: the context of an output and
//! of an input, the acknowledgements of the events the checks send, and the in-flight budget.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::HumanDuration;
use crate::context::PipelineContext;
use crate::delivery::{AckMsg, AckSender};
use crate::event::Event;
use crate::observe::Telemetry;
use crate::observe::health::Health;
use crate::policy::{Failures, Route};
use crate::sink::SinkContext;
use crate::sink::retry::RetryConfig;
use crate::source::SourceContext;
use crate::source::intake::Intake;

/// The context of an output under test: failures that may pass are retried at once (after a
/// millisecond or two), and refused events are dropped (`errors: drop`).
pub fn sink(telemetry: &Arc<Telemetry>, cx: &PipelineContext) -> SinkContext {
    let retry = RetryConfig {
        initial_backoff: HumanDuration(Duration::from_millis(1)),
        max_backoff: HumanDuration(Duration::from_millis(2)),
        ..Default::default()
    };
    SinkContext {
        pipeline: cx.clone(),
        telemetry: telemetry.clone(),
        dead_letter: false,
        failures: Failures::new(telemetry.clone(), Route::Drop),
        link: None,
        health: Health::new(1),
        retry,
        max_event_bytes: 1 << 20,
    }
}

/// Acknowledgements for the events a check sends an output, and where their answers arrive.
pub fn ack_channel(cx: &PipelineContext) -> (AckSender, mpsc::UnboundedReceiver<AckMsg>) {
    cx.ack_channel()
}

/// The context of an input under test: it hands batches of at most `batch_size` events to
/// `out`, stops at `shutdown`, and waits at most `drain` for what is in flight once stopping.
pub fn source(
    telemetry: &Arc<Telemetry>,
    cx: &PipelineContext,
    out: mpsc::Sender<Vec<Event>>,
    shutdown: &CancellationToken,
    batch_size: usize,
    drain: Duration,
) -> SourceContext {
    let budget = cx.budget().clone();
    SourceContext {
        pipeline: cx.clone(),
        telemetry: telemetry.clone(),
        intake: Intake::new(out, telemetry.clone(), budget, shutdown.clone(), batch_size),
        shutdown: shutdown.clone(),
        max_event_bytes: 1 << 20,
        counted: cx.ack_counter(),
        drain_timeout: drain,
        link: None,
    }
}

/// How many bytes of the pipeline's in-flight budget are left.
pub fn budget_left(cx: &PipelineContext) -> usize {
    let budget = cx.budget();
    budget.limit().saturating_sub(budget.in_flight().0)
}
