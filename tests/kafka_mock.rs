//! Kafka input and output on librdkafka's mock cluster, in process: delivery, ordering, commits,
//! and faults (broker down, produce errors, leader change). Nothing may be lost.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use sluice::observe::health::Health;
use testkit::kafka::{
    Collector, KafkaPipeline, Outgoing, Record, committed, end_offsets, produce, wait_count,
};
use testkit::{eventually, try_eventually, unique};
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 3;

struct Setup {
    input: String,
    output: String,
    dlq: String,
    group: String,
}

impl Setup {
    /// Fresh topic and group names, so tests never see each other's data.
    fn names() -> Setup {
        Setup {
            input: unique("in"),
            output: unique("out"),
            dlq: unique("dlq"),
            group: unique("group"),
        }
    }
}

fn setup(cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>) -> Setup {
    let s = Setup::names();
    for t in [&s.input, &s.output, &s.dlq] {
        cluster.create_topic(t, PARTITIONS, 3).unwrap();
    }
    s
}

fn pipeline_yaml(brokers: &str, s: &Setup) -> String {
    KafkaPipeline::new(brokers, &s.input, &s.group, &s.output)
        .name("mock")
        .input("commit_interval: 200ms")
        .option("session.timeout.ms", "6000")
        .option("heartbeat.interval.ms", "500")
        .transforms(
            "\
- jq: '{id, doubled: (.n * 2)}'
- route:
    key: '$key'
    headers:
      x-from: '$source.topic'",
        )
        .output("linger: 1ms")
        // A block, not flow style: tests below give the dead-letter output other settings.
        .errors(&format!(
            "output:\n  kafka:\n    brokers: {brokers}\n    topic: {}",
            s.dlq
        ))
        .settings("batch_size: 200\nshutdown_timeout: 20s")
        .yaml()
}

type Running = tokio::task::JoinHandle<Result<(), Vec<sluice::runtime::PipelineError>>>;

fn start(yaml: &str) -> (CancellationToken, Running) {
    let (token, handle, _) = start_with_health(yaml);
    (token, handle)
}

fn start_with_health(yaml: &str) -> (CancellationToken, Running, Arc<Health>) {
    let pipeline = sluice::pipeline::load_str(Path::new("mock.yaml"), yaml, &|_: &str| None)
        .expect("valid pipeline");
    let token = CancellationToken::new();
    let health = Health::new(1);
    health.pipeline_started();
    let handle = tokio::spawn(sluice::runtime::run_pipeline(
        pipeline,
        token.clone(),
        health.clone(),
    ));
    (token, handle, health)
}

/// Events `{"id": i, "n": i}` keyed `k{i % 20}`; ids in `bad` get a malformed payload.
fn events(range: std::ops::Range<u64>, bad: &[u64]) -> Vec<Outgoing> {
    range
        .map(|i| {
            let payload = if bad.contains(&i) {
                format!("{{\"id\": {i}, oops").into_bytes()
            } else {
                format!("{{\"id\":{i},\"n\":{i}}}").into_bytes()
            };
            (Some(format!("k{}", i % 20)), payload, vec![("trace", "t")])
        })
        .collect()
}

/// The group committed every input partition up to its end: everything read was handled.
async fn assert_all_committed(brokers: &str, s: &Setup) {
    let done = committed_now(brokers, s, PARTITIONS).await;
    let (b, i) = (brokers.to_string(), s.input.clone());
    let ends = tokio::task::spawn_blocking(move || end_offsets(&b, &i, PARTITIONS))
        .await
        .unwrap();
    assert_eq!(done, ends, "committed offsets equal the end offsets");
}

