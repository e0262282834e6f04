//! Inputs: the input registry (`InputConfig`) and what every source gets to run.

pub mod file;
pub mod generate;
pub mod jetstream;
pub mod kafka;
mod lines;
pub mod nats;
pub mod stdin;

use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::codec::Codec;
use crate::config::Validator;
use crate::event::Event;
use crate::observe::Telemetry;

/// Where a pipeline reads events: exactly one of these keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputConfig {
    /// JSON lines (or raw lines) from standard input; the pipeline ends at end of input.
    Stdin(stdin::StdinConfig),
    /// Lines of a file; the pipeline ends at end of file unless `follow` is set.
    File(file::FileConfig),
    /// Synthetic events from a jq template, at a given rate and count.
    Generate(generate::GenerateConfig),
    /// A Kafka consumer group.
    Kafka(kafka::KafkaInputConfig),
    /// Core NATS subjects, optionally in a queue group (at-most-once).
    Nats(nats::NatsInputConfig),
    /// A JetStream durable pull consumer.
    Jetstream(jetstream::JetStreamInputConfig),
}

/// Why a source stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading failed.
    #[error("{input} input: {message}")]
    Read {
        /// Input kind.
        input: &'static str,
        /// What failed.
        message: String,
    },
}

/// What a running source is given.
pub struct SourceContext {
    /// The pipeline's counters.
    pub telemetry: Arc<Telemetry>,
    /// Where batches of read events go. Sending waits while the pipeline is full (backpressure).
    pub out: mpsc::Sender<Vec<Event>>,
    /// Cancelled when the source must stop reading (shutdown, or the pipeline failed).
    pub shutdown: CancellationToken,
    /// Most events per batch.
    pub batch_size: usize,
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

impl InputConfig {
    /// Whether the input talks to a broker (and so has a connection state for readiness).
    pub fn remote(&self) -> bool {
        matches!(
            self,
            InputConfig::Kafka(_) | InputConfig::Nats(_) | InputConfig::Jetstream(_)
        )
    }

    /// The input kind, as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            InputConfig::Stdin(_) => "stdin",
            InputConfig::File(_) => "file",
            InputConfig::Generate(_) => "generate",
            InputConfig::Kafka(_) => "kafka",
            InputConfig::Nats(_) => "nats",
            InputConfig::Jetstream(_) => "jetstream",
        }
    }

    /// How payloads of this input are decoded.
    pub fn codec(&self) -> Codec {
        match self {
            InputConfig::Stdin(c) => c.codec,
            InputConfig::File(c) => c.codec,
            InputConfig::Generate(_) => Codec::Json,
            InputConfig::Kafka(c) => c.codec,
            InputConfig::Nats(c) => c.codec,
            InputConfig::Jetstream(c) => c.codec,
        }
    }

    /// Checks values serde cannot.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        match self {
            InputConfig::Stdin(_) => {}
            InputConfig::File(c) => c.validate(&format!("{path}.file"), v),
            InputConfig::Generate(c) => c.validate(&format!("{path}.generate"), v),
            InputConfig::Kafka(c) => c.validate(&format!("{path}.kafka"), v),
            InputConfig::Nats(c) => c.validate(&format!("{path}.nats"), v),
            InputConfig::Jetstream(c) => c.validate(&format!("{path}.jetstream"), v),
        }
    }

    /// Reads until the input ends, the shutdown token is cancelled, or the pipeline stops
    /// taking events.
    pub async fn run(&self, ctx: SourceContext) -> Result<(), SourceError> {
        match self {
            InputConfig::Stdin(c) => stdin::run(c, ctx).await,
            InputConfig::File(c) => file::run(c, ctx).await,
            InputConfig::Generate(c) => generate::run(c, ctx).await,
            InputConfig::Kafka(c) => kafka::run(c, ctx).await,
            InputConfig::Nats(c) => nats::run(c, ctx).await,
            InputConfig::Jetstream(c) => jetstream::run(c, ctx).await,
        }
    }
}

/// Sends a batch downstream, then waits while the in-flight byte budget is used up; false when
/// the pipeline no longer takes events.
pub(crate) async fn send(ctx: &SourceContext, batch: Vec<Event>) -> bool {
    if batch.is_empty() {
        return true;
    }
    ctx.telemetry.received(batch.len());
    // The batch is read; more waits until the in-flight byte budget has room again.
    let sent = ctx.out.send(batch).await.is_ok();
    tokio::select! {
        _ = ctx.telemetry.budget().room() => {}
        // Stopping: the caller reads no more anyway.
        _ = ctx.shutdown.cancelled() => {}
    }
    sent
}
