//! The benchmark suite: sluice against the raw client loop and other tools, workload by
//! workload, each worker a process of its own measured on its own, in one run, printed as one
//! table (see BENCHMARKS.md).
//!
//! ```text
//! cargo bench --bench suite                     # every workload
//! cargo bench --bench suite -- w1 w3            # named workloads
//! cargo bench --bench suite -- --events 50000   # fewer events per workload
//! cargo bench --bench suite -- w1k --backlog N   # W1 (and W2) on Apache Kafka, N events (default 2 million)
//! cargo bench --bench suite -- --json FILE      # also as JSON records, for benches/charts.py
//! SLUICE_BIN=PATH SLUICE_COMMIT=REV cargo bench --bench suite   # another sluice binary
//! ```
//!
//! `benches/before-after.sh` runs two commits' binaries in turns under one suite binary.
//!
//! - W1 Kafka passthrough and W2 Kafka filter + reshape (half pass), 1 KB events with about 20
//!   fields, drained from a backlog on librdkafka's mock cluster (in this process; 32
//!   partitions, as it keeps at most 5 MB per partition); `W2 avro`: W2 on the same events as
//!   bare Avro bodies (a 20-field record schema file), JSON out. Other tools run the same logic:
//!   `kcat | jaq | kcat` and bytewax through `benches/baselines/run.py` (`scripts/setup.sh
//!   bench`); quixstreams cannot run on the mock cluster.
//! - W1 on Apache Kafka (`w1k`): a backlog of 2 million 1 KB events on one partition, then on
//!   two, in a one-node Apache Kafka of the suite's own (`scripts/setup.sh kafka`), drained by
//!   the raw loop, sluice, `kcat | jaq | kcat`, quixstreams, bytewax and Kafka Streams (at least
//!   once and exactly once v2, `benches/baselines/kafka-streams`); then W2 from the
//!   two-partition backlog by sluice and the same tools. Every row is the whole run, start-up
//!   and group join included; outputs are counted by reading the output topic back.
//! - W3 core NATS subscribe -> jq -> publish, 256-byte events published at rising rates: the
//!   highest rate each worker kept up with, with no message lost (slow-consumer drops), and
//!   how busy the whole machine was there and at the first rate missed. Two raw loops: `raw`
//!   publishes each payload unchanged, `raw-reshape` reshapes it with serde_json first.
//! - W4 JetStream pull -> jq -> publish with acks, 512-byte events from a pre-loaded stream.
//! - W6 HTTP: 50 events of 256 bytes per POST, by wrk (2 threads, 32 connections, 10 s,
//!   `W6_SECONDS` for another length), into sluice's `http_server` input (`ack: delivered`) ->
//!   the reshape -> core NATS, against a minimal axum server forwarding each event to NATS
//!   unchanged and answering after a flush; events/s, CPU per event, p50 and p99 request latency.
//! - W7 Kafka -> S3: 512-byte events drained from a backlog on the mock cluster (16
//!   partitions) into moto's S3 server (`scripts/setup.sh s3`) as NDJSON objects of 2,000
//!   events compressed with zstd, against a raw loop of rdkafka and object_store PUTs with the
//!   same objects; events stored are counted from the objects' names.
//! - W5 latency: events stamped with their send time, produced at a fixed rate (20,000/s; NATS
//!   also at half W2's rate when W2 ran) for a warm-up and 10 s, through the raw loop and
//!   sluice (Kafka, on the mock cluster and on Apache Kafka: W2's pipeline on 512-byte events; core
//!   NATS: the reshape on 256-byte events); p50, p99 and p99.9 from send to receipt by a
//!   consumer in this driver, and how many arrived.
//!
//! Rates are of input events over the window from 2% to 100% of the outputs (connected and
//! warm); CPU is the worker process's own (the broker and this driver are not counted), per
//! input event; peak RSS is the worker's. Other tools report their whole run instead (start-up
//! included), as `run.py` measures them. Run without `--bench` (as `cargo test` does) it
//! does nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use testkit::kafka::{EndOffsets, TopicReader};
use testkit::measure::{self, Reading, event, watch};
use testkit::nats::NatsServer;
use testkit::{Process, eventually, pipeline};

#[path = "suite/http.rs"]
mod http;
#[path = "suite/results.rs"]
mod results;
#[path = "suite/s3.rs"]
mod s3;

/// W2's program: half the events have status 500.
const W2_PROGRAM: &str =
    "select(.status >= 500) | {ts, service, msg, latency_ms: (.latency * 1000)}";