/// Every id in `0..n` except `bad` arrived, each output carries its input key and headers, and
/// ids of one key arrive in increasing order. Returns the number of duplicates.
fn check_output(records: &[Record], n: u64, bad: &[u64], input: &str) -> usize {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    let mut last_by_key: HashMap<String, u64> = HashMap::new();
    let mut by_partition: BTreeMap<i32, Vec<&Record>> = BTreeMap::new();
    for r in records {
        by_partition.entry(r.partition).or_default().push(r);
    }
    for recs in by_partition.values_mut() {
        recs.sort_by_key(|r| r.offset);
        for r in recs.iter() {
            let v = r.json();
            let id = v["id"].as_u64().expect("id");
            assert_eq!(v["doubled"].as_u64(), Some(id * 2));
            let key = r.key.clone().expect("key kept");
            assert_eq!(key, format!("k{}", id % 20));
            assert_eq!(r.header("trace"), Some("t"), "input headers kept");
            assert_eq!(r.header("x-from"), Some(input));
            *seen.entry(id).or_default() += 1;
            // Redelivered ranges may repeat, but a key never goes backwards past a first delivery.
            if let Some(prev) = last_by_key.get(&key)
                && seen[&id] == 1
            {
                assert!(id > *prev, "key {key}: id {id} after {prev}");
            }
            last_by_key.insert(key, id);
        }
    }
    let expected: Vec<u64> = (0..n).filter(|i| !bad.contains(i)).collect();
    let missing: Vec<u64> = expected
        .iter()
        .copied()
        .filter(|i| !seen.contains_key(i))
        .collect();
    assert!(
        missing.is_empty(),
        "lost {} events, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(seen.len(), expected.len(), "unexpected ids in output");
    seen.values().map(|c| c - 1).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_in_key_order_dead_letters_bad_events_and_commits_everything() {
    let cluster = MockCluster::new(3).unwrap();
    let brokers = cluster.bootstrap_servers();
    let s = setup(&cluster);
    let n = 20_000;
    let bad = [5, 777, 19_999];
    produce(&brokers, &s.input, events(0..n, &bad));

    let out = Collector::start(&brokers, &s.output, PARTITIONS);
    let dlq = Collector::start(&brokers, &s.dlq, PARTITIONS);
    let (token, handle) = start(&pipeline_yaml(&brokers, &s));
    wait_count(
        "outputs",
        &out,
        (n as usize) - bad.len(),
        Duration::from_secs(120),
    )
    .await;
    wait_count("dead letters", &dlq, bad.len(), Duration::from_secs(60)).await;
    token.cancel();
    handle.await.unwrap().expect("pipeline ends cleanly");

    let dups = check_output(&out.records(), n, &bad, &s.input);
    assert_eq!(dups, 0, "no failure, so no redelivery");
    let letters = dlq.records();
    assert_eq!(letters.len(), bad.len());
    for l in &letters {
        assert_eq!(l.header("sluice-error-step"), Some("decode"));
        assert!(
            l.header("sluice-error-reason")
                .unwrap()
                .starts_with("malformed JSON")
        );
        assert!(
            l.header("sluice-error-source")
                .unwrap()
                .starts_with(&format!("kafka:{}/", s.input))
        );
        assert_eq!(l.header("trace"), Some("t"), "original headers kept");
        assert!(
            String::from_utf8_lossy(&l.payload).contains("oops"),
            "original payload kept"
        );
    }
    // Everything done was committed on shutdown.
    assert_all_committed(&brokers, &s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_going_down_and_up_loses_nothing() {
    let cluster = MockCluster::new(3).unwrap();
    let brokers = cluster.bootstrap_servers();
    let s = setup(&cluster);
    let n = 30_000;
    produce(&brokers, &s.input, events(0..n, &[]));
    let out = Collector::start(&brokers, &s.output, PARTITIONS);
    let (token, handle) = start(&pipeline_yaml(&brokers, &s));
    wait_count("first outputs", &out, 3_000, Duration::from_secs(60)).await;
    cluster.broker_down(2).unwrap();
    // Keep it down while more is produced: new events queue up behind the outage.
    let (b, i) = (brokers.clone(), s.input.clone());
    let more = tokio::task::spawn_blocking(move || produce(&b, &i, events(n..n + 5_000, &[])));
    wait_count(
        "outputs during the outage",
        &out,
        6_000,
        Duration::from_secs(60),
    )
    .await;
    cluster.broker_up(2).unwrap();
    more.await.unwrap();
    wait_count(
        "every output",
        &out,
        (n + 5_000) as usize,
        Duration::from_secs(180),
    )
    .await;
    token.cancel();
    handle.await.unwrap().expect("pipeline ends cleanly");
    let dups = check_output(&out.records(), n + 5_000, &[], &s.input);
    println!("duplicates after broker down/up: {dups}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_errors_are_retried_and_a_leader_change_loses_nothing() {
    let cluster = MockCluster::new(3).unwrap();
    let brokers = cluster.bootstrap_servers();
    let s = setup(&cluster);
    let n = 20_000;
    produce(&brokers, &s.input, events(0..n, &[]));
    // Retriable produce errors for the first requests of the pipeline's producer.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        ]
        .repeat(5),
    );
    let out = Collector::start(&brokers, &s.output, PARTITIONS);
    let (token, handle) = start(&pipeline_yaml(&brokers, &s));
    wait_count("first outputs", &out, 2_000, Duration::from_secs(60)).await;
    for p in 0..PARTITIONS {
        cluster
            .partition_leader(&s.output, p, Some((p + 1) % 3 + 1))
            .unwrap();
        cluster
            .partition_leader(&s.input, p, Some((p + 2) % 3 + 1))
            .unwrap();
    }
    wait_count("every output", &out, n as usize, Duration::from_secs(180)).await;
    token.cancel();
    handle.await.unwrap().expect("pipeline ends cleanly");
    let dups = check_output(&out.records(), n, &[], &s.input);
    println!("duplicates after produce errors and leader change: {dups}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_the_committed_offsets() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let s = setup(&cluster);
    let n = 20_000;
    // The first run sees half of the input (it may or may not finish that half before it is
    // stopped); the other half arrives while no worker runs.
    produce(&brokers, &s.input, events(0..n / 2, &[]));
    let out = Collector::start(&brokers, &s.output, PARTITIONS);
    let (token, handle) = start(&pipeline_yaml(&brokers, &s));
    wait_count("some outputs", &out, 5_000, Duration::from_secs(60)).await;
    token.cancel();
    handle.await.unwrap().expect("first run ends cleanly");
    let after_first = out.count();
    assert!(
        (5_000..=n as usize / 2).contains(&after_first),
        "the first run delivered {after_first}"
    );
    produce(&brokers, &s.input, events(n / 2..n, &[]));

    let (token, handle) = start(&pipeline_yaml(&brokers, &s));
    wait_count("every output", &out, n as usize, Duration::from_secs(120)).await;
    token.cancel();
    handle.await.unwrap().expect("second run ends cleanly");
    let dups = check_output(&out.records(), n, &[], &s.input);
    assert_eq!(
        dups, 0,
        "a graceful stop commits everything delivered, so nothing is read twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_output_rejects_is_dead_lettered_and_the_rest_flows() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let s = setup(&cluster);
    // Event 3 is too large for the output producer (message.max.bytes below), not for the DLQ.
    let big = format!("{{\"id\":3,\"n\":3,\"blob\":\"{}\"}}", "x".repeat(4000));
    let mut records = events(0..10, &[]);
    records[3].1 = big.clone().into_bytes();
    produce(&brokers, &s.input, records);
    let yaml = pipeline_yaml(&brokers, &s)
        .replace(
            "  - jq: '{id, doubled: (.n * 2)}'",
            "  - jq: '. + {doubled: (.n * 2)} | del(.n)'",
        )
        .replace(
            "    linger: 1ms\n",
            "    linger: 1ms\n    options:\n      message.max.bytes: \"2000\"\n",
        );
    let out = Collector::start(&brokers, &s.output, PARTITIONS);
    let dlq = Collector::start(&brokers, &s.dlq, PARTITIONS);
    let (token, handle) = start(&yaml);
    wait_count("outputs", &out, 9, Duration::from_secs(60)).await;
    wait_count("the dead letter", &dlq, 1, Duration::from_secs(60)).await;
    token.cancel();
    handle.await.unwrap().expect("pipeline ends cleanly");

    let mut ids = out.ids();
    ids.sort();
    assert_eq!(ids, vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
    let letter = &dlq.records()[0];
    assert_eq!(letter.header("sluice-error-step"), Some("output"));
    assert!(
        letter
            .header("sluice-error-reason")
            .unwrap()
            .contains("too large"),
        "{letter:?}"
    );
    assert_eq!(letter.json()["id"], 3, "the event as it was to be written");
    assert_eq!(letter.json()["doubled"], 6);
    // Its input counts as handled: everything is committed.
    assert_all_committed(&brokers, &s).await;
}

/// Waits until readiness is `ready`; returns the reasons given when it is not.
async fn wait_ready(health: &Health, ready: bool) -> Vec<String> {
    try_eventually(Duration::from_secs(60), async || {
        let problems = health.problems();
        (problems.is_empty() == ready).then_some(problems)
    })
    .await
    .unwrap_or_else(|| panic!("readiness did not become {ready}: {:?}", health.problems()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_cluster_and_an_outage_loses_nothing() {
    let cluster = MockCluster::new(3).unwrap();
    let brokers = cluster.bootstrap_servers();
    let s = setup(&cluster);
    let n = 20_000;
    produce(&brokers, &s.input, events(0..n, &[]));
    let out = Collector::start(&brokers, &s.output, PARTITIONS);
    // Statistics (which carry the broker connection states) every 200 ms instead of 5 s.
    let stats = "statistics.interval.ms: \"200\"";
    let yaml = pipeline_yaml(&brokers, &s)
        .replace(
            "heartbeat.interval.ms: \"500\"",
            &format!("heartbeat.interval.ms: \"500\"\n      {stats}"),
        )
        .replace(
            "linger: 1ms",
            &format!("linger: 1ms\n    options:\n      {stats}"),
        )
        .replace(
            &format!("topic: {}\n", s.dlq),
            &format!("topic: {}\n      options:\n        {stats}\n", s.dlq),
        );
    let (token, handle, health) = start_with_health(&yaml);
    wait_ready(&health, true).await;
    wait_count("first outputs", &out, 2_000, Duration::from_secs(60)).await;

    for b in 1..=3 {
        cluster.broker_down(b).unwrap();
    }
    // Each client (consumer, producer, dead-letter producer) notices on its own.
    let all_down = [
        "mock: kafka input not connected",
        "mock: kafka output not connected",
        "mock: kafka dead-letter output not connected",
    ];
    let mut expected = all_down.map(String::from).to_vec();
    expected.sort();
    let sorted_problems = || {
        let mut problems = health.problems();
        problems.sort();
        problems
    };
    let noticed = try_eventually(Duration::from_secs(60), async || {
        (sorted_problems() == expected).then_some(())
    })
    .await;
    assert!(
        noticed.is_some(),
        "not every client noticed the outage: {:?}",
        sorted_problems()
    );
    for b in 1..=3 {
        cluster.broker_up(b).unwrap();
    }
    wait_ready(&health, true).await;

    wait_count("every output", &out, n as usize, Duration::from_secs(180)).await;
    token.cancel();
    handle.await.unwrap().expect("pipeline ends cleanly");
    let dups = check_output(&out.records(), n, &[], &s.input);
    println!("duplicates after the cluster went down and up: {dups}");
    assert_all_committed(&brokers, &s).await;
}

/// The process-wide metrics recorder, installed once for the tests that read metrics.
fn metrics() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| sluice::observe::server::install_recorder().unwrap())
}

fn gauge(name: &str, pipeline: &str) -> f64 {
    testkit::metric_values(&metrics().render(), name, &[("pipeline", pipeline)])
        .first()
        .map_or(0.0, |v| v.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_cluster_down_holds_the_input_back_and_loses_nothing() {
    metrics();
    // Input (and dead letters) on one cluster, output on another that goes down.
    let a = MockCluster::new(1).unwrap();
    let b = MockCluster::new(1).unwrap();
    let (brokers_a, brokers_b) = (a.bootstrap_servers(), b.bootstrap_servers());
    let s = Setup::names();
    for t in [&s.input, &s.dlq] {
        a.create_topic(t, PARTITIONS, 1).unwrap();
    }
    b.create_topic(&s.output, PARTITIONS, 1).unwrap();
    let (first, n) = (5_000, 100_000);
    produce(&brokers_a, &s.input, events(0..first, &[]));
    let out = Collector::start(&brokers_b, &s.output, PARTITIONS);
    let budget = 256 * 1024;
    let yaml = pipeline_yaml(&brokers_a, &s)
        .replace("name: mock", "name: output-outage")
        .replace(
            &format!("    brokers: {brokers_a}\n    topic: {}", s.output),
            &format!(
                "    brokers: {brokers_b}\n    topic: {}\n    options:\n      statistics.interval.ms: \"200\"",
                s.output
            ),
        )
        .replace(
            "  shutdown_timeout: 20s\n",
            &format!("  shutdown_timeout: 20s\n  max_in_flight_bytes: {budget}\n  max_event_bytes: 64KiB\n"),
        );
    let (token, handle, health) = start_with_health(&yaml);
    wait_count(
        "first outputs",
        &out,
        first as usize,
        Duration::from_secs(60),
    )
    .await;
    wait_ready(&health, true).await;

    b.broker_down(1).unwrap();
    let problems = wait_ready(&health, false).await;
    assert_eq!(problems, ["output-outage: kafka output not connected"]);
    // The rest of the input arrives while the output is down.
    produce(&brokers_a, &s.input, events(first..n, &[]));
    // While the output is down, reading stops at the in-flight byte budget: the rest of the
    // input waits in Kafka. Watch it for a while (up to 3 s; a sampling interval).
    let received = || {
        testkit::metric_values(
            &metrics().render(),
            "sluice_events_received_total",
            &[("pipeline", "output-outage")],
        )[0]
        .1
    };
    // While the output is down, what is read stays within the in-flight byte budget. Sampled
    // for 3 s (a sampling interval, not a synchronisation).
    let mut most_bytes = 0.0f64;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        most_bytes = most_bytes.max(gauge("sluice_bytes_in_flight", "output-outage"));
    }
    let read = received();
    assert!(
        most_bytes <= (budget + 200 * (64 + sluice::event::EVENT_OVERHEAD)) as f64,
        "{most_bytes} bytes in flight"
    );
    assert!(read < n as f64, "read all {n} during the outage");
    // Once fetching has paused, nothing more is read while the output stays down (sampled
    // for 2 s: reading used to trickle on a record at a time).
    eventually("fetching paused", Duration::from_secs(30), async || {
        (gauge("sluice_kafka_fetch_paused", "output-outage") == 1.0).then_some(())
    })
    .await;
    let paused_at = received();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        most_bytes = most_bytes.max(gauge("sluice_bytes_in_flight", "output-outage"));
    }
    assert_eq!(received(), paused_at, "read on while paused");
    let received = paused_at;

    b.broker_up(1).unwrap();
    wait_ready(&health, true).await;
    wait_count("every output", &out, n as usize, Duration::from_secs(180)).await;
    token.cancel();
    handle.await.unwrap().expect("pipeline ends cleanly");
    let dups = check_output(&out.records(), n, &[], &s.input);
    println!(
        "output cluster down: at most {most_bytes} bytes in flight, {received} events read by then, {dups} duplicates"
    );
    assert_all_committed(&brokers_a, &s).await;
}

/// The group's committed offsets of the input topic, -1 where it committed none (as Kafka's
/// OffsetFetch answers), to compare with end offsets.
async fn committed_now(brokers: &str, s: &Setup, partitions: i32) -> Vec<i64> {
    let (b, g, i) = (brokers.to_string(), s.group.clone(), s.input.clone());
    let offsets = tokio::task::spawn_blocking(move || committed(&b, &g, &i, partitions))
        .await
        .unwrap();
    offsets.into_iter().map(|o| o.unwrap_or(-1)).collect()
}

/// Waits until the group has committed `offsets` on the input's partitions.
async fn wait_committed(brokers: &str, s: &Setup, offsets: &[i64]) {
    let what = format!("committed offsets {offsets:?}");
    eventually(&what, Duration::from_secs(60), || async {
        (committed_now(brokers, s, offsets.len() as i32).await == offsets).then_some(())
    })
    .await;
}

/// A dead letter larger than the dead-letter producer takes is cut to fit and delivered, with
/// headers saying so: it no longer stops the pipeline, and a restart reads nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_too_large_for_its_output_is_cut_to_fit_and_delivered() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let s = Setup::names();
    for t in [&s.input, &s.output, &s.dlq] {
        cluster.create_topic(t, 1, 1).unwrap();
    }
    // Event 5 is malformed and over 2,000 bytes: too large for the dead-letter producer below.
    let bad = format!("{{\"id\": 5, oops {}", "x".repeat(2000)).into_bytes();
    let mut records = events(0..10, &[]);
    records[5].1 = bad.clone();
    produce(&brokers, &s.input, records);
    let yaml = pipeline_yaml(&brokers, &s).replace(
        &format!("      topic: {}\n", s.dlq),
        &format!(
            "      topic: {}\n      options:\n        message.max.bytes: \"1500\"\n",
            s.dlq
        ),
    );
    let out = Collector::start(&brokers, &s.output, 1);
    let dlq = Collector::start(&brokers, &s.dlq, 1);
    for run in 0..2 {
        let (token, handle) = start(&yaml);
        if run == 0 {
            wait_count("the dead letter", &dlq, 1, Duration::from_secs(60)).await;
            wait_count("outputs", &out, 9, Duration::from_secs(60)).await;
        }
        wait_committed(&brokers, &s, &[10]).await;
        token.cancel();
        handle.await.unwrap().expect("pipeline ends cleanly");
    }
    assert_eq!(
        dlq.count(),
        1,
        "dead-lettered once: the restart read nothing again"
    );
    let letter = &dlq.records()[0];
    assert_eq!(letter.header("sluice-error-step"), Some("decode"));
    assert_eq!(letter.header("sluice-error-truncated"), Some("true"));
    assert_eq!(
        letter.header("sluice-error-original-size"),
        Some(bad.len().to_string().as_str())
    );
    assert!(
        letter.payload.len() < 1500 && letter.payload.len() > 500,
        "{}",
        letter.payload.len()
    );
    assert!(
        bad.starts_with(&letter.payload),
        "the payload is the start of the event's"
    );
    assert_eq!(letter.key.as_deref(), Some("k5"), "the key is kept");
    assert_eq!(letter.header("trace"), Some("t"), "the headers are kept");
    let ids = out.ids();
    assert_eq!(ids, vec![0, 1, 2, 3, 4, 6, 7, 8, 9]);
}

/// A dead-letter output that refuses every record for a reason that is not the record's (not
/// authorised) stops the pipeline with the input unacknowledged; once it works again, the next
/// run dead-letters the event and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_output_that_refuses_stops_the_pipeline_and_keeps_the_input() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let dead_letters = MockCluster::new(1).unwrap();
    let dlq_brokers = dead_letters.bootstrap_servers();
    let s = Setup::names();
    for t in [&s.input, &s.output] {
        cluster.create_topic(t, 1, 1).unwrap();
    }
    dead_letters.create_topic(&s.dlq, 1, 1).unwrap();
    let bad = b"{\"id\": 5, oops".to_vec();
    let mut records = events(0..10, &[]);
    records[5].1 = bad.clone();
    produce(&brokers, &s.input, records);
    let yaml = pipeline_yaml(&brokers, &s).replace(
        &format!("      brokers: {brokers}\n      topic: {}\n", s.dlq),
        &format!("      brokers: {dlq_brokers}\n      topic: {}\n", s.dlq),
    );
    assert!(yaml.contains(&dlq_brokers));
    dead_letters.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 50],
    );
    let (_token, handle) = start(&yaml);
    let errors = handle
        .await
        .unwrap()
        .expect_err("the pipeline stops when the dead-letter output refuses");
    let text = errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    assert!(text.contains("the dead-letter output failed"), "{text}");
    // The failed input (offset 5) is not acknowledged.
    let done = committed_now(&brokers, &s, 1).await;
    assert!(done[0] <= 5, "committed {done:?} past the refused event");

    // With a dead-letter output that works, the next run dead-letters it and goes on.
    dead_letters.clear_request_errors(RDKafkaApiKey::Produce);
    let out = Collector::start(&brokers, &s.output, 1);
    let dlq = Collector::start(&dlq_brokers, &s.dlq, 1);
    let (token, handle) = start(&yaml);
    wait_count("the dead letter", &dlq, 1, Duration::from_secs(60)).await;
    wait_count("outputs", &out, 9, Duration::from_secs(60)).await;
    token.cancel();
    handle.await.unwrap().expect("pipeline ends cleanly");
    let letter = &dlq.records()[0];
    assert_eq!(letter.header("sluice-error-step"), Some("decode"));
    assert_eq!(letter.payload, bad);
    let mut ids = out.ids();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, vec![0, 1, 2, 3, 4, 6, 7, 8, 9]);
    assert_eq!(committed_now(&brokers, &s, 1).await, vec![10]);
}

/// Under `errors: stop` every record before the failing one is delivered in order and
/// committed, nothing after it is delivered, and the committed offset is the failing record's,
/// so a restart stops at it again: batches of 1 and 500, the failure at the start, middle and
/// end of a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_stop_commits_up_to_the_failing_record_and_delivers_nothing_after() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let n = 1_200;
    // With batches of 1 every failure is at the start and the end of its batch.
    for (batch_size, fail_at) in [
        (1, 0),
        (1, 600),
        (500, 0),
        (500, 250),
        (500, 499),
        (500, 500),
        (500, 1_199),
    ] {
        let s = Setup::names();
        for t in [&s.input, &s.output] {
            cluster.create_topic(t, 1, 1).unwrap();
        }
        produce(&brokers, &s.input, events(0..n, &[fail_at]));
        let yaml = pipeline_yaml(&brokers, &s)
            .replace(
                &format!(
                    "errors:\n  output:\n    kafka:\n      brokers: {brokers}\n      topic: {}\n",
                    s.dlq
                ),
                "errors: stop\n",
            )
            .replace(
                "  batch_size: 200\n",
                &format!("  batch_size: {batch_size}\n"),
            );
        assert!(yaml.contains("errors: stop"));
        let out = Collector::start(&brokers, &s.output, 1);
        let case = format!("batch {batch_size}, failure at {fail_at}");
        // A second run reads the failing record again and stops at it again.
        let runs = if batch_size == 1 { 1 } else { 2 };
        for run in 0..runs {
            let (_token, handle) = start(&yaml);
            let errors = handle.await.unwrap().expect_err("errors: stop stops");
            assert!(
                errors[0]
                    .to_string()
                    .contains(&format!("kafka:{}/0@{fail_at}", s.input)),
                "{case}, run {run}: {}",
                errors[0]
            );
            assert_eq!(
                committed_now(&brokers, &s, 1).await,
                vec![fail_at as i64],
                "{case}, run {run}: committed up to the failing record"
            );
        }
        let (b, o) = (brokers.clone(), s.output.clone());
        let written = tokio::task::spawn_blocking(move || end_offsets(&b, &o, 1))
            .await
            .unwrap();
        assert_eq!(written, vec![fail_at as i64], "{case}: records written");
        wait_count(&case, &out, fail_at as usize, Duration::from_secs(60)).await;
        let ids = out.ids();
        // The idempotent producer delivers each record of a run once; the second run
        // delivers nothing new before the failure, as it starts at it.
        assert!(
            ids == (0..fail_at).collect::<Vec<_>>(),
            "{case}: {} outputs, first {:?}",
            ids.len(),
            &ids[..ids.len().min(5)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_budget_smaller_than_a_batch_still_delivers_everything() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let s = setup(&cluster);
    let n = 2_000;
    produce(&brokers, &s.input, events(0..n, &[]));
    let out = Collector::start(&brokers, &s.output, PARTITIONS);
    // A batch of 200 events of about 20 bytes is over the budget on its own.
    let yaml = pipeline_yaml(&brokers, &s).replace(
        "  shutdown_timeout: 20s\n",
        "  shutdown_timeout: 20s\n  max_in_flight_bytes: 1KiB\n  max_event_bytes: 512\n",
    );
    let (token, handle) = start(&yaml);
    wait_count("every output", &out, n as usize, Duration::from_secs(120)).await;
    token.cancel();
    handle.await.unwrap().expect("pipeline ends cleanly");
    check_output(&out.records(), n, &[], &s.input);
    assert_all_committed(&brokers, &s).await;
}

/// A 1.5 MB record is over `max_event_bytes`, and its dead letter over what the JetStream
/// dead-letter output's server takes (1 MiB): the dead letter is cut to fit and stored, the
/// input committed, and a restart does not meet it again. (Before, the refused dead letter
/// stopped the pipeline at every start.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_record_is_dead_lettered_to_jetstream_cut_to_fit_and_not_met_again() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let s = Setup::names();
    for t in [&s.input, &s.output] {
        cluster.create_topic(t, 1, 1).unwrap();
    }
    let server = testkit::nats::NatsServer::start();
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let (dead, dead_subject) = (unique("DEAD").replace('-', "_"), unique("dead"));
    testkit::nats::create_stream(&js, &dead, std::slice::from_ref(&dead_subject)).await;

    let huge = format!("{{\"id\":1,\"blob\":\"{}\"}}", "y".repeat(1_500_000));
    {
        let producer: BaseProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("message.max.bytes", "5000000")
            .create()
            .unwrap();
        for payload in ["{\"id\":0}", huge.as_str(), "{\"id\":2}"] {
            producer
                .send(BaseRecord::<[u8], [u8]>::to(&s.input).payload(payload.as_bytes()))
                .map_err(|(e, _)| e)
                .unwrap();
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    }
    let yaml = KafkaPipeline::new(&brokers, &s.input, &s.group, &s.output)
        .name("huge")
        .input("commit_interval: 200ms")
        .transforms("- jq: '{id}'")
        .errors(&format!(
            "output:\n  jetstream:\n    url: {}\n    subject: {dead_subject}",
            server.url()
        ))
        .yaml();
    let out = Collector::start(&brokers, &s.output, 1);
    for _ in 0..2 {
        let (token, handle) = start(&yaml);
        wait_committed(&brokers, &s, &[3]).await;
        token.cancel();
        handle.await.unwrap().expect("pipeline ends cleanly");
    }
    wait_count("outputs", &out, 2, Duration::from_secs(60)).await;
    let ids = out.ids();
    assert_eq!(ids, [0, 2]);
    let letters = testkit::nats::read_stream(&js, &dead).await;
    assert_eq!(
        letters.len(),
        1,
        "dead-lettered once, not again after the restart"
    );
    let letter = &letters[0];
    let header = |name: &str| {
        letter
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    assert_eq!(header("sluice-error-step").as_deref(), Some("limits"));
    assert_eq!(header("sluice-error-truncated").as_deref(), Some("true"));
    assert_eq!(
        header("sluice-error-original-size"),
        Some(huge.len().to_string())
    );
    let max_payload = js.client().server_info().max_payload;
    assert!(
        letter.payload.len() < max_payload && letter.payload.len() > max_payload - 4096,
        "{} bytes kept of a server maximum of {max_payload}",
        letter.payload.len()
    );
    assert!(huge.as_bytes().starts_with(&letter.payload));
}
