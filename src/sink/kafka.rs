//! The `kafka` output: an idempotent producer; each event is confirmed by its delivery report.

use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, ClientContext, Statistics};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::retry::{Held, Retry};
use super::{SinkContext, SinkError};
use crate::config::{ClientOptions, HumanDuration, Validator};
use crate::event::Event;
use crate::runtime::failures::{Failure, OUTPUT_STEP};
use crate::source::kafka::{BrokerLink, STATS_INTERVAL_MS, check_brokers, check_options};

/// Produces to a topic. A `route` step's `destination`, `key`, `partition`, `timestamp` and
/// `headers` are used per event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaOutputConfig {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Topic for events with no `destination` of their own.
    pub topic: String,
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
    /// librdkafka producer properties (`security.protocol`, `sasl.*`, `ssl.*`, ...).
    #[serde(default)]
    pub options: ClientOptions,
}

/// Producer compression codec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
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

impl KafkaOutputConfig {
    /// Checks values serde cannot.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        check_brokers(&self.brokers, &format!("{path}.brokers"), v);
        if self.topic.trim().is_empty() {
            v.error_at(&format!("{path}.topic"), "topic must not be empty");
        }
        check_options(
            &self.options,
            &[
                "bootstrap.servers",
                "enable.idempotence",
                "compression.codec",
                "compression.type",
            ],
            &format!("{path}.options"),
            v,
        );
    }
}

/// Most events awaiting their delivery report at once; librdkafka's own queue holds 100,000.
const MAX_IN_FLIGHT: usize = 50_000;

/// The librdkafka producer configuration of a pipeline.
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
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &config.brokers)
        .set("client.id", format!("sluice-{pipeline}"))
        .set(
            "enable.idempotence",
            if config.idempotent { "true" } else { "false" },
        )
        .set("compression.type", config.compression.as_str())
        .set("linger.ms", config.linger.0.as_millis().to_string())
        .set(
            "delivery.timeout.ms",
            config.delivery_timeout.0.as_millis().to_string(),
        )
        .set("statistics.interval.ms", STATS_INTERVAL_MS)
        .set(
            "message.max.bytes",
            (max_event_bytes + RECORD_OVERHEAD)
                .clamp(1_000_000, 1_000_000_000)
                .to_string(),
        );
    for (k, v) in &config.options.0 {
        cc.set(k, v);
    }
    cc
}

fn write_error(message: impl std::fmt::Display) -> SinkError {
    SinkError::Write {
        output: "kafka",
        message: message.to_string(),
    }
}

/// The producer's client context: broker connection state for readiness.
struct ProducerLink(BrokerLink);

