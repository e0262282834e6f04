//! The `kafka` output: an idempotent producer; each event is confirmed by its delivery report.

use super::Batches;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, Statistics};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::deliver::{Attempt, Delivery, Holding, run_holding};
use super::retry::Held;
use super::{BuiltOutput, OutputSpec};
use super::{SinkContext, SinkError};
use crate::client::kafka::{
    BrokerLink, checked_client, classify, kafka_config, with_current_log_level,
};
use crate::codec::schema::FormatConfig;
use crate::config::{Build, HumanDuration};
use crate::delivery::Cause;
use crate::delivery::ErrorKind;
use crate::event::{Event, Failed};
use crate::policy::fit;

kafka_config! {
    /// Produces to a topic. A `route` step's `destination`, `key`, `partition`, `timestamp` and
    /// `headers` are used per event.
    pub struct KafkaOutputConfig {
        /// Topic for events with no `destination` of their own.
        pub topic: String,
        /// How results are written: `json` (the default), `avro: {...}` or `protobuf: {...}`, with
        /// the schema from a file or the Schema Registry (see "Avro and Protobuf").
        #[serde(default)]
        pub format: Option<crate::codec::schema::FormatConfig>,
        /// `none`, `gzip`, `snappy`, `lz4` or `zstd`.
        #[serde(default)]
        pub compression: Compression,
        /// Idempotent producer: retries never duplicate or reorder records within a partition.
        #[serde(default = "default_true")]
        pub idempotent: bool,
        /// How long the producer waits to fill a batch.
        #[serde(default = "default_linger")]
        pub linger: HumanDuration,
        /// How long a record may take to be delivered, retries included, before it fails.
        #[serde(default = "default_delivery_timeout")]
        pub delivery_timeout: HumanDuration,
    }
    options: "librdkafka producer properties (see the librdkafka documentation)."
}

/// Producer compression codec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4: cheap on CPU, good ratio on JSON.
    #[default]
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The librdkafka name.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

fn default_true() -> bool {
    true
}

// librdkafka's default linger.ms is 5 ms.
fn default_linger() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(5))
}

// librdkafka's default delivery.timeout.ms is 300 s.
fn default_delivery_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}

/// A `kafka` output, built: its librdkafka configuration checked.
#[derive(Debug, Clone)]
pub struct KafkaOutput {
    config: KafkaOutputConfig,
    client: ClientConfig,
}

/// Most events awaiting their delivery report at once; librdkafka's own queue holds 100,000.
const MAX_IN_FLIGHT: usize = 50_000;

/// Room for a record's key, headers (dead letters gain five) and framing on top of its payload.
const RECORD_OVERHEAD: usize = 64 * 1024;

/// The librdkafka producer configuration of a pipeline whose events are at most
/// `max_event_bytes`: the producer's own record limit (`message.max.bytes`, 1,000,000 by
/// default) is raised to fit them, unless `options` set it.
pub fn producer_config(
    config: &KafkaOutputConfig,
    pipeline: &str,
    max_event_bytes: usize,
) -> ClientConfig {
    let record_limit = (max_event_bytes + RECORD_OVERHEAD).clamp(1_000_000, 1_000_000_000);
    config.connection.client_config(
        pipeline,
        [
            ("enable.idempotence", config.idempotent.to_string()),
            ("compression.type", config.compression.as_str().into()),
            ("linger.ms", config.linger.0.as_millis().to_string()),
            (
                "delivery.timeout.ms",
                config.delivery_timeout.0.as_millis().to_string(),
            ),
            ("message.max.bytes", record_limit.to_string()),
        ],
    )
}

/// A delivery report: the event's key in the output's `held` slab, and the error when it was not
/// delivered.
type Report = (usize, Result<(), KafkaError>);

/// The producer's client context: broker connection state for readiness, and delivery reports,
/// passed from librdkafka's polling thread to the output's task as the key of the event.
struct ProducerLink {
    link: BrokerLink,
    reports: mpsc::UnboundedSender<Report>,
}

impl ClientContext for ProducerLink {
    fn stats(&self, statistics: Statistics) {
        self.link.stats(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.link.error(&error, reason);
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        self.link.log(level, fac, message);
    }
}

impl ProducerContext for ProducerLink {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, held: usize) {
        let result = match result {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e.clone()),
        };
        // Only gone once the output stopped: then the event is dropped unacknowledged and its
        // input is read again.
        let _ = self.reports.send((held, result));
    }
}

/// Most delivery reports settled in one go.
const REPORTS_AT_ONCE: usize = 4096;

