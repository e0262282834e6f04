//! The HTTP endpoint for operators: Prometheus metrics and health probes.
//!
//! - `GET /metrics`: Prometheus text format.
//! - `GET /health/live`: 200 while the process serves requests.
//! - `GET /health/ready`: 200 while every pipeline runs, every input and output is connected and no
//!   shutdown has begun; 503 otherwise, with the reasons in the body.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use super::health::Health;

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
