//! Avro and Protobuf payloads with a Schema Registry, end to end on librdkafka's mock cluster,
//! checked against Confluent's own serializers (Python confluent-kafka with fastavro and
//! protobuf, `tests/registry_clients.py`): what they write, sluice reads; what sluice writes,
//! they read. The registry is the in-test one of `testkit::registry` (no registry server can be
//! installed here); it implements the documented REST API the clients use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};
use sluice::codec::avro::AvroSchema;
use sluice::codec::wire;
use testkit::kafka::{Collector, committed, end_offsets, produce};
use testkit::registry::Registry;
use testkit::{try_eventually, unique};
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 3;

const ORDER_AVSC: &str = r#"{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "customer", "type": "string"},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line",
      "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}, {"name": "price", "type": "double"}]}}},
    {"name": "note", "type": ["null", "string"], "default": null}
  ]
}"#;

const TOTALS_PROTO: &str = r#"syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";

message OrderTotal {
  enum Status { NEW = 0; PAID = 1; SHIPPED = 2; }
  int64 order_id = 1;
  string customer = 2;
  Status status = 3;
  double total = 4;
  int32 items = 5;
  google.protobuf.Timestamp placed_at = 6;
  string amount = 7;
  optional string note = 8;
}
"#;

const STATUSES: [&str; 3] = ["NEW", "PAID", "SHIPPED"];

/// What `registry_clients.py produce-orders` writes for order `i` (mirrored there).
fn order(i: u64) -> Value {
    let lines: Vec<Value> = (0..1 + i % 3)
        .map(|j| json!({"sku": format!("s{j}"), "qty": j + 1, "price": (i % 50) as f64 + 0.25 * j as f64}))
        .collect();
    json!({
        "id": i,
        "customer": format!("c{}", i % 97),
        "status": STATUSES[(i % 3) as usize],
        "amount": format!("{}.{:02}", i % 1000, i % 100),
        "placed_at": 1_700_000_000_000u64 + i * 1000,
        "lines": lines,
        "note": if i.is_multiple_of(5) { Value::Null } else { json!(format!("n{i}")) },
    })
}

/// The OrderTotal the pipeline's program makes of order `i`, as Python's `MessageToJson`
/// writes it (64-bit integers as text, fields without presence always there).
fn expected_total(i: u64) -> Value {
    let o = order(i);
    let lines = o["lines"].as_array().unwrap();
    let total = lines
        .iter()
        .map(|l| l["price"].as_f64().unwrap() * l["qty"].as_f64().unwrap())
        .fold(None, |sum: Option<f64>, x| Some(sum.map_or(x, |s| s + x)))
        .unwrap();
    let millis = o["placed_at"].as_u64().unwrap();
    let at = jiff::Timestamp::from_millisecond(millis as i64).unwrap();
    let mut v = json!({
        "order_id": i.to_string(),
        "customer": o["customer"],
        "status": o["status"],
        "total": total,
        "items": lines.len(),
        // Whole seconds: Python writes a Timestamp without a fraction then.
        "placed_at": at.to_string(),
        "amount": o["amount"],
    });
    if !o["note"].is_null() {
        v["note"] = o["note"].clone();
    }
    v
}

fn python(args: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/registry_clients.py"));
    cmd.args(args);
    cmd
}

