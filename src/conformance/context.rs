//! What the checks give a running component, made in one place: the context of an output, and
//! the acknowledgements of the events the checks send it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::HumanDuration;
use crate::delivery::{AckMsg, AckSender};
use crate::observe::Telemetry;
use crate::observe::health::Health;
use crate::policy::{Failures, Route};
use crate::sink::SinkContext;
use crate::sink::retry::RetryConfig;

/// The context of an output under test: failures that may pass are retried at once (after a
/// millisecond or two), and refused events are dropped (`errors: drop`).
pub fn sink(telemetry: &Arc<Telemetry>) -> SinkContext {
    let retry = RetryConfig {
        initial_backoff: HumanDuration(Duration::from_millis(1)),
        max_backoff: HumanDuration(Duration::from_millis(2)),
        ..Default::default()
    };
    SinkContext {
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
pub fn ack_channel(telemetry: &Telemetry) -> (AckSender, mpsc::UnboundedReceiver<AckMsg>) {
    telemetry.ack_channel()
}
