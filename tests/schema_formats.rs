//! Avro and Protobuf payloads with a Schema Registry, end to end on librdkafka's mock cluster
//! (and on JetStream, with the registry behind mutual TLS), checked against Confluent's own serializers (Python confluent-kafka with fastavro and
//! protobuf, `tests/registry_clients.py`): what they write, sluice reads; what sluice writes,
//! they read. The registry is the in-test one of `testkit::registry` (no registry server can be
//! installed here); it implements the documented REST API the clients use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};
use sluice::codec::avro::AvroSchema;
use sluice::codec::wire;
use testkit::kafka::{Collector, KafkaPipeline, committed, end_offsets, produce, wait_count};
use testkit::registry::Registry;
use testkit::{try_eventually, unique};
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 3;

/// The orders of the Avro tests (and of `benches/file-formats.sh`).
const ORDER_AVSC: &str = include_str!("schemas/order.avsc");

const TOTALS_PROTO: &str = include_str!("schemas/totals.proto");

/// Every Protobuf field kind (mirrored by `all_proto` in tests/registry_clients.py; every Avro
/// type is in tests/schemas/all-types.avsc, mirrored by `all_avro`).
const ALL_PROTO: &str = r#"syntax = "proto3";
package kinds;
import "google/protobuf/duration.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

message All {
  enum Color { RED = 0; GREEN = 1; BLUE = 2; }
  message Inner { int32 x = 1; string s = 2; }
  double d = 1;
  float f = 2;
  int32 i32 = 3;
  int64 i64 = 4;
  uint32 u32 = 5;
  uint64 u64 = 6;
  sint32 s32 = 7;
  sint64 s64 = 8;
  fixed32 f32 = 9;
  fixed64 f64 = 10;
  sfixed32 sf32 = 11;
  sfixed64 sf64 = 12;
  bool b = 13;
  string s = 14;
  bytes by = 15;
  Color color = 16;
  Inner inner = 17;
  repeated int64 nums = 18;
  repeated Inner inners = 19;
  map<string, int32> counts = 20;
  map<int64, Inner> by_id = 21;
  repeated Color colors = 22;
  oneof choice { string name = 23; int64 number = 24; Inner detail = 25; }
  optional string maybe = 26;
  google.protobuf.Timestamp ts = 27;
  google.protobuf.Duration dur = 28;
  google.protobuf.Int64Value wrapped = 29;
  google.protobuf.StringValue wrapped_s = 30;
  google.protobuf.Struct meta = 31;
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

/// `run_python` with `command` and `args`, off the runtime's threads.
async fn python_off_runtime(command: &str, args: &[&str]) -> String {
    let args: Vec<String> = std::iter::once(command)
        .chain(args.iter().copied())
        .map(str::to_string)
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_python(&args)
    })
    .await
    .unwrap()
}

