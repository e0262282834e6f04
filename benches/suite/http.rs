//! W6: events POSTed over HTTP -> the reshape -> core NATS, driven by wrk: sluice's
//! `http_server` input (`ack: delivered`) against a minimal axum server that forwards each event
//! to NATS and answers once the server confirmed them (the raw baseline, untransformed as W3's).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use testkit::measure::{self, Reading, event};
use testkit::nats::NatsServer;
use testkit::{Process, free_port, pipeline, wait_for};

use super::{RESHAPE, Row, raw_worker, sluice};

/// Events per request.
const PER_REQUEST: u64 = 50;
/// wrk's connections and threads.
const CONNECTIONS: u32 = 32;
const THREADS: u32 = 2;

/// What wrk reported.
struct Load {
    requests: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    not_2xx: u64,
}

/// W6 for `seconds` of load per runner.
pub fn workload(rows: &mut Vec<Row>, dir: &Path, seconds: u64) {
    let server = NatsServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(async_nats::connect(server.url())).unwrap();
    let body = dir.join("w6-body.json");
    let items: Vec<String> = (0..PER_REQUEST)
        .map(|i| String::from_utf8(event(i, 256)).unwrap())
        .collect();
    std::fs::write(&body, format!("[{}]", items.join(","))).unwrap();
    let script = dir.join("w6.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
             local f = io.open(\"{}\", \"rb\")\nwrk.body = f:read(\"*all\")\nf:close()\n",
            body.display()
        ),
    )
    .unwrap();
    let url = server.url();
    for runner in ["raw", "sluice"] {
        let port = free_port();
        let subject = format!("w6.out.{runner}");
        let worker = match runner {
            "raw" => raw_worker(&["http", &format!("127.0.0.1:{port}"), &url, &subject]),
            _ => {
                let file = pipeline(
                    dir,
                    "w6",
                    &format!(
                        "input:\n  http_server:\n    address: 127.0.0.1:{port}\n\
                         transforms:\n  - jq: '{RESHAPE}'\n\
                         output:\n  nats:\n    url: {url}\n    subject: {subject}\nerrors: drop\n"
                    ),
                );
                Process::spawn(sluice().arg(&file))
            }
        };
        let received = Arc::new(AtomicU64::new(0));
        let mut out = rt.block_on(async {
            let out = client.subscribe(subject.clone()).await.unwrap();
            client.flush().await.unwrap();
            out
        });
        let counting = rt.spawn({
            let received = received.clone();
            async move {
                use futures_util::StreamExt;
                while out.next().await.is_some() {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        // Until one request comes back 200, the worker is not listening and connected yet.
        wait_for("the worker to answer", Duration::from_secs(60), || {
            let status = Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--data-binary",
                ])
                .arg(format!("@{}", body.display()))
                .arg(format!("http://127.0.0.1:{port}/"))
                .output()
                .ok()?;
            (status.stdout == b"200").then_some(())
        });
        let pid = worker.id();
        let before = (received.load(Ordering::Relaxed), measure::cpu_seconds(pid));
        let load = wrk(port, &script, seconds);
        let cpu = measure::cpu_seconds(pid) - before.1;
        let peak = measure::peak_rss_mib(pid);
        // Every request answered 200 was published and confirmed already; a few more may have
        // been in flight when wrk stopped.
        let expected = (load.requests - load.not_2xx) * PER_REQUEST;
        let out = wait_for_count(&received, before.0 + expected) - before.0;
        counting.abort();
        drop(worker);
        rows.push(Row {
            workload: "W6",
            runner: runner.into(),
            reading: Some(Reading {
                events: (load.requests * PER_REQUEST) as f64,
                seconds: load.seconds,
                cpu_seconds: cpu,
                peak_rss_mib: peak,
            }),
            note: format!(
                "{PER_REQUEST} x 256 B per request, {CONNECTIONS} connections; latency p50 {:.2} ms, p99 {:.2} ms; {} not 2xx; {out} of {expected} answered events out",
                load.p50_ms, load.p99_ms, load.not_2xx
            ),
        });
    }
}

/// Waits (up to 30 s) until `received` reaches `n`; what it reached.
fn wait_for_count(received: &AtomicU64, n: u64) -> u64 {
    testkit::try_wait_for(Duration::from_secs(30), || {
        (received.load(Ordering::Relaxed) >= n).then_some(())
    });
    received.load(Ordering::Relaxed)
}

fn wrk(port: u16, script: &Path, seconds: u64) -> Load {
    let out = Command::new("wrk")
        .args(["-t", &THREADS.to_string(), "-c", &CONNECTIONS.to_string()])
        .args(["-d", &format!("{seconds}s"), "--latency", "-s"])
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}/"))
        .stderr(Stdio::inherit())
        .output()
        .expect("wrk is installed (scripts/setup.sh bench)");
    let text = String::from_utf8_lossy(&out.stdout);
    parse_wrk(&text).unwrap_or_else(|| panic!("cannot read wrk's report:\n{text}"))
}

fn parse_wrk(text: &str) -> Option<Load> {
    let words = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    };
    let percentile = |p: &str| millis(words(p)?.get(1)?);
    // "60000 requests in 10.00s, 5.00MB read"
    let line = text.lines().find(|l| l.contains(" requests in "))?;
    let mut parts = line.split_whitespace();
    let requests = parts.next()?.parse().ok()?;
    let seconds = parts.nth(2)?.trim_end_matches(',');
    let seconds = millis(seconds)? / 1000.0;
    let not_2xx = words("Non-2xx or 3xx responses:")
        .and_then(|w| w.last()?.parse().ok())
        .unwrap_or(0);
    Some(Load {
        requests,
        seconds,
        p50_ms: percentile("50%")?,
        p99_ms: percentile("99%")?,
        not_2xx,
    })
}

/// wrk's durations (`812.00us`, `4.50ms`, `1.20s`, `2.00m`) in milliseconds.
fn millis(text: &str) -> Option<f64> {
    for (unit, factor) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)] {
        if let Some(n) = text.strip_suffix(unit) {
            return n.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    None
}

/// The raw baseline: an axum server that forwards each item of a POSTed JSON array to NATS
/// unchanged, and answers 200 once the server confirmed them (a flush round trip).
pub async fn raw_server(address: &str, url: &str, subject: &str) {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::StatusCode;
    use serde_json::value::RawValue;

    let client = async_nats::connect(url).await.unwrap();
    let subject = async_nats::Subject::from(subject);
    let handler =
        async |State((client, subject)): State<(async_nats::Client, async_nats::Subject)>,
               body: Bytes| {
            let Ok(items) = serde_json::from_slice::<Vec<&RawValue>>(&body) else {
                return (StatusCode::BAD_REQUEST, "not a JSON array".to_string());
            };
            for item in &items {
                let payload = body.slice_ref(item.get().as_bytes());
                if client.publish(subject.clone(), payload).await.is_err() {
                    return (StatusCode::SERVICE_UNAVAILABLE, "publish failed".into());
                }
            }
            match client.flush().await {
                Ok(()) => (StatusCode::OK, format!("{{\"accepted\":{}}}", items.len())),
                Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "not confirmed".into()),
            }
        };
    let app = axum::Router::new()
        .route("/", axum::routing::post(handler))
        .with_state((client, subject));
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}