/// A running output: the producer and the events it holds.
struct Output<'a> {
    producer: ThreadedProducer<ProducerLink>,
    config: &'a KafkaOutputConfig,
    reports: mpsc::UnboundedReceiver<Report>,
    /// Events handed to the producer whose report is not settled yet. A record carries its
    /// event's key here instead of the event itself, so it can borrow the payload and key from
    /// the slab: nothing is cloned or boxed per record.
    held: slab::Slab<Held>,
    /// Reports received and not yet settled.
    settled: Vec<Report>,
    /// Events whose reports are in: delivered and refused ones until settled, and those whose
    /// delivery failed for a passing reason, to be produced again after the backoff.
    attempt: Attempt,
    /// For the dead-letter output, the largest record it writes: a larger dead letter is cut.
    dead_letter_limit: Option<usize>,
}

impl Output<'_> {
    /// Waits for at least one delivery report (cancel safe: reports are only moved into
    /// `settled`).
    async fn settle_next(&mut self) {
        if self.settled.is_empty() {
            self.reports
                .recv_many(&mut self.settled, REPORTS_AT_ONCE)
                .await;
        }
    }

    /// Settles the reports already there, if any; false when there were none.
    async fn settle_ready(&mut self, delivery: &mut Delivery) -> Result<bool, SinkError> {
        while self.settled.len() < REPORTS_AT_ONCE {
            match self.reports.try_recv() {
                Ok(report) => self.settled.push(report),
                Err(_) => break,
            }
        }
        if self.settled.is_empty() {
            return Ok(false);
        }
        self.settle(delivery).await?;
        Ok(true)
    }

    /// Completes delivered events; a failed one follows the error policy, or, if the failure may
    /// pass, is kept to be produced again after the backoff.
    async fn settle(&mut self, delivery: &mut Delivery) -> Result<(), SinkError> {
        for (key, result) in self.settled.drain(..) {
            // Every report is for a record handed over, once.
            let Some(held) = self.held.try_remove(key) else {
                continue;
            };
            match result {
                Ok(()) => self.attempt.delivered(held.event),
                Err(e) => match classify(&e) {
                    ErrorKind::Fatal => {
                        // The producer is unusable (or purged its queue): nothing more is
                        // delivered, so the output stops and the input is not acknowledged.
                        return Err(SinkError::Producer(e));
                    }
                    ErrorKind::Retriable => {
                        let reason = e
                            .rdkafka_error_code()
                            .map_or_else(|| e.to_string(), |code| code.to_string());
                        self.attempt.retry(held, reason);
                    }
                    ErrorKind::Refused(cause) => {
                        let refused = Failed::at_output(held.event, e.to_string(), cause);
                        self.attempt.refused(refused);
                    }
                },
            }
        }
        delivery.settle(&mut self.attempt).await?;
        Ok(())
    }

    /// Produces again, after the backoff, the events whose delivery failed for a reason that may
    /// pass, until none wait; no new batch is taken meanwhile.
    async fn retry_failed(&mut self, delivery: &mut Delivery) -> Result<(), SinkError> {
        while self.attempt.has_retries() {
            // Take in every report already there, so one backoff covers them all.
            while self.settle_ready(delivery).await? {}
            let again = delivery.back_off(&mut self.attempt).await?;
            self.produce(again, delivery).await?;
        }
        Ok(())
    }

    /// Hands events to the producer. While librdkafka's queue is full, waits for delivery
    /// reports.
    async fn produce(
        &mut self,
        events: Vec<Held>,
        delivery: &mut Delivery,
    ) -> Result<(), SinkError> {
        let mut events = events.into_iter();
        let mut next = events.next();
        while let Some(held) = next.take() {
            match self.enqueue(held) {
                Ok(()) => next = events.next(),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // librdkafka's queue is full: wait for reports, then try again.
                    next = Some(back);
                    if !self.held.is_empty() {
                        self.settle_next().await;
                        self.settle(delivery).await?;
                    } else {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                Err((e, back)) => {
                    let cause = match classify(&e) {
                        ErrorKind::Fatal => {
                            return Err(SinkError::Producer(e));
                        }
                        ErrorKind::Refused(cause) => cause,
                        // Refused as it was handed over: librdkafka retries only what it queued.
                        ErrorKind::Retriable => Cause::Output,
                    };
                    next = events.next();
                    let refused = Failed::at_output(back.event, e.to_string(), cause);
                    delivery.refuse(refused).await?;
                }
            }
        }
        Ok(())
    }

    /// Hands one event to the producer; its report arrives through `reports`.
    #[allow(clippy::result_large_err)]
    fn enqueue(&mut self, mut held: Held) -> Result<(), (KafkaError, Held)> {
        if let Some(limit) = self.dead_letter_limit {
            fit(&mut held.event, limit);
        }
        let entry = self.held.vacant_entry();
        let key = entry.key();
        let event = &entry.insert(held).event;
        let topic = event.destination.as_deref().unwrap_or(&self.config.topic);
        let headers = (!event.headers.is_empty()).then(|| {
            let mut headers = OwnedHeaders::new_with_capacity(event.headers.len());
            for (name, value) in &event.headers {
                headers = headers.insert(Header {
                    key: name,
                    value: Some(&value[..]),
                });
            }
            headers
        });
        // librdkafka copies the payload, key and headers before `send` returns.
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(topic, key).payload(&event.payload[..]);
        if let Some(k) = &event.key {
            record = record.key(&k[..]);
        }
        if let Some(p) = event.partition {
            record = record.partition(p);
        }
        if let Some(ts) = event.timestamp {
            record = record.timestamp(ts);
        }
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        // The record goes on failure too: the event is taken back out of the slab.
        let sent = self.producer.send(record).map_err(|(e, _)| e);
        sent.map_err(|e| (e, self.held.remove(key)))
    }
}

