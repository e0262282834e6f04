//! What every running input is given ([`SourceContext`]).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::intake::Intake;
use crate::context::PipelineContext;
use crate::observe::Telemetry;

/// What a running source is given.
pub struct SourceContext {
    /// The pipeline's in-flight budget, acknowledgement channels and control channel.
    pub pipeline: PipelineContext,
    /// The pipeline's counters.
    pub telemetry: Arc<Telemetry>,
    /// Where batches of read events go: it waits while the pipeline is full or its in-flight
    /// budget is used up (backpressure), and counts what was read.
    pub intake: Intake,
    /// Cancelled when the source must stop reading (shutdown, or the pipeline failed).
    pub shutdown: CancellationToken,
    /// The pipeline's largest event (`settings.max_event_bytes`): line inputs keep no more of a
    /// line than this.
    pub max_event_bytes: usize,
    /// Acks for inputs that nothing acknowledges (core NATS, files, generated events): they
    /// still count events in flight and their latency.
    pub counted: crate::delivery::AckSender,
    /// On shutdown, how long to wait for in-flight events to be delivered before the final
    /// acknowledgement (Kafka commit, JetStream acks).
    pub drain_timeout: std::time::Duration,
    /// Where an input that talks to a broker reports whether it is connected (readiness).
    pub link: Option<Arc<crate::observe::health::Link>>,
}