fn run_python(args: &[&str]) -> String {
    let out = python(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("python3");
    assert!(out.status.success(), "registry_clients.py {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The `.proto` file and a FileDescriptorSet of it (for the Python side), in `dir`.
fn totals_proto(dir: &Path) -> (PathBuf, PathBuf) {
    let proto = dir.join("totals.proto");
    std::fs::write(&proto, TOTALS_PROTO).unwrap();
    let set = protox::compile([&proto], [dir]).expect("compile totals.proto");
    let descriptors = dir.join("totals.desc");
    std::fs::write(&descriptors, prost::Message::encode_to_vec(&set)).unwrap();
    (proto, descriptors)
}

type Running = tokio::task::JoinHandle<Result<(), Vec<sluice::runtime::PipelineError>>>;

fn start(yaml: &str) -> (CancellationToken, Running) {
    let pipeline = sluice::pipeline::load_str(Path::new("schemas.yaml"), yaml, &|_: &str| None)
        .unwrap_or_else(|d| panic!("{d:#?}"));
    let token = CancellationToken::new();
    let health = sluice::observe::health::Health::new(1);
    health.pipeline_started();
    let handle = tokio::spawn(sluice::runtime::run_pipeline(
        pipeline,
        token.clone(),
        health,
    ));
    (token, handle)
}

async fn stop(token: CancellationToken, running: Running) {
    token.cancel();
    let result = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("pipeline stops")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}

async fn wait_count(what: &str, c: &Collector, n: usize, timeout: Duration) {
    let done = try_eventually(timeout, async || (c.count() >= n).then_some(())).await;
    assert!(
        done.is_some(),
        "timed out waiting for {what}: {} of {n}",
        c.count()
    );
}

async fn assert_all_committed(brokers: &str, group: &str, topic: &str) {
    let (b, g, t) = (brokers.to_string(), group.to_string(), topic.to_string());
    let done = tokio::task::spawn_blocking(move || {
        let ends = end_offsets(&b, &t, PARTITIONS);
        testkit::wait::try_wait_for(Duration::from_secs(20), || {
            let now = committed(&b, &g, &t, PARTITIONS);
            (now.iter().zip(&ends).all(|(c, e)| *c == Some(*e))).then_some(())
        })
    })
    .await
    .unwrap();
    assert!(
        done.is_some(),
        "the group committed every input up to its end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_from_confluents_serializer_becomes_protobuf_its_deserializer_reads() {
    const N: u64 = 100_000;
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let (input, output, dlq, group) = (
        unique("orders"),
        unique("totals"),
        unique("dlq"),
        unique("g"),
    );
    for t in [&input, &output, &dlq] {
        cluster.create_topic(t, PARTITIONS, 1).unwrap();
    }
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let avsc = dir.path().join("order.avsc");
    std::fs::write(&avsc, ORDER_AVSC).unwrap();
    let (proto, descriptors) = totals_proto(dir.path());

    let produced = {
        let args = [
            &brokers,
            &input,
            &registry.url,
            avsc.to_str().unwrap(),
            &N.to_string(),
        ]
        .map(|s| s.to_string());
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = std::iter::once("produce-orders")
                .chain(args.iter().map(String::as_str))
                .collect();
            run_python(&args)
        })
        .await
        .unwrap()
    };
    assert_eq!(produced.trim(), N.to_string());

    let yaml = format!(
        "\
name: schemas
input:
  kafka:
    brokers: {brokers}
    topics: [{input}]
    group_id: {group}
    commit_interval: 200ms
    codec:
      avro:
        registry: {{url: '{url}'}}
transforms:
  - jq: '{{order_id: .id, customer, status, total: ([.lines[] | .price * .qty] | add),
          items: (.lines | length), placed_at, amount: (.amount | tostring), note}}'
output:
  kafka:
    brokers: {brokers}
    topic: {output}
    linger: 5ms
    format:
      protobuf:
        registry: {{url: '{url}'}}
        schema_file: {proto}
        message: shop.OrderTotal
        auto_register: true
errors:
  output: {{kafka: {{brokers: {brokers}, topic: {dlq}}}}}
settings:
  shutdown_timeout: 20s
",
        url = registry.url,
        proto = proto.display(),
    );
    let dead = Collector::start(&brokers, &dlq, PARTITIONS);
    let (token, running) = start(&yaml);
    assert_all_committed(&brokers, &group, &input).await;
    stop(token, running).await;
    assert_eq!(
        dead.count(),
        0,
        "no dead letters: {:?}",
        dead.records().first()
    );
    assert_eq!(
        registry.versions(&format!("{output}-value")).len(),
        1,
        "the output's schema was registered"
    );

    let lines = {
        let args = [
            &brokers,
            &output,
            &registry.url,
            descriptors.to_str().unwrap(),
            "shop.OrderTotal",
            &N.to_string(),
        ]
        .map(|s| s.to_string());
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = std::iter::once("consume-protobuf")
                .chain(args.iter().map(String::as_str))
                .collect();
            run_python(&args)
        })
        .await
        .unwrap()
    };
    let mut by_id = BTreeMap::new();
    for line in lines.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let value = record["value"].clone();
        let id: u64 = value["order_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            record["key"],
            json!(null),
            "order {id}: produced without a key"
        );
        assert!(
            by_id.insert(id, value).is_none(),
            "order {id} came out twice"
        );
    }
    assert_eq!(by_id.len() as u64, N, "every order came out once");
    for (id, value) in &by_id {
        let mut value = value.clone();
        let mut want = expected_total(*id);
        // A double Python may write as `3` or `3.0`: compared as numbers.
        assert_eq!(
            value["total"].as_f64(),
            want["total"].as_f64(),
            "order {id}"
        );
        value["total"] = Value::Null;
        want["total"] = Value::Null;
        assert_eq!(value, want, "order {id}");
    }
}

/// Avro bodies of `schema` (registered as `id`) in the wire format, one per value.
fn framed(schema: &AvroSchema, id: u32, values: impl IntoIterator<Item = Value>) -> Vec<Vec<u8>> {
    values
        .into_iter()
        .map(|v| {
            let mut out = Vec::new();
            wire::header(id, &mut out);
            let val = sluice::codec::decode(
                sluice::codec::Codec::Json,
                &bytes::Bytes::from(v.to_string()),
            )
            .unwrap();
            schema.encode(&val, &mut out).unwrap();
            out
        })
        .collect()
}

