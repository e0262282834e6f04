//! The HTTP endpoint for operators: Prometheus metrics and health probes.
//!
//! - `GET /metrics`: Prometheus text format.
//! - `GET /health/live`: 200 while the process serves requests.
//! - `GET /health/ready`: 200 while every pipeline runs, every input and output is connected and no
//!   shutdown has begun; 503 otherwise, with the reasons in the body.

use super::names;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use super::health::Health;

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Why the Prometheus recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// The exporter refused its buckets, or a recorder was already installed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The thread that folds histogram samples did not start.
    #[error(transparent)]
    Upkeep(#[from] io::Error),
}

/// Why the endpoint did not start; each is logged as it was found (see [`StartError::log`]).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address names no host.
    #[error("the metrics address resolves to nothing")]
    NoAddress {
        /// The address as given.
        address: String,
    },
    /// The address is not `host:port`, or its host could not be looked up.
    #[error("invalid metrics address: expected host:port")]
    BadAddress {
        /// The address as given.
        address: String,
        /// Why the lookup failed.
        #[source]
        error: io::Error,
    },
    /// The Prometheus recorder could not be installed.
    #[error("cannot install the metrics recorder")]
    Recorder(#[source] RecorderError),
    /// The port could not be bound.
    #[error("cannot listen for metrics")]
    Listen {
        /// The address resolved.
        address: SocketAddr,
        /// Why binding failed.
        #[source]
        error: io::Error,
    },
}

impl StartError {
    /// Logs the error with what it concerns.
    pub fn log(&self) {
        match self {
            StartError::NoAddress { address } => tracing::error!(address = %address, "{self}"),
            StartError::BadAddress { address, error } => {
                tracing::error!(address = %address, error = %error, "{self}")
            }
            StartError::Recorder(error) => tracing::error!(error = %error, "{self}"),
            StartError::Listen { address, error } => {
                tracing::error!(address = %address, error = %error, "{self}")
            }
        }
    }
}

/// Serves /metrics and the health probes on `address` (`host:port`) until `stop`: the address is
/// resolved, the recorder installed and the port bound before it returns.
pub async fn start(
    address: &str,
    health: Arc<Health>,
    stop: CancellationToken,
) -> Result<(), StartError> {
    let addr = match tokio::net::lookup_host(address).await {
        Ok(mut addrs) => addrs.next().ok_or_else(|| StartError::NoAddress {
            address: address.to_string(),
        })?,
        Err(error) => {
            return Err(StartError::BadAddress {
                address: address.to_string(),
                error,
            });
        }
    };
    let handle = install_recorder().map_err(StartError::Recorder)?;
    let server = bind(addr, handle, health, stop)
        .await
        .map_err(|error| StartError::Listen {
            address: addr,
            error,
        })?;
    tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "metrics endpoint failed");
        }
    });
    Ok(())
}

/// Installs the Prometheus recorder for this process.
pub fn install_recorder() -> Result<PrometheusHandle, RecorderError> {
    let handle = PrometheusBuilder::new()
        // Latencies, in seconds.
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(names::BATCH_SIZE.into()),
                &[
                    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0,
                ],
            )
        })?
        .install_recorder()?;
    describe();
    // Histogram samples wait in a queue until upkeep folds them into the buckets; without it they
    // would pile up between scrapes. Each sample takes 24 bytes (it is stamped with the time),
    // and the latency histogram takes one per input: at 400,000 inputs/s a second's worth is
    // about 10 MB, so upkeep runs often.
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        })?;
    Ok(handle)
}

/// What a metric is, for its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Samples in buckets.
    Histogram,
}

