//! The metrics endpoint of a running Kafka pipeline on Apache Kafka: counters match what went
//! through, consumer lag per partition is never negative and drains to 0, health endpoints answer;
//! summed over replicas, the lag is the broker's own view through rebalances.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use testkit::kafka::{Collector, KafkaPipeline, produce};
use testkit::kraft::Broker;
use testkit::{
    free_port, http_get as get, metric_values as values, pipeline, sluice, unique, wait_exit,
    wait_for,
};

/// Produces events `{"id": i}` keyed `k{i}` for i in 0..`n` to `topic`.
fn produce_ids(brokers: &str, topic: &str, n: u64) {
    let records = (0..n).map(|i| {
        (
            Some(format!("k{i}")),
            format!("{{\"id\":{i}}}").into_bytes(),
            vec![],
        )
    });
    produce(brokers, topic, records);
}

#[test]
fn counters_match_and_lag_drains_to_zero() {
    let broker = Broker::start();
    let brokers = broker.address();
    let (input, output, group) = (unique("in"), unique("out"), unique("group"));
    broker.create_topics(&[(&input, 3), (&output, 3)]);
    let n = 9_000u64;
    produce_ids(&brokers, &input, n);

    let dir = tempfile::tempdir().unwrap();
    let file = KafkaPipeline::new(&brokers, &input, &group, &output)
        .input("commit_interval: 100ms")
        .option("session.timeout.ms", "6000")
        .option("statistics.interval.ms", "200")
        .transforms("- filter: '.id % 3 != 0'")
        .write(dir.path(), "lagged");
    let port = free_port();
    let out = Collector::start(&brokers, &output, 3);
    let mut child = sluice!()
        .args(["run", "--metrics-addr", &format!("127.0.0.1:{port}")])
        .arg(&file)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let (live, _) = wait_for("the live endpoint", Duration::from_secs(30), || {
        get(port, "/health/live")
    });
    assert_eq!(live, 200);
    let (ready, _) = wait_for("readiness", Duration::from_secs(30), || {
        get(port, "/health/ready").filter(|(s, _)| *s == 200)
    });
    assert_eq!(ready, 200);

    let kept = (0..n).filter(|i| i % 3 != 0).count();
    let labels = [("pipeline", "lagged"), ("topic", input.as_str())];
    // Every scrape during the run: lag never negative.
    let body = wait_for(
        "every event delivered and lag 0 on all partitions",
        Duration::from_secs(120),
        || {
            let (_, body) = get(port, "/metrics")?;
            let lag = values(&body, "sluice_kafka_consumer_lag", &labels);
            assert!(lag.iter().all(|(_, v)| *v >= 0.0), "negative lag: {lag:?}");
            let pipeline = [("pipeline", "lagged")];
            let in_flight = values(&body, "sluice_events_in_flight", &pipeline);
            let timed = values(&body, "sluice_event_latency_seconds_count", &pipeline);
            (out.count() == kept
                && lag.len() == 3
                && lag.iter().all(|(_, v)| *v == 0.0)
                && in_flight.first().is_some_and(|(_, v)| *v == 0.0)
                && timed.first().is_some_and(|(_, v)| *v == n as f64))
            .then_some(body)
        },
    );
    let one = |m: &str| {
        values(&body, m, &[("pipeline", "lagged")])
            .first()
            .map(|(_, v)| *v)
    };
    assert_eq!(one("sluice_events_received_total"), Some(n as f64));
    assert_eq!(one("sluice_events_sent_total"), Some(kept as f64));
    assert_eq!(
        one("sluice_events_filtered_total"),
        Some((n as usize - kept) as f64)
    );

    // Every input went through one batch into the transforms; the kept ones came out in batches.
    let batched = |stage: &str| {
        values(
            &body,
            "sluice_batch_size_sum",
            &[("pipeline", "lagged"), ("stage", stage)],
        )
        .first()
        .map(|(_, v)| *v)
    };
    assert_eq!(batched("input"), Some(n as f64));
    assert_eq!(batched("output"), Some(kept as f64));
    assert!(
        body.contains("sluice_event_latency_seconds_bucket{pipeline=\"lagged\",le=\"0.0005\"}"),
        "latency histogram buckets"
    );
    // Every metric exported says what it is.
    let types: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(types.len() >= 15, "{types:?}");
    for name in types {
        assert!(
            body.lines()
                .any(|l| l.starts_with(&format!("# HELP {name} ")) && l.len() > name.len() + 20),
            "no # HELP for {name}"
        );
    }

    testkit::signal(&child, "TERM");
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    assert_eq!(out.count(), kept, "nothing extra after shutdown");
}