/// W3 and W4's program.
const RESHAPE: &str = "{id, ts, service, status, latency_ms: (.latency * 1000)}";
const PARTITIONS: i32 = 32;
const TIMEOUT: Duration = Duration::from_secs(900);
/// How long a worker may take to subscribe before a NATS workload gives up on it.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// One line of the table.
struct Row {
    workload: &'static str,
    runner: String,
    reading: Option<Reading>,
    note: String,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("raw") {
        raw::main(&args[1..]);
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!("the benchmark suite runs with `cargo bench --bench suite`");
        return;
    }
    let events: Option<u64> = args
        .iter()
        .position(|a| a == "--events")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok());
    let named: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| a.starts_with('w') && (a.len() == 2 || *a == "w1k"))
        .collect();
    let wants = |w: &str| named.is_empty() || named.contains(&w);
    // --json PATH: every result also as JSON records, for benches/charts.py.
    let json: Option<PathBuf> = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    let mut trials = Vec::new();
    let mut latencies = Vec::new();
    if wants("w1") || wants("w2") {
        let n = events.unwrap_or(140_000);
        assert!(
            n <= 4_500 * PARTITIONS as u64,
            "the mock cluster keeps at most 5 MB per partition"
        );
        kafka(&mut rows, dir.path(), n, wants("w1"), wants("w2"));
    }
    if wants("w1k") {
        let backlog = args
            .iter()
            .position(|a| a == "--backlog")
            .and_then(|i| args.get(i + 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(2_000_000);
        apache_kafka::backlog(&mut rows, dir.path(), backlog);
    }
    if wants("w3") {
        nats_core(
            &mut rows,
            &mut trials,
            dir.path(),
            events.unwrap_or(200_000),
        );
    }
    if wants("w4") {
        jetstream(&mut rows, dir.path(), events.unwrap_or(200_000));
    }
    if wants("w6") {
        let seconds = std::env::var("W6_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10);
        http::workload(&mut rows, dir.path(), seconds);
    }
    if wants("w7") {
        s3::workload(&mut rows, dir.path(), events.unwrap_or(96_000));
    }
    print_table(&rows);
    if wants("w5") {
        // At a fixed rate, and at half the W2 maximum when W2 ran.
        let mut rates = vec![
            std::env::var("W5_RATE")
                .ok()
                .and_then(|r| r.parse().ok())
                .unwrap_or(20_000u64),
        ];
        if let Some(w2) = rows
            .iter()
            .find(|r| r.workload == "W2" && r.runner == "sluice")
            .and_then(|r| r.reading)
        {
            rates.push((w2.rate() / 2.0) as u64);
        }
        // Kafka at the fixed rate only (W5_KAFKA_RATE, default 20,000/s): at W2's half rate
        // (100,000/s and more) the mock cluster's 5 MB per partition would not hold the window.
        let kafka_rate = std::env::var("W5_KAFKA_RATE")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(20_000u64);
        latencies.extend(latency_kafka(dir.path(), kafka_rate));
        for rate in rates {
            latencies.extend(latency_nats(dir.path(), rate));
        }
        print_latencies(&latencies);
    }
    if let Some(path) = json {
        results::write(&path, &rows, &trials, &latencies);
    }
}

/// How long each latency run publishes, after a warm-up.
const LATENCY_SECS: u64 = 10;
/// Partitions of W5's Kafka topics on Apache Kafka.
const LATENCY_PARTITIONS: i32 = 4;
const WARM_UP: Duration = Duration::from_secs(3);

/// One line of the latency table.
struct Latency {
    bus: &'static str,
    runner: &'static str,
    rate: u64,
    /// Microseconds from the producer's timestamp to the consumer's receipt, sorted.
    samples: Vec<u64>,
    expected: u64,
}

impl Latency {
    /// The `q` quantile of the latencies, in milliseconds.
    fn quantile_ms(&self, q: f64) -> f64 {
        let last = self.samples.len().saturating_sub(1);
        (self
            .samples
            .get(((self.samples.len() as f64 * q) as usize).min(last)))
        .map_or(f64::NAN, |us| *us as f64 / 1000.0)
    }
}

fn print_latencies(rows: &[Latency]) {
    println!(
        "\n| W5 | runner | rate/s | p50 ms | p99 ms | p99.9 ms | received of expected |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in rows {
        let at = |q: f64| r.quantile_ms(q);
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {} of {} |",
            r.bus,
            r.runner,
            r.rate,
            at(0.5),
            at(0.99),
            at(0.999),
            r.samples.len(),
            r.expected
        );
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Event `i` of `size` bytes whose `ts` is the time it is sent, in microseconds.
fn timed_event(i: u64, size: usize) -> Vec<u8> {
    let e = String::from_utf8(event(i, size)).unwrap_or_default();
    e.replacen(
        &format!("\"ts\":{}", 1_700_000_000_000u64 + i),
        &format!("\"ts\":{}", now_us()),
        1,
    )
    .into_bytes()
}

/// Microseconds since the `ts` of a payload, if it was sent after `since`.
fn latency_of(payload: &[u8], since: u64) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let ts = v["ts"].as_u64()?;
    (ts >= since).then(|| now_us().saturating_sub(ts))
}

/// W5 on Kafka, on librdkafka's mock cluster and on Apache Kafka: 512-byte events produced at `rate`
/// through the raw loop and through sluice's W2 pipeline; latency of the events sent in the
/// window.
fn latency_kafka(dir: &Path, rate: u64) -> Vec<Latency> {
    let mut out = Vec::new();
    // The mock cluster answers a fetch only when its wait is up, even with records to give:
    // every consumer here waits at most 1 ms, so that adds up to 1 ms per hop, alike for both.
    // It keeps at most 5 MB per partition, dropping the oldest: at 20,000 events/s on 4
    // partitions a consumer 2 s behind lost events. 16 partitions give it 8 s.
    let partitions = 16;
    let cluster = MockCluster::new(1).unwrap();
    let create = |topics: &[&str]| {
        for t in topics {
            cluster.create_topic(t, partitions, 1).unwrap();
        }
    };
    out.extend(latency_kafka_on(
        "Kafka mock",
        &cluster.bootstrap_servers(),
        &create,
        partitions,
        "1",
        dir,
        rate,
    ));
    match testkit::kraft::Broker::try_start(None) {
        Ok(broker) => out.extend(latency_kafka_on(
            "Kafka",
            &broker.address(),
            &|topics| {
                let topics: Vec<_> = topics.iter().map(|t| (*t, LATENCY_PARTITIONS)).collect();
                broker.create_topics(&topics)
            },
            LATENCY_PARTITIONS,
            "5",
            dir,
            rate,
        )),
        Err(e) => eprintln!("W5 on Apache Kafka not run: {e}"),
    }
    out
}

/// W5 on one Kafka broker: `create` makes topics of `partitions` there; the workers fetch with
/// `fetch.wait.max.ms` = `fetch_wait_ms`.
fn latency_kafka_on(
    bus: &'static str,
    brokers: &str,
    create: &dyn Fn(&[&str]),
    partitions: i32,
    fetch_wait_ms: &str,
    dir: &Path,
    rate: u64,
) -> Vec<Latency> {
    let brokers = brokers.to_string();
    let mut out = Vec::new();
    for runner in ["raw", "sluice"] {
        let (input, output) = (format!("lat-in-{runner}"), format!("lat-out-{runner}"));
        create(&[&input, &output]);
        let worker = if runner == "raw" {
            // It runs until killed: how many events it will see is not known in advance.
            raw_worker(&[
                "kafka",
                &brokers,
                &input,
                &output,
                &u64::MAX.to_string(),
                fetch_wait_ms,
            ])
        } else {
            let file = kafka_pipeline(
                dir,
                &brokers,
                &input,
                &output,
                fetch_wait_ms,
                Some(W2_PROGRAM),
            );
            Process::spawn(sluice().arg(&file))
        };
        let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
        // The window opens a warm-up after the worker's first output is read (a group join
        // takes seconds, and events waiting for it would be measured), in microseconds since
        // the epoch; until then nothing is measured.
        let measured_from = Arc::new(AtomicU64::new(u64::MAX));
        let flowing = Arc::new(AtomicBool::new(false));
        let produced = Arc::new(AtomicBool::new(false));
        let reader = {
            let (brokers, output, samples) = (brokers.clone(), output.clone(), samples.clone());
            let (measured_from, flowing, produced) =
                (measured_from.clone(), flowing.clone(), produced.clone());
            std::thread::spawn(move || {
                // The mock cluster answers a fetch only when its wait is up: 1 ms, as above.
                let reader = TopicReader::with_fetch_wait(&brokers, &output, partitions, 1);
                // Reads on for 5 s after the last event is produced.
                let mut until = None;
                while until.is_none_or(|u| Instant::now() < u) {
                    if until.is_none() && produced.load(Ordering::Relaxed) {
                        until = Some(Instant::now() + Duration::from_secs(5));
                    }
                    if let Some(r) = reader.next_record(Duration::from_millis(100)) {
                        flowing.store(true, Ordering::Relaxed);
                        let since = measured_from.load(Ordering::Relaxed);
                        if let Some(l) = latency_of(&r.payload, since) {
                            samples.lock().unwrap().push(l);
                        }
                    }
                }
            })
        };
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            // With no linger at all this producer falls behind at 5,000 events/s (one request per
            // event), and its queue, not the pipeline, is measured: seconds. 1 ms batches them;
            // every runner's events wait alike.
            .set("linger.ms", "1")
            .create()
            .unwrap();
        let start = Instant::now();
        let mut end: Option<Instant> = None;
        for i in 0.. {
            // Paced: event i goes out at i / rate seconds.
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            match end {
                Some(end) if due >= end => break,
                Some(_) => {}
                None if flowing.load(Ordering::Relaxed) => {
                    measured_from.store(now_us() + WARM_UP.as_micros() as u64, Ordering::Relaxed);
                    end = Some(Instant::now() + WARM_UP + Duration::from_secs(LATENCY_SECS));
                }
                None => assert!(
                    start.elapsed() < Duration::from_secs(120),
                    "{bus} {runner}: no output within 120 s"
                ),
            }
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let payload = timed_event(i, 512);
            let mut rec = BaseRecord::<(), [u8]>::to(&input).payload(&payload);
            while let Err((_, back)) = producer.send(rec) {
                rec = back;
                producer.poll(Duration::from_millis(1));
            }
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(30)).unwrap();
        produced.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        drop(worker);
        let mut samples = std::mem::take(&mut *samples.lock().unwrap());
        samples.sort_unstable();
        let measured = rate * LATENCY_SECS;
        out.push(Latency {
            bus,
            runner: if runner == "raw" { "raw" } else { "sluice W2" },
            rate,
            samples,
            expected: if runner == "raw" {
                measured
            } else {
                measured / 2
            },
        });
    }
    out
}

/// W5 on core NATS: 256-byte events published at `rate` through the raw loop and through
/// sluice's reshape; latency of the events sent after the warm-up.
fn latency_nats(dir: &Path, rate: u64) -> Vec<Latency> {
    use futures_util::StreamExt;
    let (server, rt, client, file) = nats_rig(dir, "lat");
    let mut out = Vec::new();
    for runner in ["raw", "sluice"] {
        let worker = if runner == "raw" {
            raw_worker(&["nats", &server.url(), "lat.in", "lat.out.raw"])
        } else {
            Process::spawn(sluice().arg(&file))
        };
        let samples = rt.block_on(async {
            let mut sub = client.subscribe(format!("lat.out.{runner}")).await.unwrap();
            client.flush().await.unwrap();
            // Until the worker is subscribed, publishes are lost: probe until one comes back.
            eventually("the worker to subscribe", PROBE_TIMEOUT, async || {
                client
                    .publish("lat.in", timed_event(0, 256).into())
                    .await
                    .unwrap();
                tokio::time::timeout(Duration::from_millis(200), sub.next())
                    .await
                    .ok()
            })
            .await;
            let measured_from = now_us() + WARM_UP.as_micros() as u64;
            let reading = tokio::spawn(async move {
                let mut samples = Vec::new();
                let until =
                    tokio::time::Instant::now() + WARM_UP + Duration::from_secs(LATENCY_SECS + 3);
                while let Ok(Some(m)) = tokio::time::timeout_at(until, sub.next()).await {
                    if let Some(l) = latency_of(&m.payload, measured_from) {
                        samples.push(l);
                    }
                }
                samples
            });
            let total = rate * (WARM_UP.as_secs() + LATENCY_SECS);
            let start = tokio::time::Instant::now();
            for i in 0..total {
                let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                tokio::time::sleep_until(due).await;
                client
                    .publish("lat.in", timed_event(i, 256).into())
                    .await
                    .unwrap();
            }
            client.flush().await.unwrap();
            reading.await.unwrap()
        });
        drop(worker);
        let mut samples = samples;
        samples.sort_unstable();
        out.push(Latency {
            bus: "NATS",
            runner: if runner == "raw" { "raw" } else { "sluice jq" },
            rate,
            samples,
            expected: rate * LATENCY_SECS,
        });
    }
    out
}

fn print_table(rows: &[Row]) {
    println!(
        "\n| workload | runner | events/s | ratio | cpu-us/event | peak RSS MiB | note |\n| --- | --- | ---: | ---: | ---: | ---: | --- |"
    );
    let mut base: Option<(&str, f64)> = None;
    for r in rows {
        if base.is_none_or(|(w, _)| w != r.workload) {
            base = r.reading.map(|x| (r.workload, x.rate()));
        }
        match r.reading {
            Some(x) => println!(
                "| {} | {} | {:.0} | {:.2} | {:.1} | {:.0} | {} |",
                r.workload,
                r.runner,
                x.rate(),
                base.map_or(f64::NAN, |(_, b)| x.rate() / b),
                x.cpu_us(),
                x.peak_rss_mib,
                r.note
            ),
            None => println!(
                "| {} | {} | - | - | - | - | {} |",
                r.workload, r.runner, r.note
            ),
        }
    }
}

/// The `sluice` binary under test: `SLUICE_BIN`, or the one this checkout built. With
/// `SLUICE_BIN`, `SLUICE_COMMIT` names the commit it was built from, for the JSON records.
fn sluice_binary() -> PathBuf {
    std::env::var_os("SLUICE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sluice")))
}