/// The `# HELP` text of every metric sluice exports (the README's tables say the same).
pub const HELP: &[(&str, Kind, &str)] = &[
    (
        names::EVENTS_RECEIVED_TOTAL,
        Kind::Counter,
        "Events read by the input.",
    ),
    (
        names::EVENTS_SENT_TOTAL,
        Kind::Counter,
        "Events confirmed delivered by the output.",
    ),
    (
        names::EVENTS_FILTERED_TOTAL,
        Kind::Counter,
        "Inputs that produced no output.",
    ),
    (
        names::EVENTS_FAILED_TOTAL,
        Kind::Counter,
        "Events that failed, by step.",
    ),
    (
        names::EVENTS_DROPPED_TOTAL,
        Kind::Counter,
        "Failed events dropped: by errors: drop, or dead letters the dead-letter output refused.",
    ),
    (
        names::EVENTS_DEAD_LETTERED_TOTAL,
        Kind::Counter,
        "Failed events delivered to the dead-letter output.",
    ),
    (
        names::EVENTS_REDELIVERY_REQUESTED_TOTAL,
        Kind::Counter,
        "Failed events whose input was nak'ed for redelivery instead of following the error policy.",
    ),
    (
        names::EVENTS_IN_FLIGHT,
        Kind::Gauge,
        "Inputs read and not yet finished.",
    ),
    (
        names::BYTES_IN_FLIGHT,
        Kind::Gauge,
        "Bytes of inputs read and not yet finished (payload plus 256 per input).",
    ),
    (
        names::EVENT_LATENCY_SECONDS,
        Kind::Histogram,
        "Seconds from reading an input to the delivery of everything derived from it; one sample per input delivered or filtered.",
    ),
    (
        names::BATCH_SIZE,
        Kind::Histogram,
        "Events per batch, by stage: input (entering the transforms) and output (handed to the output).",
    ),
    (
        names::OUTPUT_RETRIES_TOTAL,
        Kind::Counter,
        "Events tried again after a passing output failure.",
    ),
    (
        names::OUTPUT_CIRCUIT_OPEN,
        Kind::Gauge,
        "1 while the output's circuit is open.",
    ),
    (
        names::CONNECTED,
        Kind::Gauge,
        "1 while an input or output can reach its broker.",
    ),
    (
        names::KAFKA_CONSUMER_LAG,
        Kind::Gauge,
        "High watermark minus the group's committed offset, per partition this member owns; absent until known.",
    ),
    (
        names::KAFKA_FETCH_PAUSED,
        Kind::Gauge,
        "1 while the Kafka input has paused fetching because the pipeline is full (output slow or down, in-flight budget used up).",
    ),
    (
        names::KAFKA_COMMITS_TOTAL,
        Kind::Counter,
        "Kafka offset commits sent.",
    ),
    (
        names::KAFKA_COMMIT_ERRORS_TOTAL,
        Kind::Counter,
        "Kafka offset commits that failed (retried at the next commit).",
    ),
    (
        names::KAFKA_CONNECTS_TOTAL,
        Kind::Counter,
        "Times a Kafka client regained a broker connection.",
    ),
    (
        names::KAFKA_DISCONNECTS_TOTAL,
        Kind::Counter,
        "Times a Kafka client lost every broker connection.",
    ),
    (
        names::JETSTREAM_PENDING,
        Kind::Gauge,
        "Messages of the stream not yet delivered to the consumer.",
    ),
    (
        names::JETSTREAM_REDELIVERED_TOTAL,
        Kind::Counter,
        "JetStream messages read that had been delivered before.",
    ),
    (
        names::JETSTREAM_ACKS_TOTAL,
        Kind::Counter,
        "JetStream acknowledgements sent, by kind: ack, nak, in_progress.",
    ),
    (
        names::JETSTREAM_LOST_PULLS_TOTAL,
        Kind::Counter,
        "JetStream pull requests that got no answer.",
    ),
    (
        names::NATS_CONNECTS_TOTAL,
        Kind::Counter,
        "NATS connections made.",
    ),
    (
        names::NATS_DISCONNECTS_TOTAL,
        Kind::Counter,
        "NATS connections lost.",
    ),
    (
        names::NATS_SLOW_CONSUMER_TOTAL,
        Kind::Counter,
        "NATS slow-consumer events: messages the client dropped.",
    ),
    (
        names::HTTP_REQUESTS_TOTAL,
        Kind::Counter,
        "Requests answered by the http_server input, by status.",
    ),
    (
        names::HTTP_CONNECTIONS,
        Kind::Gauge,
        "Connections open to the http_server input (at most its max_connections).",
    ),
];

/// The `# HELP` text of `metric`.
fn help_of(metric: &str) -> &'static str {
    HELP.iter()
        .find(|(name, _, _)| *name == metric)
        .map_or("", |(_, _, help)| help)
}

/// Gives every metric its `# HELP` line.
fn describe() {
    for &(name, kind, help) in HELP {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram if name.ends_with("_seconds") => {
                metrics::describe_histogram!(name, metrics::Unit::Seconds, help)
            }
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

#[derive(Clone)]
struct AppState {
    metrics: PrometheusHandle,
    health: Arc<Health>,
}

/// Binds `addr` (so a taken port fails at start) and returns the server future, which runs
/// until `stop` is cancelled.
pub async fn bind(
    addr: SocketAddr,
    metrics: PrometheusHandle,
    health: Arc<Health>,
    stop: CancellationToken,
) -> std::io::Result<impl Future<Output = std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "serving /metrics, /health/live and /health/ready");
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(s): State<AppState>| async move {
                let mut text = s.metrics.render();
                super::partitions::render(&mut text, help_of(names::KAFKA_CONSUMER_LAG));
                text
            }),
        )
        .route("/health/live", get(|| async { "live\n" }))
        .route(
            "/health/ready",
            get(|State(s): State<AppState>| async move {
                let problems = s.health.problems();
                if problems.is_empty() {
                    (StatusCode::OK, "ready\n".to_string())
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: {}\n", problems.join("; ")),
                    )
                }
            }),
        )
        .with_state(AppState { metrics, health });
    Ok(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    })
}
