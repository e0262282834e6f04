//! Outputs: the output registry (`OutputConfig`) and what every sink gets to run.

pub mod deliver;
pub mod file;
pub mod http;
pub mod jetstream;
pub mod kafka;
pub mod nats;
pub mod object_store;
pub mod retry;
pub mod stdout;

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::mpsc;

use crate::codec::Format;
use crate::config::{BuildContext, Validator};
use crate::delivery::MustStop;
use crate::delivery::Outcome;
use crate::event::Event;
use crate::observe::Telemetry;
use crate::policy::Failures;

/// Where a pipeline writes events (or, under `errors:`, dead letters): exactly one of these keys.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputConfig {
    /// Standard output, one event per line.
    Stdout(stdout::StdoutConfig),
    /// A file, appended to: lines, an Avro object container file or length-delimited Protobuf.
    File(file::FileOutputConfig),
    /// A Kafka topic.
    Kafka(kafka::KafkaOutputConfig),
    /// A core NATS subject.
    Nats(nats::NatsOutputConfig),
    /// A JetStream subject, each publish confirmed by the stream.
    Jetstream(jetstream::JetStreamOutputConfig),
    /// An HTTP endpoint, a batch of events per request.
    Http(http::HttpOutputConfig),
    /// Objects in S3, Azure Blob Storage, Google Cloud Storage or local files.
    ObjectStore(object_store::ObjectStoreOutputConfig),
}

/// Why a sink stopped.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing failed and cannot be retried.
    #[error("{output} output: {message}")]
    Write {
        /// Output kind.
        output: &'static str,
        /// What failed.
        message: String,
    },
    /// An event the output rejected stops the pipeline.
    #[error(transparent)]
    Stopped(#[from] MustStop),
}

/// What a running sink is given.
pub struct SinkContext {
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
            self.telemetry.dead_lettered(n);
        } else {
            self.telemetry.sent(n);
        }
    }
}

/// An output built from its configuration: everything that can be known without connecting is
/// checked, and what it runs with is prepared (client configurations, TLS, credentials).
#[derive(Debug, Clone)]
pub enum Output {
    /// Standard output.
    Stdout(stdout::StdoutConfig),
    /// A file.
    File(Box<file::FileOutput>),
    /// A Kafka topic.
    Kafka(Box<kafka::KafkaOutput>),
    /// A core NATS subject.
    Nats(Box<nats::NatsOutput>),
    /// A JetStream subject.
    Jetstream(Box<jetstream::JetStreamOutput>),
    /// An HTTP endpoint.
    Http(Box<http::HttpOutput>),
    /// An object store.
    ObjectStore(Box<object_store::ObjectStoreOutput>),
}

impl OutputConfig {
    /// Whether the output talks to a broker (and so has a connection state for readiness).
    pub fn remote(&self) -> bool {
        matches!(
            self,
            OutputConfig::Kafka(_) | OutputConfig::Nats(_) | OutputConfig::Jetstream(_)
        )
    }

    /// The most payload bytes the output gathers into one write before it writes (an object
    /// store's objects); 0 for outputs that write as events come.
    pub fn gathers_bytes(&self) -> usize {
        match self {
            OutputConfig::ObjectStore(c) => c.batch.max_bytes.0,
            _ => 0,
        }
    }

    /// What the workers encode results as for this output (its `format`), unless JSON.
    pub fn format(&self) -> Option<Cow<'_, crate::codec::schema::FormatConfig>> {
        match self {
            OutputConfig::Kafka(c) => c.format.as_ref().map(Cow::Borrowed),
            OutputConfig::Nats(c) => c.format.as_ref().map(Cow::Borrowed),
            OutputConfig::Jetstream(c) => c.format.as_ref().map(Cow::Borrowed),
            OutputConfig::File(c) => c.encoding().map(Cow::Owned),
            _ => None,
        }
    }

    /// The topic or subject of events with no destination of their own, where it has one.
    pub fn destination(&self) -> Option<&str> {
        match self {
            OutputConfig::Kafka(c) => Some(&c.topic),
            OutputConfig::Nats(c) => Some(&c.subject),
            OutputConfig::Jetstream(c) => Some(&c.subject),
            _ => None,
        }
    }

    /// The output kind, as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            OutputConfig::Stdout(_) => "stdout",
            OutputConfig::File(_) => "file",
            OutputConfig::Kafka(_) => "kafka",
            OutputConfig::Nats(_) => "nats",
            OutputConfig::Jetstream(_) => "jetstream",
            OutputConfig::Http(_) => "http",
            OutputConfig::ObjectStore(_) => "object_store",
        }
    }

    /// Builds the output without connecting. Every problem is reported under `path`; None when
    /// it cannot be built.
    pub fn build(&self, path: &str, cx: BuildContext<'_>, v: &mut Validator<'_>) -> Option<Output> {
        let path = format!("{path}.{}", self.kind());
        Some(match self {
            OutputConfig::Stdout(c) => Output::Stdout(c.clone()),
            OutputConfig::File(c) => {
                c.validate(&path, v);
                Output::File(Box::new(file::FileOutput::new(c.clone())))
            }
            OutputConfig::Kafka(c) => Output::Kafka(Box::new(c.build(&path, cx, v)?)),
            OutputConfig::Nats(c) => Output::Nats(Box::new(c.build(&path, v)?)),
            OutputConfig::Jetstream(c) => Output::Jetstream(Box::new(c.build(&path, v)?)),
            OutputConfig::Http(c) => Output::Http(Box::new(c.build(&path, v)?)),
            OutputConfig::ObjectStore(c) => {
                Output::ObjectStore(Box::new(c.build(&path, cx.pipeline, v)?))
            }
        })
    }
}