/// `text` written as `dir`/`name`.proto, and a FileDescriptorSet of it (for the Python side).
fn proto_files(dir: &Path, name: &str, text: &str) -> (PathBuf, PathBuf) {
    let proto = dir.join(format!("{name}.proto"));
    std::fs::write(&proto, text).unwrap();
    let set = protox::compile([&proto], [dir]).expect("compile the .proto file");
    let descriptors = dir.join(format!("{name}.desc"));
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

async fn assert_all_committed(brokers: &str, group: &str, topic: &str) {
    let (b, g, t) = (brokers.to_string(), group.to_string(), topic.to_string());
    let done = tokio::task::spawn_blocking(move || {
        let ends = end_offsets(&b, &t, PARTITIONS);
        testkit::wait::try_wait_for(Duration::from_secs(180), || {
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
    let (proto, descriptors) = proto_files(dir.path(), "totals", TOTALS_PROTO);

    let produced = python_off_runtime(
        "produce-orders",
        &[
            &brokers,
            &input,
            &registry.url,
            avsc.to_str().unwrap(),
            &N.to_string(),
        ],
    )
    .await;
    assert_eq!(produced.trim(), N.to_string());

    let (url, proto) = (&registry.url, proto.display());
    let yaml = KafkaPipeline::new(&brokers, &input, &group, &output)
        .name("schemas")
        .input(&format!(
            "commit_interval: 200ms\ncodec:\n  avro:\n    registry: {{url: '{url}'}}"
        ))
        .transforms(
            "\
- jq: '{order_id: .id, customer, status, total: ([.lines[] | .price * .qty] | add),
        items: (.lines | length), placed_at, amount: (.amount | tostring), note}'",
        )
        .output(&format!(
            "\
linger: 5ms
format:
  protobuf:
    registry: {{url: '{url}'}}
    schema_file: {proto}
    message: shop.OrderTotal
    auto_register: true"
        ))
        .dead_letters(&dlq)
        .settings("shutdown_timeout: 20s")
        .yaml();
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

    let lines = python_off_runtime(
        "consume-protobuf",
        &[
            &brokers,
            &output,
            &registry.url,
            descriptors.to_str().unwrap(),
            "shop.OrderTotal",
            &N.to_string(),
        ],
    )
    .await;
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

/// The lines `registry_clients.py` printed, sorted (records arrive from several partitions in no
/// set order).
fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

/// The `output` of a pipeline writing to topic `topic` in `format`.
fn kafka_output(brokers: &str, topic: &str, format: &str) -> String {
    format!("kafka: {{brokers: {brokers}, topic: {topic}, linger: 5ms, format: {format}}}")
}

/// Runs a pipeline without transforms from `input` (`codec`) to `output` (a flow-style output
/// section) until its group has committed every input; the collector of its dead letters.
async fn pass_through(brokers: &str, input: &str, codec: &str, output: &str) -> Collector {
    let (dlq, group) = (unique("dlq"), unique("g"));
    let yaml = format!(
        "\
input:
  kafka:
    brokers: {brokers}
    topics: [{input}]
    group_id: {group}
    commit_interval: 200ms
    codec: {codec}
output:
  {output}
errors:
  output: {{kafka: {{brokers: {brokers}, topic: {dlq}}}}}
settings:
  shutdown_timeout: 20s
"
    );
    let dead = Collector::start(brokers, &dlq, PARTITIONS);
    let (token, running) = start(&yaml);
    assert_all_committed(brokers, &group, input).await;
    stop(token, running).await;
    dead
}

/// Asserts that `got` (what a consumer printed) holds `n` records, the records of `want`.
fn assert_same_records(got: &str, want: &str, n: usize, dead: &Collector) {
    let reason = |r: &testkit::kafka::Record| r.header("sluice-error-reason").map(str::to_string);
    let first = dead.records().first().map(reason);
    assert_eq!(
        got.lines().count(),
        n,
        "every record came out; dead letters: {first:?}"
    );
    assert_eq!(dead.count(), 0, "no dead letters: {first:?}");
    assert_eq!(sorted_lines(got), sorted_lines(want));
}

/// A mock cluster with an input and an output topic, and a registry.
struct Rig {
    _cluster: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    brokers: String,
    input: String,
    output: String,
    registry: Registry,
}

impl Rig {
    fn new() -> Rig {
        let cluster = MockCluster::new(1).unwrap();
        let (input, output) = (unique("in"), unique("out"));
        for t in [&input, &output] {
            cluster.create_topic(t, PARTITIONS, 1).unwrap();
        }
        Rig {
            brokers: cluster.bootstrap_servers(),
            _cluster: cluster,
            input,
            output,
            registry: Registry::start(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_avro_type_round_trips_between_confluents_serializer_and_deserializer() {
    const N: usize = 600;
    let Rig {
        brokers,
        input,
        output,
        registry,
        ..
    } = &Rig::new();
    let avsc = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/all-types.avsc");
    let avsc = avsc.to_str().unwrap();
    let (n, url) = (N.to_string(), registry.url.as_str());

    let produced = python_off_runtime("produce-all-avro", &[brokers, input, url, avsc, &n]).await;
    assert_eq!(produced.trim(), n);
    let dead = pass_through(
        brokers,
        input,
        &format!("{{avro: {{registry: {{url: '{url}'}}}}}}"),
        &kafka_output(
            brokers,
            output,
            &format!(
                "{{avro: {{registry: {{url: '{url}'}}, schema_file: '{avsc}', auto_register: true}}}}"
            ),
        ),
    )
    .await;

    // What fastavro reads back from sluice's output is what it reads back from its own bodies.
    let got = python_off_runtime("consume-avro", &[brokers, output, url, &n]).await;
    let want = python_off_runtime("expect-all-avro", &["-", "-", "-", avsc, &n]).await;
    assert_same_records(&got, &want, N, &dead);
    assert_eq!(registry.versions(&format!("{output}-value")).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protobuf_kind_round_trips_between_confluents_serializer_and_deserializer() {
    const N: usize = 600;
    let Rig {
        brokers,
        input,
        output,
        registry,
        ..
    } = &Rig::new();
    let dir = tempfile::tempdir().unwrap();
    let (proto, descriptors) = proto_files(dir.path(), "all", ALL_PROTO);
    let (proto, descriptors) = (proto.to_str().unwrap(), descriptors.to_str().unwrap());
    let (n, url) = (N.to_string(), registry.url.as_str());

    let produced = python_off_runtime(
        "produce-all-protobuf",
        &[brokers, input, url, descriptors, "kinds.All", &n],
    )
    .await;
    assert_eq!(produced.trim(), n);
    let dead = pass_through(
        brokers,
        input,
        &format!("{{protobuf: {{registry: {{url: '{url}'}}}}}}"),
        &kafka_output(
            brokers,
            output,
            &format!(
                "{{protobuf: {{registry: {{url: '{url}'}}, schema_file: '{proto}', message: kinds.All, auto_register: true}}}}"
            ),
        ),
    )
    .await;

    let got = python_off_runtime(
        "consume-protobuf",
        &[brokers, output, url, descriptors, "kinds.All", &n],
    )
    .await;
    let want = python_off_runtime(
        "expect-all-protobuf",
        &["-", "-", "-", descriptors, "kinds.All", &n],
    )
    .await;
    assert_same_records(&got, &want, N, &dead);
}

/// Runs `pass_through` from each of `topics` in turn (a restart between them) to `output`,
/// asserting that nothing was dead-lettered.
async fn pass_each(brokers: &str, topics: &[&str], codec: &str, output: &str) {
    for topic in topics {
        let dead = pass_through(brokers, topic, codec, output).await;
        let first = dead
            .records()
            .first()
            .map(|r| r.header("sluice-error-reason").map(str::to_string));
        assert_eq!(dead.count(), 0, "no dead letters: {first:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_avro_type_reaches_an_avro_object_file_fastavro_reads_across_restarts() {
    const N: usize = 600;
    let rig = Rig::new();
    let (brokers, url) = (rig.brokers.as_str(), rig.registry.url.as_str());
    let topics = [rig.input.as_str(), rig.output.as_str()];
    let avsc = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/all-types.avsc");
    let avsc = avsc.to_str().unwrap();
    let n = N.to_string();
    for topic in topics {
        let produced =
            python_off_runtime("produce-all-avro", &[brokers, topic, url, avsc, &n]).await;
        assert_eq!(produced.trim(), n);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.avro");
    let path = path.to_str().unwrap();

    // Two runs, one topic each: the second appends to the file the first made.
    let output = format!(
        "file: {{path: '{path}', format: {{avro: {{schema_file: '{avsc}', compression: deflate}}}}}}"
    );
    let codec = format!("{{avro: {{registry: {{url: '{url}'}}}}}}");
    pass_each(brokers, &topics, &codec, &output).await;

    let read = python_off_runtime("read-avro-file", &["-", "-", "-", path]).await;
    let (file_codec, records) = read.split_once('\n').unwrap();
    assert_eq!(file_codec, "deflate");
    let want = python_off_runtime("expect-all-avro", &["-", "-", "-", avsc, &n, "values"]).await;
    assert_eq!(
        records.lines().count(),
        2 * N,
        "every record of both runs is in the file"
    );
    assert_eq!(sorted_lines(records), sorted_lines(&want.repeat(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protobuf_kind_reaches_a_delimited_file_protobuf_reads_across_restarts() {
    const N: usize = 600;
    let rig = Rig::new();
    let (brokers, url) = (rig.brokers.as_str(), rig.registry.url.as_str());
    let topics = [rig.input.as_str(), rig.output.as_str()];
    let dir = tempfile::tempdir().unwrap();
    let (proto, descriptors) = proto_files(dir.path(), "all", ALL_PROTO);
    let (proto, descriptors) = (proto.to_str().unwrap(), descriptors.to_str().unwrap());
    let n = N.to_string();
    for topic in topics {
        let produced = python_off_runtime(
            "produce-all-protobuf",
            &[brokers, topic, url, descriptors, "kinds.All", &n],
        )
        .await;
        assert_eq!(produced.trim(), n);
    }
    let path = dir.path().join("all.pb");
    let path = path.to_str().unwrap();

    let output = format!(
        "file: {{path: '{path}', format: {{protobuf: {{schema_file: '{proto}', message: kinds.All}}}}}}"
    );
    let codec = format!("{{protobuf: {{registry: {{url: '{url}'}}}}}}");
    pass_each(brokers, &topics, &codec, &output).await;

    let got = python_off_runtime(
        "read-protobuf-file",
        &["-", "-", "-", descriptors, "kinds.All", path],
    )
    .await;
    let want = python_off_runtime(
        "expect-all-protobuf",
        &["-", "-", "-", descriptors, "kinds.All", &n, "values"],
    )
    .await;
    assert_eq!(
        got.lines().count(),
        2 * N,
        "every message of both runs is in the file"
    );
    assert_eq!(sorted_lines(&got), sorted_lines(&want.repeat(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_to_jetstream_with_a_registry_behind_mutual_tls_and_basic_auth() {
    const N: u64 = 2000;
    let nats = testkit::nats::NatsServer::start();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let (input, output) = (unique("IN"), unique("OUT"));
    let (in_subject, out_subject) = (unique("in"), unique("out"));
    testkit::nats::create_stream(&js, &input, &[format!("{in_subject}.>")]).await;
    testkit::nats::create_stream(&js, &output, &[format!("{out_subject}.>")]).await;

    // The registry answers only over mutual TLS, and only requests with its credentials.
    let registry = Registry::start();
    let plain_port: u16 = registry.url.rsplit(':').next().unwrap().parse().unwrap();
    registry.require_authorization(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("reg-user:reg-secret")
    ));
    let pki = testkit::pki::Pki::generate();
    let proxy = testkit::tls_proxy::TlsProxy::start(&pki, true);
    proxy.forward_to(plain_port);

    let order = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"amount","type":"double"}]}"#;
    let id = registry.register("orders-value", "AVRO", order);
    let schema = AvroSchema::parse(order, &[]).unwrap();
    let bodies = framed(
        &schema,
        id,
        (0..N).map(|i| json!({"id": i, "name": format!("c{i}"), "amount": i as f64 / 4.0})),
    );
    testkit::nats::publish_all(
        &js,
        bodies
            .into_iter()
            .map(|b| (format!("{in_subject}.eu"), bytes::Bytes::from(b))),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("total.proto");
    std::fs::write(
        &proto,
        "syntax = \"proto3\";\npackage shop;\nmessage Total { int64 order_id = 1; string customer = 2; double total = 3; }\n",
    )
    .unwrap();
    let reg = format!(
        "{{url: 'https://localhost:{port}', auth: {{basic: {{user: reg-user, password: reg-secret}}}}, \
         tls: {{ca_file: '{ca}', cert_file: '{cert}', key_file: '{key}'}}}}",
        port = proxy.port(),
        ca = pki.path("ca.pem").display(),
        cert = pki.path("client.pem").display(),
        key = pki.path("client-key.pem").display(),
    );
    let yaml = format!(
        "\
input:
  jetstream:
    url: {url}
    stream: {input}
    consumer: proc
    codec: {{avro: {{registry: {reg}}}}}
transforms:
  - jq: '{{order_id: .id, customer: .name, total: .amount}}'
output:
  jetstream:
    url: {url}
    subject: {out_subject}.totals
    format:
      protobuf: {{registry: {reg}, subject: totals-value, schema_file: '{proto}', message: shop.Total, auto_register: true}}
errors: drop
settings:
  shutdown_timeout: 20s
",
        url = nats.url(),
        proto = proto.display(),
    );
    let (token, running) = start(&yaml);
    let all = try_eventually(Duration::from_secs(60), async || {
        (testkit::nats::stored(&js, &output).await? >= N).then_some(())
    })
    .await;
    assert!(all.is_some(), "all {N} totals stored");
    stop(token, running).await;

    let requests = registry.requests();
    assert!(
        requests.contains(&format!("GET /schemas/ids/{id}")),
        "{requests:?}"
    );
    // A subject's versions, as the ids of their schemas.
    let versions = registry.versions("totals-value");
    assert_eq!(versions.len(), 1, "the output's schema was registered");
    let total_id = versions[0];

    let pool = prost_reflect::DescriptorPool::from_file_descriptor_set(
        protox::compile([&proto], [dir.path()]).unwrap(),
    )
    .unwrap();
    let total = pool.get_message_by_name("shop.Total").unwrap();
    let mut seen = BTreeMap::new();
    for m in testkit::nats::read_stream(&js, &output).await {
        // Confluent's wire format: 0, the schema id, the message's index path ([0]: one byte 0).
        assert_eq!(m.payload[0], 0);
        assert_eq!(
            u32::from_be_bytes(m.payload[1..5].try_into().unwrap()),
            total_id
        );
        assert_eq!(m.payload[5], 0);
        let message =
            prost_reflect::DynamicMessage::decode(total.clone(), &m.payload[6..]).unwrap();
        let field = |name: &str| message.get_field_by_name(name).unwrap().into_owned();
        let order_id = field("order_id").as_i64().unwrap() as u64;
        assert_eq!(
            field("customer").as_str(),
            Some(format!("c{order_id}").as_str())
        );
        assert_eq!(field("total").as_f64(), Some(order_id as f64 / 4.0));
        assert!(
            seen.insert(order_id, ()).is_none(),
            "order {order_id} twice"
        );
    }
    assert_eq!(seen.len() as u64, N, "every order once");
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

    let yaml = KafkaPipeline::new(&brokers, &input, &group, &output)
        .input(&format!(
            "commit_interval: 200ms\ncodec: {{avro: {{registry: {{url: '{}'}}}}}}",
            registry.url
        ))
        .output("linger: 1ms")
        .dead_letters(&dlq)
        .settings("shutdown_timeout: 20s\nretry: {initial_backoff: 20ms, max_backoff: 200ms}")
        .yaml();
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

    let mut ids = out.ids();
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