/// `sluice run`, quiet, to be given a pipeline file.
fn sluice() -> Command {
    let mut cmd = testkit::process::sluice_at(sluice_binary());
    // With metrics served, as deployed: what recording them costs per event is measured too.
    cmd.arg("run")
        .env("RUST_LOG", "warn")
        .env("SLUICE_METRICS_ADDR", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn raw_worker(args: &[&str]) -> Process {
    Process::spawn(
        Command::new(std::env::current_exe().unwrap())
            .arg("raw")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// sluice's pipeline file for Kafka `input` -> `program` (none: passthrough) -> `output`, in
/// consumer group `output`, fetching with waits of at most `fetch_wait_ms`.
fn kafka_pipeline(
    dir: &Path,
    brokers: &str,
    input: &str,
    output: &str,
    fetch_wait_ms: &str,
    program: Option<&str>,
) -> PathBuf {
    let transforms = program
        .map(|p| format!("transforms:\n  - jq: '{p}'\n"))
        .unwrap_or_default();
    // SLUICE_FETCH_WAIT_MS=100 runs sluice with another wait; `default` with its own default.
    let fetch_wait = match std::env::var("SLUICE_FETCH_WAIT_MS") {
        Ok(ms) if ms == "default" => String::new(),
        Ok(ms) => format!("      fetch.wait.max.ms: \"{ms}\"\n"),
        Err(_) => format!("      fetch.wait.max.ms: \"{fetch_wait_ms}\"\n"),
    };
    // SLUICE_KAFKA_OPTIONS=queued.max.messages.kbytes=16384,... adds librdkafka properties to
    // the input's options.
    let options = std::env::var("SLUICE_KAFKA_OPTIONS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .fold(fetch_wait, |lines, (k, v)| {
            lines + &format!("      {}: \"{}\"\n", k.trim(), v.trim())
        });
    // SLUICE_MAX_IN_FLIGHT=32MiB runs sluice with another in-flight budget.
    let settings = std::env::var("SLUICE_MAX_IN_FLIGHT")
        .map(|b| format!("settings:\n  max_in_flight_bytes: {b}\n"))
        .unwrap_or_default();
    pipeline(
        dir,
        output,
        &format!(
            "input:\n  kafka:\n    brokers: {brokers}\n    topics: [{input}]\n    group_id: {output}\n    options:\n      session.timeout.ms: \"6000\"\n{options}\
             {transforms}output:\n  kafka:\n    brokers: {brokers}\n    topic: {output}\nerrors: drop\n{settings}"
        ),
    )
}

/// Records in `topic` so far (0 while the broker does not answer).
fn kafka_total(offsets: &EndOffsets, topic: &str) -> u64 {
    offsets
        .of(topic, PARTITIONS)
        .map_or(0, |ends| ends.iter().map(|e| (*e).max(0) as u64).sum())
}

fn kafka(rows: &mut Vec<Row>, dir: &Path, n: u64, w1: bool, w2: bool) {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let topics = [
        "in",
        "w1-raw",
        "w1-sluice",
        "w1-kcat-jaq",
        "w1-bytewax",
        "w2-sluice",
        "w2-kcat-jaq",
        "w2-bytewax",
        "in-avro",
        "w2-avro-sluice",
    ];
    for t in topics {
        cluster.create_topic(t, PARTITIONS, 1).unwrap();
    }
    backlog(&brokers, "in", n, PARTITIONS, 1024, "none");
    let counter = EndOffsets::new(&brokers);
    let kafka_run = |workload: &'static str, runner: &str, worker: Process, expect: u64| {
        let output = format!("{}-{runner}", workload.to_lowercase().replace(' ', "-"));
        let per_output = n as f64 / expect as f64;
        let reading = watch(worker.id(), expect, per_output, TIMEOUT, || {
            kafka_total(&counter, &output)
        });
        drop(worker);
        Row {
            workload,
            runner: runner.to_string(),
            reading: Some(reading),
            note: String::new(),
        }
    };
    let pipeline = |output: &str, program: Option<&str>| {
        kafka_pipeline(dir, &brokers, "in", output, "5", program)
    };
    if w1 {
        let raw = raw_worker(&["kafka", &brokers, "in", "w1-raw", &n.to_string()]);
        rows.push(kafka_run("W1", "raw", raw, n));
        let file = pipeline("w1-sluice", None);
        rows.push(kafka_run(
            "W1",
            "sluice",
            Process::spawn(sluice().arg(&file)),
            n,
        ));
        for tool in ["kcat-jaq", "bytewax"] {
            rows.push(baseline("W1", tool, &brokers, &format!("w1-{tool}"), n));
        }
        rows.push(Row {
            workload: "W1",
            runner: "quixstreams".into(),
            reading: None,
            note: "not run: it cannot run on librdkafka's mock cluster (no controller)".into(),
        });
    }
    if w2 {
        let file = pipeline("w2-sluice", Some(W2_PROGRAM));
        let worker = Process::spawn(sluice().arg(&file));
        rows.push(kafka_run("W2", "sluice", worker, n.div_ceil(2)));
        for tool in ["kcat-jaq", "bytewax"] {
            rows.push(baseline("W2", tool, &brokers, &format!("w2-{tool}"), n));
        }
        // The same events as bare Avro bodies, the same program, JSON out.
        let schema = sluice::codec::avro::AvroSchema::parse(measure::EVENT_AVSC, &[]).unwrap();
        backlog_of(&brokers, "in-avro", n, PARTITIONS, "none", |i| {
            let json = bytes::Bytes::from(event(i, 1024));
            let val = sluice::codec::decode(sluice::codec::Codec::Json, &json).unwrap();
            let mut body = Vec::new();
            schema.encode(&val, &mut body).unwrap();
            body
        });
        let avsc = dir.join("event.avsc");
        std::fs::write(&avsc, measure::EVENT_AVSC).unwrap();
        let file = kafka_pipeline(
            dir,
            &brokers,
            "in-avro",
            "w2-avro-sluice",
            "5",
            Some(W2_PROGRAM),
        );
        let text = std::fs::read_to_string(&file).unwrap().replacen(
            "    options:\n",
            &format!(
                "    codec: {{avro: {{schema_file: '{}'}}}}\n    options:\n",
                avsc.display()
            ),
            1,
        );
        std::fs::write(&file, text).unwrap();
        let worker = Process::spawn(sluice().arg(&file));
        rows.push(kafka_run("W2 avro", "sluice", worker, n.div_ceil(2)));
    }
}

/// Produces `n` events of `size` bytes to `topic`, round robin over its `partitions`, keyed
/// `k0` to `k63`, batches compressed with `compression` (librdkafka's `compression.type`).
fn backlog(brokers: &str, topic: &str, n: u64, partitions: i32, size: usize, compression: &str) {
    backlog_of(brokers, topic, n, partitions, compression, |i| {
        event(i, size)
    });
}

/// Produces `payload(i)` for i in 0..`n` to `topic`, as [`backlog`] does.
fn backlog_of(
    brokers: &str,
    topic: &str,
    n: u64,
    partitions: i32,
    compression: &str,
    payload: impl Fn(u64) -> Vec<u8>,
) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("compression.type", compression)
        .create()
        .unwrap();
    for i in 0..n {
        let payload = payload(i);
        let key = format!("k{}", i % 64);
        let mut rec = BaseRecord::to(topic)
            .payload(&payload)
            .key(&key)
            .partition((i % partitions as u64) as i32);
        while let Err((_, back)) = producer.send(rec) {
            rec = back;
            producer.poll(Duration::from_millis(5));
        }
    }
    producer.flush(Duration::from_secs(600)).unwrap();
}

/// Runs another tool through `benches/baselines/run.py`, which reports its whole run.
fn baseline(workload: &'static str, tool: &str, brokers: &str, output: &str, n: u64) -> Row {
    baseline_from(workload, tool, brokers, "in", output, n, &[])
}

/// Runs another tool on `input` through `benches/baselines/run.py`, with `env` set.
fn baseline_from(
    workload: &'static str,
    tool: &str,
    brokers: &str,
    input: &str,
    output: &str,
    n: u64,
    env: &[(&str, &Path)],
) -> Row {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/baselines/run.py");
    let run = &workload[..2].to_lowercase();
    let out = Command::new("python3")
        .arg(script)
        .args(["--tool", tool, "--workload", run])
        .args(["--brokers", brokers, "--input", input, "--output", output])
        .args(["--count", &n.to_string()])
        .args(["--timeout", &TIMEOUT.as_secs().to_string()])
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::null())
        .output();
    let report = out
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok());
    let Some(r) = report else {
        return Row {
            workload,
            runner: tool.into(),
            reading: None,
            note: "not run: failed or not installed (scripts/setup.sh bench)".into(),
        };
    };
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    Row {
        workload,
        runner: tool.into(),
        reading: Some(Reading {
            events: f("events"),
            seconds: f("wall_s"),
            cpu_seconds: f("cpu_s"),
            peak_rss_mib: f("peak_rss_kb") / 1024.0,
        }),
        note: "whole run, start-up included".into(),
    }
}