fn records(payloads: Vec<Vec<u8>>) -> Vec<testkit::kafka::Outgoing> {
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, p)| (Some(format!("k{}", i % 7)), p, vec![]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_outage_pauses_the_pipeline_and_bad_payloads_are_dead_lettered() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let (input, output, dlq, group) = (unique("in"), unique("out"), unique("dlq"), unique("g"));
    for t in [&input, &output, &dlq] {
        cluster.create_topic(t, PARTITIONS, 1).unwrap();
    }
    let registry = Arc::new(Registry::start());
    let v1 = r#"{"type":"record","name":"E","fields":[{"name":"id","type":"long"}]}"#;
    let v2 = r#"{"type":"record","name":"E","fields":[{"name":"id","type":"long"},{"name":"tag","type":"string","default":"x"}]}"#;
    let id1 = registry.register(&format!("{input}-value"), "AVRO", v1);
    let s1 = AvroSchema::parse(v1, &[]).unwrap();
    produce(
        &brokers,
        &input,
        records(framed(&s1, id1, (0..1000).map(|i| json!({"id": i})))),
    );

    let yaml = format!(
        "\
input:
  kafka:
    brokers: {brokers}
    topics: [{input}]
    group_id: {group}
    commit_interval: 200ms
    codec: {{avro: {{registry: {{url: '{url}'}}}}}}
output:
  kafka: {{brokers: {brokers}, topic: {output}, linger: 1ms}}
errors:
  output: {{kafka: {{brokers: {brokers}, topic: {dlq}}}}}
settings:
  shutdown_timeout: 20s
  retry: {{initial_backoff: 20ms, max_backoff: 200ms}}
",
        url = registry.url,
    );
    let out = Collector::start(&brokers, &output, PARTITIONS);
    let dead = Collector::start(&brokers, &dlq, PARTITIONS);
    let (token, running) = start(&yaml);
    wait_count("the first 1,000", &out, 1000, Duration::from_secs(60)).await;

    // A new schema id, while the registry is down: the pipeline waits for it, loses nothing,
    // and dead-letters nothing.
    let id2 = registry.register(&format!("{input}-value"), "AVRO", v2);
    let s2 = AvroSchema::parse(v2, &[]).unwrap();
    registry.set_down(true);
    produce(
        &brokers,
        &input,
        records(framed(
            &s2,
            id2,
            (1000..2000).map(|i| json!({"id": i, "tag": format!("t{i}")})),
        )),
    );
    let asked = format!("GET /schemas/ids/{id2}");
    let retried = try_eventually(Duration::from_secs(30), async || {
        (registry.requests().iter().filter(|r| **r == asked).count() >= 3).then_some(())
    })
    .await;
    assert!(
        retried.is_some(),
        "sluice asked for the new schema again and again"
    );
    assert_eq!(
        out.count(),
        1000,
        "nothing of the new schema came out while the registry was down"
    );
    assert_eq!(dead.count(), 0, "the outage dead-lettered nothing");
    registry.set_down(false);
    wait_count("all 2,000", &out, 2000, Duration::from_secs(60)).await;

    // Payloads that are their own fault: dead-lettered with the reason.
    let mut bad = framed(&s1, id1, [json!({"id": 1})]);
    let cut = bad[0].len() - 1;
    bad[0].truncate(cut);
    bad.push(vec![7, 0, 0, 0, 1, 2]);
    bad.extend(framed(&s1, 999, [json!({"id": 2})]));
    produce(&brokers, &input, records(bad));
    wait_count("3 dead letters", &dead, 3, Duration::from_secs(60)).await;
    assert_all_committed(&brokers, &group, &input).await;
    stop(token, running).await;

    let mut reasons: Vec<String> = dead
        .records()
        .iter()
        .map(|r| {
            assert_eq!(r.header("sluice-error-step"), Some("decode"));
            r.header("sluice-error-reason").unwrap().to_string()
        })
        .collect();
    reasons.sort();
    assert!(
        reasons[0].contains("not the Schema Registry wire format's 0x00"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].starts_with("schema id 1: Avro body does not match its schema"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("schema id 999 is not registered"),
        "{reasons:?}"
    );

    let mut ids: Vec<u64> = out
        .records()
        .iter()
        .map(|r| r.json()["id"].as_u64().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids,
        (0..2000).collect::<Vec<_>>(),
        "every event out, none lost"
    );
    let tagged = out
        .records()
        .iter()
        .filter(|r| r.json()["id"].as_u64() >= Some(1000))
        .all(|r| r.json()["tag"].as_str().is_some_and(|t| t.starts_with('t')));
    assert!(tagged, "events of the new schema carry its field");
}
