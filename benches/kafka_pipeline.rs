//! Kafka-to-Kafka throughput: a sluice jq pipeline against a raw rdkafka consume->produce loop,
//! on the same broker (librdkafka's mock cluster, in process), in one run.
//!
//! `cargo bench --bench kafka_pipeline [-- EVENTS]` prints events/s for both and the ratio, plus
//! CPU-microseconds per event of the whole process (broker included, the same for both).
//! Run without `--bench` (as `cargo test` does) it only checks that it builds and starts.

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message};
use tokio_util::sync::CancellationToken;

// The mock broker keeps at most 5 MB per partition (older records are deleted), so a backlog of
// 1 KB events is spread over enough partitions to be kept whole: 32 hold 150,000 events.
const PARTITIONS: i32 = 32;

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc (Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}

/// A 1 KB JSON event with about 20 fields.
fn event(i: u64) -> Vec<u8> {
    let mut e = format!(
        "{{\"id\":{i},\"ts\":{},\"service\":\"svc-{}\",\"status\":{},\"latency\":{:.4},\"msg\":\"request handled\",\
         \"host\":\"host-{}\",\"region\":\"eu-west-1\",\"method\":\"GET\",\"path\":\"/api/v1/items/{}\",\"bytes\":{},\
         \"user\":\"user-{}\",\"agent\":\"bench/1.0\",\"trace\":\"{:016x}\",\"span\":\"{:08x}\",\"env\":\"prod\",\
         \"version\":\"1.2.3\",\"retries\":{},\"cache\":\"miss\",\"pad\":\"",
        1_700_000_000_000u64 + i,
        i % 17,
        if i.is_multiple_of(2) { 500 } else { 200 },
        (i % 1000) as f64 / 997.0,
        i % 31,
        i % 1000,
        i * 7 % 65536,
        i % 5000,
        i.wrapping_mul(0x9e3779b97f4a7c15),
        i as u32,
        i % 3
    );
    while e.len() < 1022 {
        e.push('x');
    }
    e.push_str("\"}");
    e.into_bytes()
}

fn produce(brokers: &str, topic: &str, n: u64) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .create()
        .unwrap();
    for i in 0..n {
        let payload = event(i);
        let key = format!("k{}", i % 64);
        // Spread evenly: the mock broker's per-partition cap must not drop any of the backlog.
        let mut rec = BaseRecord::to(topic)
            .payload(&payload)
            .key(&key)
            .partition((i % PARTITIONS as u64) as i32);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    p.poll(Duration::from_millis(5));
                }
            }
        }
    }
    p.flush(Duration::from_secs(120)).unwrap();
}

fn end_total(brokers: &str, topic: &str) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    (0..PARTITIONS)
        .map(|p| {
            c.fetch_watermarks(topic, p, Duration::from_secs(10))
                .map(|w| w.1)
                .unwrap_or(0)
        })
        .sum()
}

/// A throughput reading taken on an output topic: from the moment 2% of the expected events
/// are there (consumer group joined, pipeline warm) to the moment all are.
struct Reading {
    events: i64,
    seconds: f64,
    cpu_seconds: f64,
}

fn measure(brokers: &str, topic: &str, expect: i64, timeout: Duration) -> Reading {
    let deadline = Instant::now() + timeout;
    let mut start: Option<(Instant, i64, f64)> = None;
    loop {
        let total = end_total(brokers, topic);
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
            "{topic} did not reach {expect} events (at {total})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The physical limit: consume, produce the payload unchanged, store offsets after delivery.
fn raw_loop(brokers: &str, input: &str, output: &str, n: u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "raw-loop")
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
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        rec = back;
                        producer.poll(Duration::from_millis(1));
                    }
                }
            }
            producer.poll(Duration::ZERO);
            seen += 1;
        }
        if last_commit.elapsed() > Duration::from_secs(1) {
            producer.flush(Duration::from_secs(30)).unwrap();
            let _ = consumer.commit_consumer_state(CommitMode::Async);
            last_commit = Instant::now();
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let _ = consumer.commit_consumer_state(CommitMode::Sync);
}

/// Runs a jq pipeline until `expect` events are in the output.
fn sluice_pipeline(
    brokers: &str,
    input: &str,
    output: &str,
    expect: u64,
    program: Option<&str>,
) -> Reading {
    let transforms = program
        .map(|p| format!("transforms:\n  - jq: '{p}'\n"))
        .unwrap_or_default();
    let yaml = format!(
        "input:\n  kafka:\n    brokers: {brokers}\n    topics: [{input}]\n    group_id: sluice-{output}\n    options:\n      session.timeout.ms: \"6000\"\n\
         {transforms}\
         output:\n  kafka:\n    brokers: {brokers}\n    topic: {output}\nerrors: drop\n"
    );
    let pipeline = sluice::config::load_str(Path::new("bench.yaml"), &yaml, &|_: &str| None)
        .expect("pipeline");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let token = CancellationToken::new();
    let handle = rt.spawn(sluice::runtime::run_pipeline(
        pipeline,
        token.clone(),
        sluice::observe::health::Health::new(1),
    ));
    let reading = measure(brokers, output, expect as i64, Duration::from_secs(600));
    token.cancel();
    let _ = rt.block_on(handle);
    reading
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if bench { 150_000 } else { 2_000 });
    assert!(
        n <= 150_000,
        "the mock broker keeps at most 150,000 events of 1 KB over {PARTITIONS} partitions"
    );
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    for t in ["in", "raw-out", "copy-out", "pass-out", "jq-out"] {
        cluster.create_topic(t, PARTITIONS, 1).unwrap();
    }
    produce(&brokers, "in", n);

    let mut rows = Vec::new();
    let (b, expect) = (brokers.clone(), n);
    let raw = std::thread::spawn(move || raw_loop(&b, "in", "raw-out", expect));
    rows.push((
        "raw rdkafka consume->produce",
        measure(&brokers, "raw-out", n as i64, Duration::from_secs(600)),
    ));
    raw.join().unwrap();
    rows.push((
        "sluice, no transforms",
        sluice_pipeline(&brokers, "in", "copy-out", n, None),
    ));
    rows.push((
        "sluice jq `.` (parse + serialize)",
        sluice_pipeline(&brokers, "in", "pass-out", n, Some(".")),
    ));
    // Even ids have status 500: half the events pass the select.
    let program = "select(.status >= 500) | {ts, service, msg, latency_ms: (.latency * 1000)}";
    rows.push((
        "sluice jq filter+reshape (50%)",
        sluice_pipeline(&brokers, "in", "jq-out", n.div_ceil(2), Some(program)),
    ));

    if !bench {
        // Too few events to time: this run only shows that every workload drains.
        println!(
            "smoke run: {n} events through each of {} workloads",
            rows.len()
        );
        return;
    }
    // Rates are of input events: the filter workload writes half as many.
    let input_rate = |r: &Reading, share: f64| r.events as f64 / share / r.seconds;
    let raw_rate = input_rate(&rows[0].1, 1.0);
    println!("{n} events of 1 KB, {PARTITIONS} partitions, mock cluster in process");
    println!(
        "{:<36} {:>12} {:>10} {:>14}",
        "workload", "events/s", "ratio", "cpu-us/event"
    );
    for (i, (name, r)) in rows.iter().enumerate() {
        let share = if i == 3 { 0.5 } else { 1.0 };
        let rate = input_rate(r, share);
        let cpu_us = r.cpu_seconds * 1e6 / (r.events as f64 / share);
        println!(
            "{name:<36} {rate:>12.0} {:>10.2} {cpu_us:>14.1}",
            rate / raw_rate
        );
    }
}