impl Holding for Output<'_> {
    /// While the circuit is open no new batch is taken (the input waits on the bus), unless
    /// nothing is left to probe the output with; nor while the most records are in flight.
    fn has_room(&self, delivery: &Delivery) -> bool {
        let in_flight = self.held.len();
        (!delivery.circuit_open() || in_flight == 0) && in_flight < MAX_IN_FLIGHT
    }

    fn holds(&self) -> bool {
        !self.held.is_empty()
    }

    async fn take(&mut self, batch: Vec<Event>, delivery: &mut Delivery) -> Result<(), SinkError> {
        self.produce(batch.into_iter().map(Held::new).collect(), delivery)
            .await?;
        self.retry_failed(delivery).await
    }

    async fn ready(&mut self) {
        self.settle_next().await;
    }

    async fn work(&mut self, delivery: &mut Delivery) -> Result<(), SinkError> {
        self.settle(delivery).await?;
        self.retry_failed(delivery).await
    }

    /// Nothing to do: every record handed over gets its report, retries included, which
    /// [`run_holding`] waits for.
    async fn close(&mut self, _delivery: &mut Delivery) -> Result<(), SinkError> {
        Ok(())
    }
}

/// The largest dead letter written: the producer's `message.max.bytes` when set in `options`,
/// else librdkafka's default of 1,000,000 bytes, which brokers take by default (their own
/// `message.max.bytes` is 1,048,588), less room for the record's framing.
fn dead_letter_limit(config: &KafkaOutputConfig) -> usize {
    const DEFAULT: usize = 1_000_000;
    // librdkafka's estimate of a record's framing in a batch, rounded up.
    const FRAMING: usize = 512;
    config
        .connection
        .options
        .0
        .get("message.max.bytes")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT)
        .saturating_sub(FRAMING)
}

impl OutputSpec for KafkaOutputConfig {
    const KIND: &'static str = "kafka";
    const REMOTE: bool = true;
    type Built = KafkaOutput;

    fn build(&self, b: Build<'_, '_>) -> Option<KafkaOutput> {
        let Build { path, cx, v } = b;
        let before = v.errors.len();
        self.connection.check(
            &[
                "bootstrap.servers",
                "enable.idempotence",
                "compression.codec",
                "compression.type",
            ],
            path,
            v,
        );
        if self.topic.trim().is_empty() {
            v.error_at(&format!("{path}.topic"), "topic must not be empty");
        }
        let client = producer_config(self, cx.pipeline, cx.max_event_bytes);
        let client = checked_client(client, before, path, v)?;
        Some(KafkaOutput {
            config: self.clone(),
            client,
        })
    }

    fn format(&self) -> Option<std::borrow::Cow<'_, FormatConfig>> {
        self.format.as_ref().map(std::borrow::Cow::Borrowed)
    }

    fn destination(&self) -> Option<&str> {
        Some(&self.topic)
    }
}

impl BuiltOutput for KafkaOutput {
    /// Produces batches until the channel closes and every delivery report is in. librdkafka retries
    /// a record itself until `delivery_timeout`; a record that still fails for a passing reason
    /// (brokers unreachable, timeout) is produced again after a backoff, while no new batch is taken.
    async fn run(self, rx: Batches, ctx: SinkContext) -> Result<(), SinkError> {
        let output = &self;
        let config = &output.config;
        let pipeline = ctx.telemetry.pipeline();
        config.connection.security().warn(pipeline);
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let link = ProducerLink {
            link: BrokerLink::new(
                ctx.link.clone(),
                pipeline,
                if ctx.dead_letter {
                    "dead-letter producer"
                } else {
                    "producer"
                },
            ),
            reports: reports_tx,
        };
        let producer: ThreadedProducer<ProducerLink> = with_current_log_level(&output.client)
            .create_with_context(link)
            .map_err(|e| SinkError::KafkaClient(e.into()))?;
        let dead_letter_limit = ctx.dead_letter.then(|| dead_letter_limit(config));
        let out = Output {
            producer,
            config,
            reports,
            held: slab::Slab::new(),
            settled: Vec::with_capacity(REPORTS_AT_ONCE),
            attempt: Attempt::default(),
            dead_letter_limit,
        };
        run_holding(out, rx, ctx).await
    }
}
