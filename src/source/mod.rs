//! Inputs: the input registry (`InputConfig`) and what every source gets to run.

pub mod file;
pub mod generate;
pub mod http;
pub mod intake;
pub mod jetstream;
pub mod kafka;
mod lines;
pub mod nats;
pub mod stdin;
pub mod submit;

use std::sync::Arc;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::codec::{Codec, CodecConfig};
use crate::config::{BuildContext, Validator};
use crate::observe::Telemetry;
use intake::Intake;

/// Where a pipeline reads events: exactly one of these keys.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
    /// An HTTP server taking events in POST requests.
    HttpServer(http::HttpServerConfig),
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

/// An input built from its configuration: everything that can be known without connecting is
/// checked, and what it runs with is prepared (client configurations, TLS, credentials).
#[derive(Debug, Clone)]
pub enum Input {
    /// Standard input.
    Stdin(stdin::StdinConfig),
    /// A file.
    File(file::FileConfig),
    /// Generated events.
    Generate(generate::GenerateConfig),
    /// A Kafka consumer group.
    Kafka(Box<kafka::KafkaInput>),
    /// Core NATS subjects.
    Nats(Box<nats::NatsInput>),
    /// A JetStream durable pull consumer.
    Jetstream(Box<jetstream::JetStreamInput>),
    /// An HTTP server.
    HttpServer(Box<http::HttpServerInput>),
    /// Events handed to the pipeline from outside it (Lambda invocations), in place of the
    /// configured input.
    Handoff(submit::Handoff),
}

impl InputConfig {
    /// The input kind, as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            InputConfig::Stdin(_) => "stdin",
            InputConfig::File(_) => "file",
            InputConfig::Generate(_) => "generate",
            InputConfig::Kafka(_) => "kafka",
            InputConfig::Nats(_) => "nats",
            InputConfig::Jetstream(_) => "jetstream",
            InputConfig::HttpServer(_) => "http_server",
        }
    }

    /// Whether the input talks to a broker or serves a port, and so has a state for readiness
    /// (connected, listening).
    pub fn remote(&self) -> bool {
        matches!(
            self,
            InputConfig::Kafka(_)
                | InputConfig::Nats(_)
                | InputConfig::Jetstream(_)
                | InputConfig::HttpServer(_)
        )
    }

    /// How payloads of this input are decoded.
    pub fn codec(&self) -> CodecConfig {
        let plain = |c: Codec| match c {
            Codec::Json => CodecConfig::Json,
            Codec::Raw => CodecConfig::Raw,
        };
        match self {
            InputConfig::Stdin(c) => plain(c.codec),
            InputConfig::File(c) => plain(c.codec),
            InputConfig::Generate(_) => CodecConfig::Json,
            InputConfig::Kafka(c) => c.codec.clone(),
            InputConfig::Nats(c) => c.codec.clone(),
            InputConfig::Jetstream(c) => c.codec.clone(),
            InputConfig::HttpServer(c) => c.codec.clone(),
        }
    }

    /// Builds the input without connecting. Every problem is reported under `path`; None when
    /// it cannot be built.
    pub fn build(&self, path: &str, cx: BuildContext<'_>, v: &mut Validator<'_>) -> Option<Input> {
        let path = format!("{path}.{}", self.kind());
        Some(match self {
            InputConfig::Stdin(c) => Input::Stdin(c.clone()),
            InputConfig::File(c) => {
                c.validate(&path, v);
                Input::File(c.clone())
            }
            InputConfig::Generate(c) => {
                c.validate(&path, v);
                Input::Generate(c.clone())
            }
            InputConfig::Kafka(c) => Input::Kafka(Box::new(c.build(&path, cx, v)?)),
            InputConfig::Nats(c) => Input::Nats(Box::new(c.build(&path, v)?)),
            InputConfig::Jetstream(c) => Input::Jetstream(Box::new(c.build(&path, v)?)),
            InputConfig::HttpServer(c) => Input::HttpServer(Box::new(c.build(&path, v)?)),
        })
    }
}

impl Input {
    /// Reads until the input ends, the shutdown token is cancelled, or the pipeline stops
    /// taking events.
    pub async fn run(self, ctx: SourceContext) -> Result<(), SourceError> {
        match self {
            Input::Stdin(c) => stdin::run(&c, ctx).await,
            Input::File(c) => file::run(&c, ctx).await,
            Input::Generate(c) => generate::run(&c, ctx).await,
            Input::Kafka(c) => kafka::run(*c, ctx).await,
            Input::Nats(c) => nats::run(&c, ctx).await,
            Input::Jetstream(c) => jetstream::run(&c, ctx).await,
            Input::HttpServer(c) => http::run(*c, ctx).await,
            Input::Handoff(h) => h.run(ctx).await,
        }
    }
}