/// An HTTP endpoint that takes the first `ok` requests and answers 503 to every later one: an
/// output that delivers a little, then stalls.
fn stalling_endpoint(ok: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let count = count.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                let mut got = Vec::new();
                // One request per connection is enough: answer with `connection: close`.
                loop {
                    let Ok(n) = stream.read(&mut buf) else { return };
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + length {
                        break;
                    }
                }
                let status = if count.fetch_add(1, Ordering::SeqCst) < ok {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let _ = stream.write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                );
            });
        }
    });
    (port, served)
}

/// The broker's view of a group's lag on each partition of a topic: high watermark less the
/// committed offset (the low watermark when nothing is committed: the group starts there).
struct BrokerView {
    client: BaseConsumer,
    topic: String,
    partitions: i32,
}

impl BrokerView {
    fn new(brokers: &str, group: &str, topic: &str, partitions: i32) -> BrokerView {
        let client = testkit::kafka::client(brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        BrokerView {
            client,
            topic: topic.to_string(),
            partitions,
        }
    }

    fn lag(&self) -> BTreeMap<i32, i64> {
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.partitions {
            tpl.add_partition(&self.topic, p);
        }
        let committed = self
            .client
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap();
        (0..self.partitions)
            .map(|p| {
                let (low, high) = self
                    .client
                    .fetch_watermarks(&self.topic, p, Duration::from_secs(10))
                    .unwrap();
                let from = match committed.find_partition(&self.topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    _ => low,
                };
                (p, high - from)
            })
            .collect()
    }
}

/// A replica's `sluice_kafka_consumer_lag` of one partition: (replica, partition, lag).
type Reported = (usize, i32, f64);

/// `sluice_kafka_consumer_lag` of `topic` as each replica (by metrics port) reports it.
fn reported(ports: &[u16], topic: &str) -> Vec<Reported> {
    let mut all = Vec::new();
    for (replica, port) in ports.iter().enumerate() {
        let Some((_, body)) = get(*port, "/metrics") else {
            continue;
        };
        for (series, value) in values(&body, "sluice_kafka_consumer_lag", &[("topic", topic)]) {
            let partition = series
                .split("partition=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .and_then(|p| p.parse().ok())
                .unwrap();
            all.push((replica, partition, value));
        }
    }
    all
}

/// Scrapes every replica between two reads of the broker's view. When the broker's view did not
/// change meanwhile, returns it with what the replicas report; None otherwise (nothing to compare
/// with). Whatever the broker's view did, a replica reporting 0 for a partition the broker still
/// shows lag on (read after the scrape: the lag only falls) is an error.
fn compare(
    view: &BrokerView,
    ports: &[u16],
    topic: &str,
) -> Option<(BTreeMap<i32, i64>, Vec<Reported>)> {
    let before = view.lag();
    let reported = reported(ports, topic);
    let after = view.lag();
    for (replica, partition, value) in &reported {
        assert!(
            *value > 0.0 || after[partition] == 0,
            "replica {replica} reports lag 0 on partition {partition} while the broker shows {}",
            after[partition]
        );
    }
    (before == after).then_some((after, reported))
}

/// Waits until the replicas' lag, summed per partition, is the broker's view on every
/// partition, with each partition reported by one replica only; returns which replica owns
/// which partition.
fn wait_agreement(
    what: &str,
    view: &BrokerView,
    ports: &[u16],
    topic: &str,
) -> BTreeMap<i32, usize> {
    let mut last = String::new();
    testkit::try_wait_for(Duration::from_secs(120), || {
        let (broker, reported) = compare(view, ports, topic)?;
        let mut owners: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        let mut summed: BTreeMap<i32, i64> = BTreeMap::new();
        for (replica, partition, value) in &reported {
            owners.entry(*partition).or_default().push(*replica);
            *summed.entry(*partition).or_default() += *value as i64;
        }
        last = format!("broker {broker:?}, replicas {reported:?}");
        (summed == broker && owners.values().all(|o| o.len() == 1))
            .then(|| owners.into_iter().map(|(p, o)| (p, o[0])).collect())
    })
    .unwrap_or_else(|| panic!("{what}: the summed lag never matched the broker's: {last}"))
}

#[test]
fn summed_over_replicas_the_lag_is_the_brokers_through_rebalances() {
    let broker = Broker::start();
    let brokers = broker.address();
    let (input, group) = (unique("in"), unique("group"));
    let partitions = 4;
    broker.create_topics(&[(&input, partitions)]);
    let n = 4_000u64;
    // The producer pauses from here on: the high watermarks stay put.
    produce_ids(&brokers, &input, n);
    // The output takes twenty requests (of at most 10 events: `batch_size`), then stalls: the
    // committed offsets stop short of the end, and stay put too.
    let (endpoint, served) = stalling_endpoint(20);
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "replicated",
        &format!(
            "\
input:
  kafka:
    brokers: {brokers}
    topics: [{input}]
    group_id: {group}
    commit_interval: 200ms
    lag_interval: 500ms
    options:
      session.timeout.ms: \"6000\"
      statistics.interval.ms: \"200\"
output:
  http:
    url: http://127.0.0.1:{endpoint}/events
    batch: {{max_events: 100}}
errors: drop
settings:
  batch_size: 10
  shutdown_timeout: 3s
  retry: {{initial_backoff: 50ms, max_backoff: 200ms}}
"
        ),
    );
    let replica = |port: u16| {
        testkit::Process::spawn(
            sluice!()
                .args(["run", "--metrics-addr", &format!("127.0.0.1:{port}")])
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    };
    let view = BrokerView::new(&brokers, &group, &input, partitions);
    let (port_a, port_b) = (free_port(), free_port());

    let mut a = replica(port_a);
    wait_for("the output to stall", Duration::from_secs(60), || {
        (served.load(Ordering::SeqCst) > 20).then_some(())
    });
    wait_for(
        "the delivered events committed",
        Duration::from_secs(60),
        || (view.lag().values().sum::<i64>() < n as i64).then_some(()),
    );
    let owners = wait_agreement("one replica", &view, &[port_a, port_b], &input);
    assert!(owners.values().all(|r| *r == 0), "{owners:?}");
    assert_eq!(owners.len(), partitions as usize);

    // Scale up: the partitions are shared, each reported by its new owner only.
    let mut b = replica(port_b);
    let owners = testkit::try_wait_for(Duration::from_secs(120), || {
        let owners = wait_agreement("two replicas", &view, &[port_a, port_b], &input);
        (owners.len() == partitions as usize
            && owners.values().any(|r| *r == 0)
            && owners.values().any(|r| *r == 1))
        .then_some(owners)
    })
    .expect("both replicas own partitions");
    assert_eq!(owners.len(), partitions as usize);

    // Scale down: the remaining replica reports every partition again.
    testkit::signal(&b.0, "TERM");
    let _ = wait_exit(&mut b.0, Duration::from_secs(60));
    let owners = wait_agreement("back to one replica", &view, &[port_a], &input);
    assert_eq!(owners.len(), partitions as usize);
    assert!(
        view.lag().values().sum::<i64>() > 0,
        "the backlog is still there"
    );

    testkit::signal(&a.0, "TERM");
    let _ = wait_exit(&mut a.0, Duration::from_secs(60));
}