impl ClientContext for ProducerLink {
    fn stats(&self, statistics: Statistics) {
        self.0.stats(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.error(&error, reason);
    }
}

/// Produces batches until the channel closes and every delivery report is in. librdkafka retries
/// a record itself until `delivery_timeout`; a record that still fails for a passing reason
/// (brokers unreachable, timeout) is produced again after a backoff, while no new batch is taken.
pub async fn run(
    config: &KafkaOutputConfig,
    mut rx: mpsc::Receiver<Vec<Event>>,
    ctx: SinkContext,
) -> Result<(), SinkError> {
    let pipeline = ctx.telemetry.pipeline();
    let link = ProducerLink(BrokerLink::new(
        ctx.link.clone(),
        pipeline,
        if ctx.dead_letter {
            "dead-letter producer"
        } else {
            "producer"
        },
    ));
    let producer: FutureProducer<ProducerLink> =
        producer_config(config, pipeline, ctx.max_event_bytes)
            .create_with_context(link)
            .map_err(write_error)?;
    let mut retry = Retry::new(&ctx);
    let mut in_flight: InFlight = FuturesUnordered::new();
    // Events whose delivery failed for a passing reason, to be produced again.
    let mut failed = Vec::new();
    let mut open = true;
    loop {
        if !failed.is_empty() {
            // Take in every report already there, so one backoff covers them all.
            while let Some(Some((held, report))) = in_flight.next().now_or_never() {
                settle(held, report, &ctx, &mut retry, &mut failed).await?;
            }
            let again = retry
                .after_attempt(std::mem::take(&mut failed), &ctx)
                .await?;
            produce(
                &producer,
                config,
                again,
                &mut in_flight,
                &ctx,
                &mut retry,
                &mut failed,
            )
            .await?;
            continue;
        }
        tokio::select! {
            biased;
            Some((held, report)) = in_flight.next(), if !in_flight.is_empty() => {
                settle(held, report, &ctx, &mut retry, &mut failed).await?;
            }
            // While the circuit is open no new batch is taken (the input waits on the bus), unless
            // nothing is left to probe the output with.
            batch = rx.recv(), if open && (!retry.is_open() || in_flight.is_empty()) && in_flight.len() < MAX_IN_FLIGHT => match batch {
                Some(batch) => {
                    let batch = batch.into_iter().map(Held::new).collect();
                    produce(&producer, config, batch, &mut in_flight, &ctx, &mut retry, &mut failed).await?;
                }
                None => open = false,
            },
            else => break,
        }
    }
    Ok(())
}

/// A delivery report; `Err(())` when the producer went away before reporting.
type Report = Result<rdkafka::producer::future_producer::OwnedDeliveryResult, ()>;

type InFlight = FuturesUnordered<std::pin::Pin<Box<dyn Future<Output = (Held, Report)> + Send>>>;

/// Hands events to the producer. While librdkafka's queue is full, waits for delivery reports.
async fn produce(
    producer: &FutureProducer<ProducerLink>,
    config: &KafkaOutputConfig,
    events: Vec<Held>,
    in_flight: &mut InFlight,
    ctx: &SinkContext,
    retry: &mut Retry,
    failed: &mut Vec<(Held, String)>,
) -> Result<(), SinkError> {
    let mut queue = std::collections::VecDeque::from(events);
    while let Some(held) = queue.pop_front() {
        match enqueue(producer, config, held) {
            Ok(delivery) => in_flight.push(Box::pin(delivery)),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                // librdkafka's queue is full: wait for a report, then retry.
                queue.push_front(back);
                match in_flight.next().await {
                    Some((done, report)) => settle(done, report, ctx, retry, failed).await?,
                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
            Err((KafkaError::MessageProduction(code), _)) if fatal(code) => {
                return Err(write_error(format!("the producer failed: {code}")));
            }
            Err((e, back)) => {
                ctx.failures
                    .handle(vec![Failure {
                        event: back.event,
                        step: OUTPUT_STEP.into(),
                        reason: e.to_string(),
                    }])
                    .await?;
            }
        }
    }
    Ok(())
}

/// Hands one event to the producer; returns a future of its delivery report.
#[allow(clippy::result_large_err)]
fn enqueue(
    producer: &FutureProducer<ProducerLink>,
    config: &KafkaOutputConfig,
    held: Held,
) -> Result<impl Future<Output = (Held, Report)> + Send + use<>, (KafkaError, Held)> {
    let sent = {
        let event = &held.event;
        let topic = event.destination.as_deref().unwrap_or(&config.topic);
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(topic).payload(&event.payload[..]);
        if let Some(key) = &event.key {
            record = record.key(&key[..]);
        }
        if let Some(p) = event.partition {
            record = record.partition(p);
        }
        if let Some(ts) = event.timestamp {
            record = record.timestamp(ts);
        }
        if !event.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(event.headers.len());
            for (name, value) in &event.headers {
                headers = headers.insert(Header {
                    key: name,
                    value: Some(&value[..]),
                });
            }
            record = record.headers(headers);
        }
        producer.send_result(record).map_err(|(e, _)| e)
    };
    match sent {
        Ok(delivery) => Ok(async move { (held, delivery.await.map_err(|_| ())) }),
        Err(e) => Err((e, held)),
    }
}

/// Whether the producer can deliver nothing more: a fatal (idempotence) error, after which
/// librdkafka purges its queue and refuses every record.
fn fatal(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(code, C::Fatal | C::PurgeQueue | C::PurgeInflight)
}

/// Whether a delivery failure may pass by itself (retry) rather than being about the record.
fn passing(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::MessageTimedOut
            | C::AllBrokersDown
            | C::BrokerTransportFailure
            | C::RequestTimedOut
            | C::NetworkException
            | C::BrokerNotAvailable
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::NotCoordinator
            | C::CoordinatorNotAvailable
            | C::KafkaStorageError
            | C::ThrottlingQuotaExceeded
    )
}

/// Completes a delivered event; a failed one follows the error policy, or, if the failure may
/// pass, goes to `failed` to be produced again after the backoff.
async fn settle(
    held: Held,
    report: Report,
    ctx: &SinkContext,
    retry: &mut Retry,
    failed: &mut Vec<(Held, String)>,
) -> Result<(), SinkError> {
    let reason = match report {
        Ok(Ok(_)) => {
            retry.succeeded();
            ctx.confirm_one(held.event);
            return Ok(());
        }
        Ok(Err((KafkaError::MessageProduction(code), _))) if fatal(code) => {
            // The producer is unusable (or purged its queue): nothing more is delivered, so the
            // output stops and the input is not acknowledged.
            drop(held);
            return Err(write_error(format!("the producer failed: {code}")));
        }
        Ok(Err((KafkaError::MessageProduction(code), _))) if passing(code) => {
            failed.push((held, code.to_string()));
            return Ok(());
        }
        Ok(Err((e, _))) => e.to_string(),
        Err(_) => "the producer dropped the message".to_string(),
    };
    ctx.failures
        .handle(vec![Failure {
            event: held.event,
            step: OUTPUT_STEP.into(),
            reason,
        }])
        .await?;
    Ok(())
}
