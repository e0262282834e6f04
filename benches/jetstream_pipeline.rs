//! JetStream-to-JetStream throughput: sluice pipelines against a raw async-nats
//! fetch->publish->ack loop, on the same nats-server (started here, file storage), in one run.
//!
//! `cargo bench --bench jetstream_pipeline [-- EVENTS]` prints events/s for each, the ratio to the
//! raw loop, and CPU-microseconds per event of this process (the server is a separate process
//! and not counted). Every workload publishes with `Nats-Msg-Id` and waits for the stream's
//! acknowledgement before acking its input. Run without `--bench` (as `cargo test` does) it
//! only checks that every workload drains a small backlog.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

const EVENT_BYTES: usize = 512;

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc (Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

/// A 512-byte JSON event.
fn event(i: u64) -> Vec<u8> {
    let mut e = format!(
        "{{\"id\":{i},\"ts\":{},\"service\":\"svc-{}\",\"status\":{},\"latency\":{:.4},\"msg\":\"request handled\",\
         \"host\":\"host-{}\",\"region\":\"eu-west-1\",\"method\":\"GET\",\"path\":\"/api/v1/items/{}\",\"pad\":\"",
        1_700_000_000_000u64 + i,
        i % 17,
        if i.is_multiple_of(2) { 500 } else { 200 },
        (i % 1000) as f64 / 997.0,
        i % 31,
        i % 1000,
    );
    while e.len() < EVENT_BYTES - 2 {
        e.push('x');
    }
    e.push_str("\"}");
    e.into_bytes()
}

struct Server {
    child: Child,
    url: String,
    _store: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = tempfile::tempdir().unwrap();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is installed (scripts/setup.sh nats)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            _store: store,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn stored(js: &jetstream::Context, name: &str) -> u64 {
    match js.get_stream(name).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// A throughput reading on an output stream: from the moment 2% of the expected events are
/// stored (consumer set up, pipeline warm) to the moment all are.
struct Reading {
    events: u64,
    seconds: f64,
    cpu_seconds: f64,
}

async fn measure(js: &jetstream::Context, name: &str, expect: u64) -> Reading {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut start: Option<(Instant, u64, f64)> = None;
    loop {
        let total = stored(js, name).await;
        if start.is_none() && total >= expect / 50 {
            start = Some((Instant::now(), total, cpu_seconds()));
        }
        if total >= expect {
            let (t0, c0, cpu0) = start.unwrap_or((Instant::now(), 0, cpu_seconds()));
            return Reading {
                events: total - c0,
                seconds: t0.elapsed().as_secs_f64(),
                cpu_seconds: cpu_seconds() - cpu0,
            };
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not reach {expect} events (at {total})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The raw loop: fetch a batch, publish each payload with a `Nats-Msg-Id`, await the stream's
/// acks, then ack the inputs.
async fn raw_loop(url: String, n: u64) {
    let client = async_nats::connect(&url).await.unwrap();
    let js = jetstream::new(client);
    let consumer = js
        .get_stream("IN")
        .await
        .unwrap()
        .create_consumer(pull::Config {
            durable_name: Some("raw".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut done = 0u64;
    while done < n {
        let mut batch = consumer.fetch().max_messages(256).messages().await.unwrap();
        let mut inputs = Vec::with_capacity(256);
        let mut acks = Vec::with_capacity(256);
        while let Some(m) = batch.next().await {
            let m = m.unwrap();
            let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("IN/{seq}").as_str());
            acks.push(
                js.publish_with_headers("raw.out", headers, m.payload.clone())
                    .await
                    .unwrap(),
            );
            inputs.push(m);
        }
        for a in futures_util::future::join_all(
            acks.into_iter().map(std::future::IntoFuture::into_future),
        )
        .await
        {
            a.unwrap();
        }
        for m in &inputs {
            m.ack().await.unwrap();
        }
        done += inputs.len() as u64;
    }
}

/// Runs a sluice JetStream-to-JetStream pipeline until `expect` events are in its output.
async fn sluice_pipeline(
    js: &jetstream::Context,
    url: &str,
    name: &str,
    expect: u64,
    program: Option<&str>,
) -> Reading {
    let transforms = program
        .map(|p| format!("transforms:\n  - jq: '{p}'\n"))
        .unwrap_or_default();
    let yaml = format!(
        "input:\n  jetstream:\n    url: {url}\n    stream: IN\n    consumer: {name}\n\
         {transforms}\
         output:\n  jetstream:\n    url: {url}\n    subject: {name}.out\nerrors: drop\n"
    );
    let pipeline = sluice::config::load_str(Path::new("bench.yaml"), &yaml, &|_: &str| None)
        .expect("pipeline");
    let token = CancellationToken::new();
    let handle = tokio::spawn(sluice::runtime::run_pipeline(
        pipeline,
        token.clone(),
        sluice::observe::health::Health::new(1),
    ));
    let reading = measure(js, &name.to_uppercase(), expect).await;
    token.cancel();
    let _ = handle.await;
    reading
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if bench { 200_000 } else { 2_000 });
    let server = Server::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = rt.block_on(async {
        let client = async_nats::connect(&server.url).await.unwrap();
        let js = jetstream::new(client);
        for (name, subject) in [
            ("IN", "in.>"),
            ("RAW", "raw.>"),
            ("PASS", "pass.>"),
            ("JQ", "jq.>"),
        ] {
            js.create_stream(stream::Config {
                name: name.into(),
                subjects: vec![subject.into()],
                ..Default::default()
            })
            .await
            .unwrap();
        }
        let mut acks = Vec::new();
        for i in 0..n {
            acks.push(
                js.publish(format!("in.{}", i % 8), event(i).into())
                    .await
                    .unwrap(),
            );
            if acks.len() == 4096 {
                for a in futures_util::future::join_all(
                    acks.drain(..).map(std::future::IntoFuture::into_future),
                )
                .await
                {
                    a.unwrap();
                }
            }
        }
        for a in futures_util::future::join_all(
            acks.into_iter().map(std::future::IntoFuture::into_future),
        )
        .await
        {
            a.unwrap();
        }

        let mut rows = Vec::new();
        let raw = tokio::spawn(raw_loop(server.url.clone(), n));
        rows.push((
            "raw async-nats fetch->publish->ack",
            measure(&js, "RAW", n).await,
        ));
        raw.await.unwrap();
        rows.push((
            "sluice, no transforms",
            sluice_pipeline(&js, &server.url, "pass", n, None).await,
        ));
        let program = "{ts, service, status, msg, latency_ms: (.latency * 1000)}";
        rows.push((
            "sluice jq reshape",
            sluice_pipeline(&js, &server.url, "jq", n, Some(program)).await,
        ));
        rows
    });
    if !bench {
        println!(
            "smoke run: {n} events through each of {} workloads",
            rows.len()
        );
        return;
    }
    let raw_rate = rows[0].1.events as f64 / rows[0].1.seconds;
    println!("{n} events of {EVENT_BYTES} B, nats-server with file storage, one process each");
    println!(
        "{:<36} {:>12} {:>10} {:>14}",
        "workload", "events/s", "ratio", "cpu-us/event"
    );
    for (name, r) in &rows {
        let rate = r.events as f64 / r.seconds;
        println!(
            "{name:<36} {rate:>12.0} {:>10.2} {:>14.1}",
            rate / raw_rate,
            r.cpu_seconds * 1e6 / r.events as f64
        );
    }
}
