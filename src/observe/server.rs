//! The HTTP endpoint for operators: Prometheus metrics and health probes.
//!
//! - `GET /metrics`: Prometheus text format.
//! - `GET /health/live`: 200 while the process serves requests.
//! - `GET /health/ready`: 200 while every pipeline runs and no shutdown has begun; 503 otherwise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Process-wide readiness.
#[derive(Debug, Default)]
pub struct Health {
    shutting_down: AtomicBool,
    running: AtomicUsize,
    expected: AtomicUsize,
}

impl Health {
    /// Readiness for `pipelines` pipelines, none running yet.
    pub fn new(pipelines: usize) -> Arc<Health> {
        let h = Health::default();
        h.expected.store(pipelines, Ordering::Relaxed);
        Arc::new(h)
    }

    /// A pipeline started.
    pub fn pipeline_started(&self) {
        self.running.fetch_add(1, Ordering::AcqRel);
    }

    /// A pipeline stopped.
    pub fn pipeline_stopped(&self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
    }

    /// Shutdown began: not ready any more.
    pub fn shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Whether the process should receive traffic/work.
    pub fn is_ready(&self) -> bool {
        !self.shutting_down.load(Ordering::Acquire)
            && self.running.load(Ordering::Acquire) >= self.expected.load(Ordering::Acquire)
    }
}

/// Installs the Prometheus recorder for this process.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        // Latencies, in seconds.
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("sluice_batch_size".into()),
                &[
                    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0,
                ],
            )
        })
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    // Histogram samples wait in buckets until upkeep folds them in; without it they would pile
    // up between scrapes.
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(handle)
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
            get(|State(s): State<AppState>| async move { s.metrics.render() }),
        )
        .route("/health/live", get(|| async { "live\n" }))
        .route(
            "/health/ready",
            get(|State(s): State<AppState>| async move {
                if s.health.is_ready() {
                    (StatusCode::OK, "ready\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
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
