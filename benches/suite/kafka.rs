//! W1 and W2 on librdkafka's mock cluster (and W2 on bare Avro bodies), the backlogs they drain,
//! and sluice's Kafka-to-Kafka pipeline file, shared with W1 on Apache Kafka and W5.

use std::path::Path;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use testkit::Process;
use testkit::kafka::{EndOffsets, KafkaPipeline};
use testkit::measure::{self, event, watch};

use super::{PARTITIONS, Row, TIMEOUT, W2_PROGRAM, baseline, raw_worker, sluice};

/// sluice's pipeline file for Kafka `input` -> `program` (none: passthrough) -> `output`, in
/// consumer group `output`, fetching with waits of at most `fetch_wait_ms`.
pub fn kafka_pipeline(
    brokers: &str,
    input: &str,
    output: &str,
    fetch_wait_ms: &str,
    program: Option<&str>,
) -> KafkaPipeline {
    let mut file =
        KafkaPipeline::new(brokers, input, output, output).option("session.timeout.ms", "6000");
    // SLUICE_FETCH_WAIT_MS=100 runs sluice with another wait; `default` with its own default.
    match std::env::var("SLUICE_FETCH_WAIT_MS") {
        Ok(ms) if ms == "default" => {}
        Ok(ms) => file = file.option("fetch.wait.max.ms", &ms),
        Err(_) => file = file.option("fetch.wait.max.ms", fetch_wait_ms),
    }
    // SLUICE_KAFKA_OPTIONS=queued.max.messages.kbytes=16384,... adds librdkafka properties to
    // the input's options.
    for (k, v) in std::env::var("SLUICE_KAFKA_OPTIONS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
    {
        file = file.option(k.trim(), v.trim());
    }
    if let Some(p) = program {
        file = file.transforms(&format!("- jq: '{p}'"));
    }
    // SLUICE_MAX_IN_FLIGHT=32MiB runs sluice with another in-flight budget.
    if let Ok(b) = std::env::var("SLUICE_MAX_IN_FLIGHT") {
        file = file.settings(&format!("max_in_flight_bytes: {b}"));
    }
    file.errors("drop")
}

/// Records in `topic` so far (0 while the broker does not answer).
fn kafka_total(offsets: &EndOffsets, topic: &str) -> u64 {
    offsets
        .of(topic, PARTITIONS)
        .map_or(0, |ends| ends.iter().map(|e| (*e).max(0) as u64).sum())
}

/// W1 and W2 on the mock cluster: `n` events drained by each runner.
pub fn mock(rows: &mut Vec<Row>, dir: &Path, n: u64, w1: bool, w2: bool) {
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
        kafka_pipeline(&brokers, "in", output, "5", program).write(dir, output)
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
        let file = kafka_pipeline(&brokers, "in-avro", "w2-avro-sluice", "5", Some(W2_PROGRAM))
            .input(&format!(
                "codec: {{avro: {{schema_file: '{}'}}}}",
                avsc.display()
            ))
            .write(dir, "w2-avro-sluice");
        let worker = Process::spawn(sluice().arg(&file));
        rows.push(kafka_run("W2 avro", "sluice", worker, n.div_ceil(2)));
    }
}

/// Produces `n` events of `size` bytes to `topic`, round robin over its `partitions`, keyed
/// `k0` to `k63`, batches compressed with `compression` (librdkafka's `compression.type`).
pub fn backlog(
    brokers: &str,
    topic: &str,
    n: u64,
    partitions: i32,
    size: usize,
    compression: &str,
) {
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