impl Output {
    /// Why the output would refuse an event with this payload before sending it (a Parquet row
    /// that does not fit the schema); None when it would take it. For `sluice eval`.
    pub fn rejects(&self, payload: &bytes::Bytes) -> Option<String> {
        match self {
            Output::ObjectStore(o) => o.rejects(payload),
            _ => None,
        }
    }

    /// Delivers batches until the channel closes, completing each event's ack once delivered.
    pub async fn run(
        self,
        rx: mpsc::Receiver<Vec<Event>>,
        ctx: SinkContext,
    ) -> Result<(), SinkError> {
        match self {
            Output::Stdout(c) => stdout::run(&c, rx, ctx).await,
            Output::File(c) => file::run(&c, rx, ctx).await,
            Output::Kafka(c) => kafka::run(&c, rx, ctx).await,
            Output::Nats(c) => nats::run(&c, rx, ctx).await,
            Output::Jetstream(c) => jetstream::run(&c, rx, ctx).await,
            Output::Http(c) => http::run(&c, rx, ctx).await,
            Output::ObjectStore(c) => object_store::run(*c, rx, ctx).await,
        }
    }
}

/// Most events one write takes from the queue at once.
const MAX_WRITE: usize = 4096;

/// The next batch to write, joined by the batches already waiting behind it (up to about
/// [`MAX_WRITE`] events): an output that waits for a confirmation per write pays for it once
/// for all of them.
pub(crate) async fn next_write(rx: &mut mpsc::Receiver<Vec<Event>>) -> Option<Vec<Event>> {
    let mut batch = rx.recv().await?;
    crate::delivery::join_waiting(rx, &mut batch, MAX_WRITE);
    Some(batch)
}

/// A local output writing events as lines (standard output, a file): one write and one flush
/// per batch.
pub(crate) struct LineWriter<W> {
    format: Format,
    /// Where the lines go.
    pub out: W,
    buf: Vec<u8>,
}

impl<W: tokio::io::AsyncWrite + Unpin> LineWriter<W> {
    /// Lines in `format` to `out`.
    pub fn new(format: Format, out: W) -> Self {
        LineWriter {
            format,
            out,
            buf: Vec::with_capacity(256 * 1024),
        }
    }

    /// Writes the events of `batch` as lines, and flushes.
    pub async fn write(&mut self, batch: &[retry::Held]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.buf.clear();
        encode_lines(batch.iter().map(|h| &h.event), self.format, &mut self.buf);
        self.out.write_all(&self.buf).await?;
        self.out.flush().await
    }
}

/// Writes a batch as lines in `format` into `buf`.
pub(crate) fn encode_lines<'a>(
    batch: impl IntoIterator<Item = &'a Event>,
    format: Format,
    buf: &mut Vec<u8>,
) {
    for e in batch {
        match format {
            Format::Payload => buf.extend_from_slice(&e.payload),
            Format::Envelope => crate::codec::write_envelope(e, buf),
        }
        buf.push(b'\n');
    }
}

/// The format of a local output: as configured, or by default the payload for outputs and the
/// envelope for dead letters (so the reason headers are not lost).
pub(crate) fn resolve_format(format: Option<Format>, ctx: &SinkContext) -> Format {
    format.unwrap_or(if ctx.dead_letter {
        Format::Envelope
    } else {
        Format::Payload
    })
}