/// A nats-server of the suite's own, a runtime and a client of it, and sluice's pipeline file
/// for `{prefix}.in` -> the reshape -> `{prefix}.out.sluice`.
fn nats_rig(
    dir: &Path,
    prefix: &str,
) -> (
    NatsServer,
    tokio::runtime::Runtime,
    async_nats::Client,
    PathBuf,
) {
    let server = NatsServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(async_nats::connect(server.url())).unwrap();
    let file = pipeline(
        dir,
        prefix,
        &format!(
            "input:\n  nats:\n    url: {url}\n    subjects: [{prefix}.in]\n\
             transforms:\n  - jq: '{RESHAPE}'\n\
             output:\n  nats:\n    url: {url}\n    subject: {prefix}.out.sluice\nerrors: drop\n",
            url = server.url()
        ),
    );
    (server, rt, client, file)
}

/// W3: the highest of a rising series of publish rates each worker keeps up with, losing
/// nothing.
fn nats_core(rows: &mut Vec<Row>, trials: &mut Vec<results::Trial>, dir: &Path, n: u64) {
    let (server, rt, client, file) = nats_rig(dir, "w3");
    let url = server.url();
    let raw_args = ["nats", &url, "w3.in", "w3.out.raw"];
    let reshape_args = ["nats-reshape", &url, "w3.in", "w3.out.raw-reshape"];
    for (runner, start) in [
        ("raw", &(|| raw_worker(&raw_args)) as &dyn Fn() -> Process),
        ("raw-reshape", &|| raw_worker(&reshape_args)),
        ("sluice", &|| Process::spawn(sluice().arg(&file))),
    ] {
        let mut best: Option<Reading> = None;
        let mut note = String::new();
        // W3_RATES=100000,200000 tries only those rates (to profile one, say).
        let rates: Vec<u64> = std::env::var("W3_RATES")
            .ok()
            .map(|r| r.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_else(|| {
                vec![
                    25_000, 50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 350_000, 400_000,
                    500_000, 600_000,
                ]
            });
        // How busy the whole machine (broker, load generator and worker on the same cores) was
        // at the highest rate kept up with and at the one that was not.
        let mut busy = String::new();
        for rate in rates {
            let worker = start();
            let (trial, percent) = rt.block_on(nats_trial(&client, &worker, runner, n, rate));
            trials.push(results::Trial {
                runner,
                rate,
                sent: n,
                lost: *trial.as_ref().err().unwrap_or(&0),
                cpu_us: trial.as_ref().map_or(f64::NAN, Reading::cpu_us),
            });
            match trial {
                Ok(r) => {
                    best = Some(r);
                    busy = format!("machine {percent:.0}% busy at the rate shown");
                }
                Err(lost) => {
                    note = format!("at {rate}/s: {lost} of {n} lost, machine {percent:.0}% busy");
                    break;
                }
            }
        }
        if note.is_empty() {
            note = "kept up at the highest rate tried".into();
        }
        if !busy.is_empty() {
            note = format!("{busy}; {note}");
        }
        rows.push(Row {
            workload: "W3",
            runner: runner.into(),
            reading: best,
            note: format!("256 B; 0 lost at the rate shown; {note}"),
        });
    }
}

/// Publishes `n` events at `rate` to a started worker; Ok with the reading if every event came
/// out, else Err with how many were lost; with how busy the machine was while publishing, in
/// percent of all its cores.
async fn nats_trial(
    client: &async_nats::Client,
    worker: &Process,
    runner: &str,
    n: u64,
    rate: u64,
) -> (Result<Reading, u64>, f64) {
    use futures_util::StreamExt;
    let mut out = client.subscribe(format!("w3.out.{runner}")).await.unwrap();
    client.flush().await.unwrap();
    // Until the worker is subscribed, publishes are lost: probe until one comes back.
    let probe = event(u64::MAX, 256);
    eventually("the worker to subscribe", PROBE_TIMEOUT, async || {
        client.publish("w3.in", probe.clone().into()).await.unwrap();
        tokio::time::timeout(Duration::from_millis(200), out.next())
            .await
            .ok()
    })
    .await;
    // Late probe echoes, then count.
    while tokio::time::timeout(Duration::from_millis(300), out.next())
        .await
        .is_ok()
    {}
    let received = Arc::new(AtomicU64::new(0));
    let counting = {
        let received = received.clone();
        tokio::spawn(async move {
            while out.next().await.is_some() {
                received.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let pid = worker.id();
    let (t0, c0) = (Instant::now(), measure::cpu_seconds(pid));
    let machine0 = measure::machine_ticks();
    let per_tick = (rate / 100).max(1);
    let mut sent = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while sent < n {
        tick.tick().await;
        for _ in 0..per_tick.min(n - sent) {
            client
                .publish("w3.in", event(sent, 256).into())
                .await
                .unwrap();
            sent += 1;
        }
    }
    client.flush().await.unwrap();
    let publish_secs = t0.elapsed().as_secs_f64();
    let busy = measure::busy_percent(machine0, measure::machine_ticks());
    // Done when nothing more arrives for a second.
    let mut last = (received.load(Ordering::Relaxed), Instant::now());
    while received.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = received.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(1) {
            break;
        }
    }
    let cpu = measure::cpu_seconds(pid) - c0;
    let peak = measure::peak_rss_mib(pid);
    counting.abort();
    let got = received.load(Ordering::Relaxed);
    if got < n {
        return (Err(n - got), busy);
    }
    let reading = Reading {
        events: n as f64,
        seconds: publish_secs,
        cpu_seconds: cpu,
        peak_rss_mib: peak,
    };
    (Ok(reading), busy)
}

/// W4: a pre-loaded stream drained through a durable pull consumer into another stream.
fn jetstream(rows: &mut Vec<Row>, dir: &Path, n: u64) {
    use testkit::nats::{create_stream, publish_all, stored};
    let server = NatsServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let js = rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
        for (name, subject) in [
            ("IN", "w4.in.>"),
            ("RAW", "w4.raw"),
            ("SLUICE", "w4.sluice"),
        ] {
            create_stream(&js, name, &[subject.to_string()]).await;
        }
        let events = (0..n).map(|i| (format!("w4.in.{}", i % 8), event(i, 512).into()));
        publish_all(&js, events).await;
        js
    });
    let stored = |name: &str| rt.block_on(stored(&js, name)).unwrap_or(0);
    let raw = raw_worker(&["jetstream", &server.url(), "IN", "w4.raw", &n.to_string()]);
    let reading = watch(raw.id(), n, 1.0, TIMEOUT, || stored("RAW"));
    drop(raw);
    rows.push(Row {
        workload: "W4",
        runner: "raw".into(),
        reading: Some(reading),
        note: "512 B; fetch -> publish -> await acks -> ack, no parsing".into(),
    });
    let file = pipeline(
        dir,
        "w4",
        &format!(
            "input:\n  jetstream:\n    url: {url}\n    stream: IN\n    consumer: sluice\n\
             transforms:\n  - jq: '{RESHAPE}'\n\
             output:\n  jetstream:\n    url: {url}\n    subject: w4.sluice\nerrors: drop\n",
            url = server.url()
        ),
    );
    let worker = Process::spawn(sluice().arg(&file));
    let reading = watch(worker.id(), n, 1.0, TIMEOUT, || stored("SLUICE"));
    drop(worker);
    rows.push(Row {
        workload: "W4",
        runner: "sluice".into(),
        reading: Some(reading),
        note: "512 B; jq reshape".into(),
    });
}

/// W1 on Apache Kafka, which can hold a backlog of millions of events, unlike the mock cluster.
mod apache_kafka {
    use std::path::Path;
    use std::time::Instant;

    use testkit::kafka::Collector;
    use testkit::kraft::Broker;
    use testkit::measure::{Reading, cpu_seconds, peak_rss_mib};
    use testkit::{Process, try_wait_for};

    use super::{Row, TIMEOUT, W2_PROGRAM, baseline_from, kafka_pipeline, raw_worker, sluice};

    /// The runners of W1, in order; W2 runs all but the raw loop.
    const RUNNERS: [&str; 7] = [
        "raw",
        "sluice",
        "kcat-jaq",
        "quixstreams",
        "bytewax",
        "kafka-streams",
        "kafka-streams-eos",
    ];

    /// Watches a worker until `count()` reaches `expect` outputs: its whole run from `started`
    /// (start-up and the group join included, as `run.py` measures the other tools), and its
    /// CPU time in all.
    fn whole_run(
        worker: &Process,
        started: Instant,
        inputs: u64,
        expect: u64,
        count: impl Fn() -> u64,
    ) -> Reading {
        let pid = worker.id();
        let left = TIMEOUT.saturating_sub(started.elapsed());
        if try_wait_for(left, || (count() >= expect).then_some(())).is_none() {
            panic!("timed out at {} of {expect} outputs", count());
        }
        Reading {
            events: inputs as f64,
            seconds: started.elapsed().as_secs_f64(),
            cpu_seconds: cpu_seconds(pid),
            peak_rss_mib: peak_rss_mib(pid),
        }
    }

    /// W1: a backlog of `n` events on one partition, then on two, drained by each runner.
    pub fn backlog(rows: &mut Vec<Row>, dir: &Path, n: u64) {
        for partitions in [1, 2] {
            // A broker of its own for each, so the second does not share a disk cache and log
            // with the first's outputs.
            let broker = match Broker::try_start(None) {
                Ok(broker) => broker,
                Err(e) => {
                    rows.push(Row {
                        workload: "W1 kafka",
                        runner: "all".into(),
                        reading: None,
                        note: format!("not run: {e}"),
                    });
                    return;
                }
            };
            let brokers = broker.address();
            let workload: &'static str = if partitions == 1 {
                "W1 kafka 1p"
            } else {
                "W1 kafka 2p"
            };
            let input = format!("in-{partitions}p");
            // W1K_RUNNERS=raw,sluice runs only those.
            let only = std::env::var("W1K_RUNNERS").ok();
            let runners: Vec<&str> = RUNNERS
                .into_iter()
                .filter(|r| only.as_ref().is_none_or(|o| o.split(',').any(|x| x == *r)))
                .collect();
            let outputs: Vec<String> = runners
                .iter()
                .map(|r| format!("w1-{partitions}p-{r}"))
                .collect();
            // W2 runs once, on two partitions.
            let w2_runners: Vec<&str> = if partitions == 2 {
                runners.iter().copied().filter(|r| *r != "raw").collect()
            } else {
                Vec::new()
            };
            let w2_outputs: Vec<String> = w2_runners
                .iter()
                .map(|r| format!("w2-{partitions}p-{r}"))
                .collect();
            let mut topics = vec![input.as_str()];
            topics.extend(outputs.iter().map(String::as_str));
            topics.extend(w2_outputs.iter().map(String::as_str));
            let topics: Vec<_> = topics.into_iter().map(|t| (t, partitions)).collect();
            broker.create_topics(&topics);
            super::backlog(&brokers, &input, n, partitions, 1024, "lz4");
            // Each W1 runner, then (on two partitions) each W2 runner, with its program.
            let runs = runners
                .iter()
                .zip(&outputs)
                .map(|(r, o)| (workload, *r, o, None))
                .chain(
                    w2_runners
                        .iter()
                        .zip(&w2_outputs)
                        .map(|(r, o)| ("W2 kafka 2p", *r, o, Some(W2_PROGRAM))),
                );
            for (workload, runner, output, program) in runs {
                let row = match runner {
                    "raw" | "sluice" => {
                        let counter = Collector::counting(&brokers, output, partitions);
                        let started = Instant::now();
                        let worker = if runner == "raw" {
                            raw_worker(&["kafka", &brokers, &input, output, &n.to_string()])
                        } else {
                            // The raw loop's fetch wait, to compare like with like.
                            let file = kafka_pipeline(dir, &brokers, &input, output, "5", program);
                            Process::spawn(sluice().arg(&file))
                        };
                        // W2 lets half of the events through.
                        let expect = if program.is_some() { n.div_ceil(2) } else { n };
                        let reading =
                            whole_run(&worker, started, n, expect, || counter.count() as u64);
                        Row {
                            workload,
                            runner: runner.to_string(),
                            reading: Some(reading),
                            note: "whole run, start-up included".into(),
                        }
                    }
                    tool => baseline_from(workload, tool, &brokers, &input, output, n, &[]),
                };
                eprintln!("{} {}: {:?}", row.workload, row.runner, row.reading);
                rows.push(row);
            }
        }
    }
}

/// The raw client loops, run as child processes of the suite: the physical limit of each bus
/// on this machine, with no parsing.
mod raw {
    use std::time::{Duration, Instant};

    use futures_util::StreamExt;
    use rdkafka::ClientConfig;
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    pub fn main(args: &[String]) {
        let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
        match arg(0) {
            "kafka" => kafka(
                arg(1),
                arg(2),
                arg(3),
                arg(4).parse().unwrap(),
                args.get(5).map_or("5", String::as_str),
            ),
            "nats" => {
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(nats(arg(1), arg(2), arg(3)))
            }
            "nats-reshape" => tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(nats_reshape(arg(1), arg(2), arg(3))),
            "jetstream" => tokio::runtime::Runtime::new().unwrap().block_on(jetstream(
                arg(1),
                arg(2),
                arg(3),
                arg(4).parse().unwrap(),
            )),
            "http" => tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(super::http::raw_server(arg(1), arg(2), arg(3))),
            "s3" => super::s3::raw(arg(1), arg(2), arg(3), arg(4).parse().unwrap()),
            other => panic!("unknown raw loop {other}"),
        }
    }

    /// Consume, produce the payload and key unchanged, commit every second once every record
    /// produced so far is delivered.
    /// `fetch_wait_ms`: librdkafka's `fetch.wait.max.ms`.
    fn kafka(brokers: &str, input: &str, output: &str, n: u64, fetch_wait_ms: &str) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "raw-loop")
            // The mock cluster answers a fetch only when its wait is up, even with data to
            // give: keep it short, as W5's sluice pipeline does.
            .set("fetch.wait.max.ms", fetch_wait_ms)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .create()
            .unwrap();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .create()
            .unwrap();
        consumer.subscribe(&[input]).unwrap();
        let mut seen = 0u64;
        let mut last_commit = Instant::now();
        while seen < n {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                let mut rec = BaseRecord::to(output).payload(m.payload().unwrap_or_default());
                if let Some(k) = m.key() {
                    rec = rec.key(k);
                }
                while let Err((_, back)) = producer.send(rec) {
                    rec = back;
                    producer.poll(Duration::from_millis(1));
                }
                producer.poll(Duration::ZERO);
                seen += 1;
            }
            if last_commit.elapsed() > Duration::from_secs(1) {
                // Every record produced so far is delivered before the offsets are committed.
                // (librdkafka's flush() would do, but here it held the loop for about 100 ms
                // each time, which W5 measured as this loop's p99.)
                while producer.in_flight_count() > 0 {
                    producer.poll(Duration::from_millis(1));
                }
                let _ = consumer.commit_consumer_state(CommitMode::Async);
                last_commit = Instant::now();
            }
        }
        producer.flush(Duration::from_secs(60)).unwrap();
        let _ = consumer.commit_consumer_state(CommitMode::Sync);
        // Stay until the suite has read this process's CPU and memory, then is killed.
        loop {
            std::thread::park();
        }
    }

    /// Subscribe and publish each payload unchanged.
    async fn nats(url: &str, input: &str, output: &str) {
        let client = async_nats::connect(url).await.unwrap();
        let mut sub = client.subscribe(input.to_string()).await.unwrap();
        let output = async_nats::Subject::from(output);
        while let Some(m) = sub.next().await {
            client.publish(output.clone(), m.payload).await.unwrap();
        }
    }

    /// Subscribe, reshape each payload as W3's program does (`{id, ts, service, status,
    /// latency_ms: (.latency * 1000)}`) with serde_json into and out of structs of just those
    /// fields (the others are parsed and skipped; the four kept are passed through unparsed),
    /// and publish it: the least a hand-written reshaping loop does.
    async fn nats_reshape(url: &str, input: &str, output: &str) {
        use serde_json::value::RawValue;
        #[derive(serde::Deserialize)]
        struct In<'a> {
            #[serde(borrow)]
            id: &'a RawValue,
            #[serde(borrow)]
            ts: &'a RawValue,
            #[serde(borrow)]
            service: &'a RawValue,
            #[serde(borrow)]
            status: &'a RawValue,
            latency: f64,
        }
        #[derive(serde::Serialize)]
        struct Out<'a> {
            id: &'a RawValue,
            ts: &'a RawValue,
            service: &'a RawValue,
            status: &'a RawValue,
            latency_ms: f64,
        }
        let client = async_nats::connect(url).await.unwrap();
        let mut sub = client.subscribe(input.to_string()).await.unwrap();
        let output = async_nats::Subject::from(output);
        while let Some(m) = sub.next().await {
            let Ok(e) = serde_json::from_slice::<In>(&m.payload) else {
                continue;
            };
            let out = Out {
                id: e.id,
                ts: e.ts,
                service: e.service,
                status: e.status,
                latency_ms: e.latency * 1000.0,
            };
            let payload = serde_json::to_vec(&out).unwrap();
            client
                .publish(output.clone(), payload.into())
                .await
                .unwrap();
        }
    }

    /// Fetch a batch, publish each payload with a `Nats-Msg-Id`, await the stream's acks, then
    /// ack the inputs.
    async fn jetstream(url: &str, stream: &str, output: &str, n: u64) {
        use async_nats::jetstream::{self, consumer::pull};
        let js = jetstream::new(async_nats::connect(url).await.unwrap());
        let consumer = js
            .get_stream(stream)
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
                headers.insert("Nats-Msg-Id", format!("{stream}/{seq}").as_str());
                acks.push(
                    js.publish_with_headers(output.to_string(), headers, m.payload.clone())
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
        // Stay until the suite has read this process's CPU and memory, then is killed.
        std::future::pending::<()>().await;
    }
}
