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
//!
//! # Layout
//! - this file: the command line, the table, and starting sluice, raw loops and other tools.
//! - `kafka`: W1 and W2 on the mock cluster, the backlogs, sluice's Kafka pipeline file.
//! - `apache_kafka`: W1 and W2 on Apache Kafka.
//! - `nats`: W3 on core NATS and W4 on JetStream.
//! - `http`: W6. `s3`: W7. `latency`: W5 and its table.
//! - `raw`: the raw client loops, run as child processes of the suite.
//! - `results`: the JSON records for `benches/charts.py`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::Process;
use testkit::measure::Reading;

#[path = "suite/apache_kafka.rs"]
mod apache_kafka;
#[path = "suite/http.rs"]
mod http;
#[path = "suite/kafka.rs"]
mod kafka;
#[path = "suite/latency.rs"]
mod latency;
#[path = "suite/nats.rs"]
mod nats;
#[path = "suite/raw.rs"]
mod raw;
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
        kafka::mock(&mut rows, dir.path(), n, wants("w1"), wants("w2"));
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
        nats::core(
            &mut rows,
            &mut trials,
            dir.path(),
            events.unwrap_or(200_000),
        );
    }
    if wants("w4") {
        nats::jetstream(&mut rows, dir.path(), events.unwrap_or(200_000));
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
        latencies.extend(latency::kafka(dir.path(), kafka_rate));
        for rate in rates {
            latencies.extend(latency::nats(dir.path(), rate));
        }
        latency::print(&latencies);
    }
    if let Some(path) = json {
        results::write(&path, &rows, &trials, &latencies);
    }
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
