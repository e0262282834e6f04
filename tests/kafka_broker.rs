//! Kafka end to end against Apache Kafka (one KRaft node of the test's own): one worker moving
//! and dead-lettering events; consumer-group scaling with `kill -9` of the group leader, a
//! replacement joining, and graceful scale-up and scale-down; broker restarts mid-stream.
//!
//! Each test starts its own broker; topic and group names are unique per test. The tests run
//! one at a time: each one is CPU-bound (broker, workers, clients) and the timings of group
//! joins should not depend on what the other tests do.
//!
//! Duplicates are classified from the workers' logs (see `duplicates`): the only ones at-least-once
//! allows are those a killed worker had delivered but not committed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use testkit::kafka::{KafkaPipeline, Record, TopicReader, committed};
use testkit::kraft::Broker;
use testkit::process::Ownership;
use testkit::{Worker, sluice, try_wait_for, unique, wait_for};

/// Serialises the tests of this file.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A kafka-to-kafka pipeline file: reshape to `{id, worker, p, o}` (the worker's name comes from
/// the `WORKER` environment variable; `p` and `o` are the input partition and offset), keep the
/// key, dead-letter failures to `dlq`. `debug: cgrp` puts librdkafka's group protocol messages in
/// the worker logs (see `Worker::is_group_leader`).
fn kafka_pipeline(
    dir: &Path,
    broker: &Broker,
    name: &str,
    input: &str,
    group: &str,
    output: &str,
    dlq: &str,
) -> PathBuf {
    KafkaPipeline::new(&broker.address(), input, group, output)
        .name(name)
        .input("start_from: earliest\ncommit_interval: 1s")
        .option("session.timeout.ms", "6000")
        .option("heartbeat.interval.ms", "1000")
        .option("debug", "cgrp")
        .transforms(
            "\
- jq: '{id, worker: \"${WORKER:-none}\", p: $source.partition, o: $source.offset}'
- route:
    key: '$key'",
        )
        .dead_letters(dlq)
        .write(dir, name)
}

/// How many times each id occurs in `records`.
fn id_counts(records: &[Record]) -> HashMap<u64, u64> {
    let mut counts = HashMap::new();
    for r in records {
        *counts.entry(r.id()).or_insert(0) += 1;
    }
    counts
}

/// Duplicated records per input partition (from the `p` and `o` fields the pipeline adds),
/// with the lowest and highest input offset written more than once, for reports.
fn duplicates_by_partition(records: &[Record]) -> BTreeMap<i64, (usize, i64, i64)> {
    let mut seen = HashSet::new();
    let mut dups: BTreeMap<i64, (usize, i64, i64)> = BTreeMap::new();
    for r in records {
        let v = r.json();
        let (p, o) = (v["p"].as_i64().unwrap(), v["o"].as_i64().unwrap());
        if !seen.insert((p, o)) {
            let e = dups.entry(p).or_insert((0, o, o));
            e.0 += 1;
            e.1 = e.1.min(o);
            e.2 = e.2.max(o);
        }
    }
    dups
}

/// Where the duplicates in an output came from.
#[derive(Debug, Default)]
struct Duplicates {
    /// Records beyond the first of their input position.
    total: usize,
    /// Duplicates of which one copy was written by the killed worker: it had not committed
    /// them, so they were read again.
    replayed_after_kill: usize,
    /// Any other duplicate: sluice delivered something twice without a crash (for example a
    /// revocation that did not commit what was delivered).
    unexplained: Vec<(i64, i64, Vec<String>)>,
    /// Partitions two workers held at the same time: (partition, worker, worker).
    overlaps: Vec<(i64, String, String)>,
}

/// Classifies the duplicates of `records` (by input position, from the `p` and `o` fields)
/// using the ownership periods in the logs of the workers that were not killed.
fn duplicates(records: &[Record], workers: &[&Worker], killed: Option<&str>) -> Duplicates {
    let mut writers: HashMap<(i64, i64), Vec<String>> = HashMap::new();
    for r in records {
        let v = r.json();
        let at = (v["p"].as_i64().unwrap(), v["o"].as_i64().unwrap());
        writers
            .entry(at)
            .or_default()
            .push(v["worker"].as_str().unwrap_or("?").to_string());
    }
    let spans: Vec<(String, Vec<Ownership>)> = workers
        .iter()
        .map(|w| (w.name.clone(), w.ownership()))
        .collect();
    let mut overlaps = Vec::new();
    for (i, (a, a_spans)) in spans.iter().enumerate() {
        for (b, b_spans) in &spans[i + 1..] {
            for (p, a_from, a_to) in a_spans {
                for (q, b_from, b_to) in b_spans {
                    let before =
                        |to: &Option<String>, from: &String| to.as_ref().is_some_and(|t| t <= from);
                    if p == q && !before(a_to, b_from) && !before(b_to, a_from) {
                        overlaps.push((*p, a.clone(), b.clone()));
                    }
                }
            }
        }
    }
    let mut d = Duplicates::default();
    for ((p, o), names) in writers {
        if names.len() < 2 {
            continue;
        }
        d.total += names.len() - 1;
        if killed.is_some_and(|k| names.iter().any(|n| n == k)) {
            d.replayed_after_kill += names.len() - 1;
        } else {
            d.unexplained.push((p, o, names));
        }
    }
    overlaps.sort();
    overlaps.dedup();
    d.overlaps = overlaps;
    d.unexplained.sort();
    d
}

/// Output records per worker name, for reports.
fn per_worker(records: &[Record]) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for r in records {
        let w = r.json()["worker"].as_str().unwrap_or("?").to_string();
        *by.entry(w).or_insert(0) += 1;
    }
    by
}

/// Ids missing from `counts` among 0..n (at most a few, for messages).
fn missing(counts: &HashMap<u64, u64>, n: u64) -> Vec<u64> {
    (0..n)
        .filter(|i| !counts.contains_key(i))
        .take(20)
        .collect()
}

/// Polls `reader` until it holds every id 0..n, or panics after `timeout`.
fn wait_for_all_ids(reader: &mut TopicReader, n: u64, timeout: Duration, workers: &[&Worker]) {
    let mut seen = HashSet::new();
    let mut scanned = 0;
    let done = try_wait_for(timeout, || {
        reader.poll(Duration::from_millis(250));
        for r in &reader.records[scanned..] {
            seen.insert(r.id());
        }
        scanned = reader.records.len();
        (seen.len() as u64 >= n).then_some(())
    });
    if done.is_none() {
        let logs: Vec<String> = workers.iter().map(|w| w.report()).collect();
        panic!(
            "timed out after {timeout:?}: {} of {n} ids in the output, first missing: {:?}\n{}",
            seen.len(),
            (0..n)
                .filter(|i| !seen.contains(i))
                .take(20)
                .collect::<Vec<_>>(),
            logs.join("\n")
        );
    }
}

/// Whether a group (from [`Broker::group`]) is stable with `members` members.
fn is_stable(group: &Option<(String, usize)>, members: usize) -> bool {
    group
        .as_ref()
        .is_some_and(|(state, n)| state == "Stable" && *n == members)
}

/// Polls `cond` until it returns a value, or panics after `timeout` with `what`, the progress
/// message from `cond`, and the logs of `workers` and the broker.
fn wait_until<T>(
    what: &str,
    timeout: Duration,
    broker: &Broker,
    workers: &[&Worker],
    mut cond: impl FnMut() -> (Option<T>, String),
) -> T {
    let mut progress = String::new();
    let done = try_wait_for(timeout, || {
        let (done, now) = cond();
        progress = now;
        done
    });
    done.unwrap_or_else(|| {
        let logs: Vec<String> = workers.iter().map(|w| w.report()).collect();
        let broker_log = broker.log_text();
        let tail = &broker_log[broker_log.len().saturating_sub(4000)..];
        panic!(
            "timed out after {timeout:?} waiting for {what}: {progress}\n{}\n--- broker log (tail):\n{tail}",
            logs.join("\n")
        );
    })
}

/// Starts a worker named `name` on `pipeline`, logging to `dir/name.log`, with `WORKER=name`
/// in its environment (the pipeline writes it into every output).
fn start_worker(dir: &Path, name: &str, pipeline: &Path) -> Worker {
    let mut sluice = sluice!();
    sluice
        .env("WORKER", name)
        // With `debug: cgrp` in the pipeline's consumer options, librdkafka's group protocol
        // messages land in the log (see `Worker::is_group_leader`).
        .env("RUST_LOG", "info,librdkafka=debug");
    Worker::start(sluice, pipeline, &dir.join(format!("{name}.log")), &[])
}

/// Sets the flag when dropped.
struct ReleaseOnDrop<'a>(&'a AtomicBool);

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn kafka_to_kafka_end_to_end() {
    let _serial = serial();
    let started = Instant::now();
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let (input, output, dlq, group) = (
        unique("e2e-in"),
        unique("e2e-out"),
        unique("e2e-dlq"),
        unique("e2e-group"),
    );
    broker.create_topics(&[(&input, 3), (&output, 3), (&dlq, 1)]);

    const N: u64 = 10_000;
    let mut producer = broker.producer();
    // key -> malformed payload
    let mut malformed: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..N {
        let payload = format!(
            "{{\"id\":{i},\"name\":\"event {i}\",\"tags\":[\"a\",\"b\"],\"pad\":\"{}\"}}",
            "x".repeat(64)
        );
        producer.send(
            &input,
            Some(&format!("k{}", i % 50)),
            payload.as_bytes(),
            &[("origin", "test")],
        );
        if i % 500 == 250 {
            let key = format!("bad{}", malformed.len());
            let text = format!("{{\"id\": {i}, \"name\": ");
            producer.send(&input, Some(&key), text.as_bytes(), &[]);
            malformed.insert(key, text);
        }
    }
    producer.flush();
    let end_offsets = producer.end_offsets();
    assert_eq!(
        end_offsets.len(),
        3,
        "every input partition has records: {end_offsets:?}"
    );
    assert_eq!(malformed.len(), 20);

    let file = kafka_pipeline(dir.path(), &broker, "e2e", &input, &group, &output, &dlq);
    let mut worker = start_worker(dir.path(), "w1", &file);
    let mut out = TopicReader::new(&broker.address(), &output, 3);
    let mut dead = TopicReader::new(&broker.address(), &dlq, 1);
    wait_until(
        "every event in the output and the dead-letter topic",
        Duration::from_secs(120),
        &broker,
        &[&worker],
        || {
            out.poll(Duration::from_millis(200));
            dead.poll(Duration::from_millis(10));
            (
                (out.records.len() as u64 >= N && dead.records.len() >= malformed.len())
                    .then_some(()),
                format!(
                    "{} in the output, {} dead letters",
                    out.records.len(),
                    dead.records.len()
                ),
            )
        },
    );

    let summary = worker.stop(Duration::from_secs(30));
    assert_eq!(summary["received"], N + malformed.len() as u64, "{summary}");
    assert_eq!(summary["sent"], N, "{summary}");
    assert_eq!(summary["failed"], malformed.len(), "{summary}");
    assert_eq!(summary["dead_lettered"], malformed.len(), "{summary}");
    // The worker has exited: whatever it wrote is in the topics now; read the rest, if any.
    out.drain(Duration::from_secs(2));
    dead.drain(Duration::from_secs(1));

    // Every good id exactly once, reshaped, key kept.
    let counts = id_counts(&out.records);
    assert_eq!(
        missing(&counts, N),
        Vec::<u64>::new(),
        "ids missing from the output"
    );
    let dups: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "ids written more than once: {dups:?}");
    assert_eq!(out.records.len() as u64, N);
    for r in &out.records {
        let id = r.id();
        let v = r.json();
        assert_eq!(
            (&v["id"], &v["worker"]),
            (&serde_json::json!(id), &serde_json::json!("w1"))
        );
        assert_eq!(v.as_object().unwrap().len(), 4, "{v}");
        assert_eq!(
            r.key.as_deref(),
            Some(format!("k{}", id % 50).as_str()),
            "{r:?}"
        );
    }

    // Per key: one output partition, ids increasing in offset order.
    let mut by_partition: BTreeMap<i32, Vec<&Record>> = BTreeMap::new();
    for r in &out.records {
        by_partition.entry(r.partition).or_default().push(r);
    }
    let mut partition_of: HashMap<&str, i32> = HashMap::new();
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (p, records) in &mut by_partition {
        records.sort_by_key(|r| r.offset);
        for r in records.iter() {
            let key = r.key.as_deref().unwrap();
            assert_eq!(
                *partition_of.entry(key).or_insert(*p),
                *p,
                "key {key} in two partitions"
            );
            let id = r.id();
            if let Some(prev) = last.insert(key, id) {
                assert!(
                    prev < id,
                    "key {key}: id {id} after {prev} in partition {p}"
                );
            }
        }
    }
    assert_eq!(last.len(), 50);

    // The dead-letter topic holds exactly the malformed payloads, key kept, with the reason.
    let mut letters: BTreeMap<String, String> = BTreeMap::new();
    for r in &dead.records {
        assert_eq!(r.header("sluice-error-step"), Some("decode"), "{r:?}");
        let reason = r.header("sluice-error-reason").unwrap_or_default();
        assert!(reason.starts_with("malformed JSON"), "reason: {reason}");
        assert_eq!(r.header("sluice-error-pipeline"), Some("e2e"), "{r:?}");
        let source = r.header("sluice-error-source").unwrap_or_default();
        assert!(
            source.starts_with(&format!("kafka:{input}/")),
            "source: {source}"
        );
        let key = r.key.clone().expect("dead letter keeps its key");
        let previous = letters.insert(key, String::from_utf8(r.payload.clone()).unwrap());
        assert!(previous.is_none(), "dead-lettered twice: {r:?}");
    }
    assert_eq!(letters, malformed);

    // Everything read was committed: the group's offsets are the end of every input partition.
    let committed = committed(&broker.address(), &group, &input, 3);
    let expected: Vec<Option<i64>> = (0..3).map(|p| end_offsets.get(&p).copied()).collect();
    assert_eq!(
        committed, expected,
        "committed offsets vs end offsets of {input}"
    );
    eprintln!("kafka_to_kafka_end_to_end: {:?}", started.elapsed());
}

#[test]
fn scaling_with_kill_and_replicas() {
    let _serial = serial();
    let started = Instant::now();
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let (input, output, dlq, group) = (
        unique("scale-in"),
        unique("scale-out"),
        unique("scale-dlq"),
        unique("scale-group"),
    );
    broker.create_topics(&[(&input, 6), (&output, 6), (&dlq, 1)]);

    const N: u64 = 100_000;
    let mut producer = broker.producer();
    for i in 0..N {
        let payload = format!("{{\"id\":{i},\"v\":\"small\"}}");
        producer.send(
            &input,
            Some(&format!("k{}", i % 120)),
            payload.as_bytes(),
            &[],
        );
    }
    producer.flush();
    let end_offsets = producer.end_offsets();
    assert_eq!(
        end_offsets.len(),
        6,
        "every input partition has records: {end_offsets:?}"
    );
    eprintln!("produced {N} events in {:?}", started.elapsed());

    let file = kafka_pipeline(dir.path(), &broker, "scale", &input, &group, &output, &dlq);
    let mut workers: Vec<Worker> = ["w1", "w2", "w3"]
        .iter()
        .map(|name| start_worker(dir.path(), name, &file))
        .collect();
    let mut out = TopicReader::new(&broker.address(), &output, 6);
    wait_until(
        "three workers in a stable group, each with output, and 10% of the events",
        Duration::from_secs(120),
        &broker,
        &workers.iter().collect::<Vec<_>>(),
        || {
            out.poll(Duration::from_millis(200));
            let group = broker.group(&group);
            let by = per_worker(&out.records);
            let done = is_stable(&group, 3)
                && workers
                    .iter()
                    .all(|w| !w.assigned().is_empty() && by.contains_key(&w.name))
                && out.records.len() as u64 > N / 10;
            (
                done.then_some(()),
                format!("group {group:?}, records per worker {by:?}"),
            )
        },
    );

    // Kill the group leader (what it delivered but did not commit is read again), and start
    // its replacement at once, as a Deployment would: the group rebalances while it joins.
    let victim = workers
        .iter()
        .position(Worker::is_group_leader)
        .expect("one worker is the group leader");
    let mut killed = workers.remove(victim);
    let held = killed.assigned();
    assert!(!held.is_empty(), "the leader holds partitions");
    let at_kill = out.records.len();
    killed.kill().unwrap();
    killed.wait().unwrap();
    eprintln!(
        "killed the group leader {} holding partitions {held:?} with {at_kill} records in the output",
        killed.name
    );
    workers.push(start_worker(dir.path(), "w4", &file));
    wait_until(
        "the replacement to hold partitions in a stable group of three",
        Duration::from_secs(90),
        &broker,
        &workers.iter().chain([&killed]).collect::<Vec<_>>(),
        || {
            out.poll(Duration::from_millis(100));
            let group = broker.group(&group);
            let held: HashSet<i64> = workers.iter().flat_map(|w| w.assigned()).collect();
            let replacement = workers.last().unwrap();
            let done =
                is_stable(&group, 3) && !replacement.assigned().is_empty() && held.len() == 6;
            (
                done.then_some(()),
                format!("group {group:?}, partitions held {held:?}"),
            )
        },
    );
    eprintln!(
        "replacement joined with {} records in the output",
        out.records.len()
    );

    {
        let all: Vec<&Worker> = workers.iter().chain([&killed]).collect();
        wait_for_all_ids(&mut out, N, Duration::from_secs(240), &all);
    }
    for w in &mut workers {
        let summary = w.stop(Duration::from_secs(40));
        eprintln!(
            "{} stopped: received {}, sent {}",
            w.name, summary["received"], summary["sent"]
        );
    }
    out.drain(Duration::from_secs(2));

    let counts = id_counts(&out.records);
    assert_eq!(missing(&counts, N), Vec::<u64>::new(), "ids lost");
    let extra: Vec<u64> = counts
        .keys()
        .copied()
        .filter(|id| *id >= N)
        .take(10)
        .collect();
    assert!(extra.is_empty(), "ids that were never produced: {extra:?}");
    let live: Vec<&Worker> = workers.iter().collect();
    let d = duplicates(&out.records, &live, Some(&killed.name));
    eprintln!(
        "scaling_with_kill_and_replicas: {} records for {N} ids, {d:?}; \
         duplicates per input partition (count, offsets from, to): {:?}; per worker {:?}; {:?}",
        out.records.len(),
        duplicates_by_partition(&out.records),
        per_worker(&out.records),
        started.elapsed()
    );
    assert_eq!(d.total as u64, out.records.len() as u64 - N);
    // No partition was ever held by two live workers at once, so every duplicate is one the
    // killed worker had delivered and not committed.
    assert!(d.overlaps.is_empty(), "partitions held twice: {d:?}");
    assert!(
        d.unexplained.is_empty(),
        "duplicates with no crash behind them: {d:?}"
    );
    // Replayed after the kill: at most what the killed worker had read but not committed
    // (1 s commit interval, bounded channels, the producer's in-flight window).
    assert!(d.replayed_after_kill <= 20_000, "{d:?}");

    // The survivors committed everything when they stopped.
    let committed = committed(&broker.address(), &group, &input, 6);
    let expected: Vec<Option<i64>> = (0..6).map(|p| end_offsets.get(&p).copied()).collect();
    assert_eq!(
        committed, expected,
        "committed offsets vs end offsets of {input}"
    );
}

#[test]
fn scale_up_and_down_while_running() {
    let _serial = serial();
    let started = Instant::now();
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let (input, output, dlq, group) = (
        unique("updown-in"),
        unique("updown-out"),
        unique("updown-dlq"),
        unique("updown-group"),
    );
    broker.create_topics(&[(&input, 4), (&output, 4), (&dlq, 1)]);
    let file = kafka_pipeline(dir.path(), &broker, "updown", &input, &group, &output, &dlq);

    const N: u64 = 60_000;
    // The last events are only produced once the scale-down has begun, so events keep coming
    // through every step.
    const HELD_BACK: u64 = 10_000;
    const RATE_PER_10MS: u64 = 25; // 2,500 events/s
    let release = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Should the test fail early, the producer must not wait for a scale-down that never
        // comes (the scope joins it).
        let _release_on_exit = ReleaseOnDrop(&release);
        let producing = scope.spawn(|| {
            let payload = |i| format!("{{\"id\":{i},\"v\":\"small\"}}");
            broker
                .producer()
                .send_paced(&input, N, RATE_PER_10MS, 40, payload, |i| {
                    if i + 1 == N - HELD_BACK {
                        wait_for("the scale-down to begin", Duration::from_secs(300), || {
                            release.load(Ordering::SeqCst).then_some(())
                        });
                    }
                })
        });

        let mut out = TopicReader::new(&broker.address(), &output, 4);
        let w1 = start_worker(dir.path(), "w1", &file);
        wait_for(
            "output from the first worker",
            Duration::from_secs(60),
            || {
                out.poll(Duration::from_millis(200));
                (out.records.len() >= 2_000).then_some(())
            },
        );

        // Scale up to three; wait until the group settled with every worker holding partitions.
        let mut workers = vec![w1];
        workers.push(start_worker(dir.path(), "w2", &file));
        workers.push(start_worker(dir.path(), "w3", &file));
        wait_until(
            "three workers holding partitions in a stable group",
            Duration::from_secs(90),
            &broker,
            &workers.iter().collect::<Vec<_>>(),
            || {
                out.poll(Duration::from_millis(100));
                let group = broker.group(&group);
                let done = workers.iter().all(|w| !w.assigned().is_empty()) && is_stable(&group, 3);
                (done.then_some(()), format!("group {group:?}"))
            },
        );
        // ... and every worker's events in the output.
        wait_until(
            "output from every worker",
            Duration::from_secs(60),
            &broker,
            &workers.iter().collect::<Vec<_>>(),
            || {
                out.poll(Duration::from_millis(200));
                let by = per_worker(&out.records);
                let done = workers.iter().all(|w| by.contains_key(&w.name));
                (done.then_some(()), format!("records per worker: {by:?}"))
            },
        );
        let held: Vec<_> = workers
            .iter()
            .map(|w| (w.name.clone(), w.assigned()))
            .collect();
        eprintln!("scaled up: {held:?}, {} records", out.records.len());

        // Scale down to one: two workers leave gracefully, together, the group leader among
        // them, so the group elects a new leader while it rebalances.
        let leader = workers
            .iter()
            .position(Worker::is_group_leader)
            .expect("one worker is the group leader");
        let stays = (0..workers.len())
            .find(|i| *i != leader)
            .expect("three workers");
        let mut last = workers.remove(stays);
        release.store(true, Ordering::SeqCst);
        for w in &workers {
            w.signal("TERM");
        }
        let mut summaries = Vec::new();
        for w in &mut workers {
            summaries.push(w.stopped(Duration::from_secs(40)));
        }
        let sent: Vec<_> = summaries.iter().map(|s| s["sent"].clone()).collect();
        eprintln!(
            "scaled down: {} holds {:?}; the others sent {sent:?}",
            last.name,
            last.assigned()
        );

        let end_offsets = producing.join().expect("producer thread");
        wait_for_all_ids(
            &mut out,
            N,
            Duration::from_secs(180),
            &workers.iter().chain([&last]).collect::<Vec<_>>(),
        );
        summaries.push(last.stop(Duration::from_secs(40)));

        // Every record the workers confirmed is in the topic; read up to that count.
        let sent: u64 = summaries.iter().map(|s| s["sent"].as_u64().unwrap()).sum();
        let received: u64 = summaries
            .iter()
            .map(|s| s["received"].as_u64().unwrap())
            .sum();
        wait_for(
            "every confirmed record in the output",
            Duration::from_secs(60),
            || {
                out.poll(Duration::from_millis(200));
                (out.records.len() as u64 >= sent).then_some(())
            },
        );
        out.drain(Duration::from_secs(1));
        assert_eq!(
            out.records.len() as u64,
            sent,
            "records in the output vs confirmed"
        );
        assert_eq!(
            received, sent,
            "every event read was delivered: {summaries:?}"
        );

        let counts = id_counts(&out.records);
        assert_eq!(missing(&counts, N), Vec::<u64>::new(), "ids lost");
        workers.push(last);
        let all: Vec<&Worker> = workers.iter().collect();
        let d = duplicates(&out.records, &all, None);
        eprintln!(
            "scale_up_and_down_while_running: {} records for {N} ids, {d:?}; \
             duplicates per input partition (count, offsets from, to): {:?}; per worker {:?}; {:?}",
            out.records.len(),
            duplicates_by_partition(&out.records),
            per_worker(&out.records),
            started.elapsed()
        );
        assert_eq!(d.total, out.records.len() - counts.len());
        // Graceful membership changes replay nothing: a revoked partition's in-flight events are
        // delivered and committed before it is handed over, and SIGTERM commits before leaving.
        assert!(
            d.overlaps.is_empty() && d.total == 0,
            "duplicates after graceful scale up and down: {d:?}"
        );
        let committed = committed(&broker.address(), &group, &input, 4);
        let expected: Vec<Option<i64>> = (0..4).map(|p| end_offsets.get(&p).copied()).collect();
        assert_eq!(
            committed, expected,
            "committed offsets vs end offsets of {input}"
        );
    });
}

/// Waits until the worker serving health on `port` answers `/health/ready` with `status`.
fn readiness(port: u16, status: u16, broker: &Broker, worker: &Worker) {
    wait_until(
        &format!("/health/ready to answer {status}"),
        Duration::from_secs(90),
        broker,
        &[worker],
        || {
            let now = testkit::http_get(port, "/health/ready");
            (
                now.as_ref()
                    .is_some_and(|(s, _)| *s == status)
                    .then_some(()),
                format!("answered {now:?}"),
            )
        },
    );
}

#[test]
fn broker_restarts_mid_stream_lose_nothing() {
    let _serial = serial();
    let started = Instant::now();
    let mut broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let (input, output, dlq, group) = (
        unique("restart-in"),
        unique("restart-out"),
        unique("restart-dlq"),
        unique("restart-group"),
    );
    broker.create_topics(&[(&input, 3), (&output, 3), (&dlq, 1)]);
    let file = kafka_pipeline(
        dir.path(),
        &broker,
        "restart",
        &input,
        &group,
        &output,
        &dlq,
    );

    const N: u64 = 40_000;
    const RATE_PER_10MS: u64 = 20; // 2,000 events/s: the stream goes on through both restarts
    // A second of input on one of the three input partitions.
    const PER_PARTITION_SECOND: i64 = 700;
    let metrics = testkit::free_port();
    let mut sluice = sluice!();
    sluice.env("WORKER", "w1");
    let mut worker = Worker::with_metrics(sluice, &file, &dir.path().join("w1.log"), metrics);
    let mut out = broker.reader(&output, 3);
    let address = broker.address();
    let mut producer = broker.producer();
    // Each input partition's committed offset just before the first restart.
    let mut first_committed: Option<Vec<i64>> = None;
    let end_offsets = std::thread::scope(|scope| {
        let producer = scope.spawn(|| {
            let payload = |i| format!("{{\"id\":{i}}}");
            producer.send_paced(&input, N, RATE_PER_10MS, 30, payload, |_| {})
        });
        readiness(metrics, 200, &broker, &worker);

        // A controlled restart (SIGTERM), then a crash (SIGKILL), each once new events flow
        // and the worker has committed every input partition up to about where its output is
        // (within a second of input), so each outage finds it in its steady state (events
        // read, delivered, committed once a second).
        for (round, crash) in [(1u64, false), (2, true)] {
            let mut seen = HashSet::new();
            let mut now_committed = Vec::new();
            // The highest input offset of each partition seen in the output.
            let mut delivered = [-1i64; 3];
            let mut scanned = 0;
            wait_until(
                "new events flowing and committed before the restart",
                Duration::from_secs(120),
                &broker,
                &[&worker],
                || {
                    out.poll(Duration::from_millis(200));
                    for r in &out.records[scanned..] {
                        seen.insert(r.id());
                        let v = r.json();
                        let (p, o) = (v["p"].as_u64().unwrap(), v["o"].as_i64().unwrap());
                        delivered[p as usize] = delivered[p as usize].max(o);
                    }
                    scanned = out.records.len();
                    let committed = committed(&address, &group, &input, 3);
                    now_committed = committed.iter().map(|c| c.unwrap_or(0)).collect();
                    let caught_up = delivered
                        .iter()
                        .zip(&committed)
                        .all(|(d, c)| c.unwrap_or(0) + PER_PARTITION_SECOND >= *d);
                    let done = seen.len() as u64 >= round * N / 4 && caught_up;
                    (
                        done.then_some(()),
                        format!(
                            "{} ids out; input offsets delivered {delivered:?}, committed {committed:?}",
                            seen.len()
                        ),
                    )
                },
            );
            first_committed.get_or_insert(now_committed);
            if crash {
                broker.kill();
            } else {
                broker.stop();
            }
            eprintln!(
                "broker {} with {} records out",
                if crash { "killed" } else { "stopped" },
                out.records.len()
            );
            readiness(metrics, 503, &broker, &worker);
            broker.resume();
            readiness(metrics, 200, &broker, &worker);
            eprintln!("broker back after {:?}", started.elapsed());
        }
        producer.join().expect("producer thread")
    });
    wait_for_all_ids(&mut out, N, Duration::from_secs(180), &[&worker]);
    // After the crash the worker rejoins its group, and reads again what it had delivered but
    // whose commit the crash lost. Stop it once it holds the partitions again and has committed
    // them to their ends; the SIGTERM must keep that (a member still rejoining holds none, and
    // one stopped before it has read again leaves the re-reading to the next member).
    let expected: Vec<Option<i64>> = (0..3).map(|p| end_offsets.get(&p).copied()).collect();
    wait_until(
        "the worker to hold every partition again in a stable group, committed to the end",
        Duration::from_secs(90),
        &broker,
        &[&worker],
        || {
            let group_state = broker.group(&group);
            let held = worker.assigned();
            let committed = committed(&address, &group, &input, 3);
            (
                (is_stable(&group_state, 1) && held.len() == 3 && committed == expected)
                    .then_some(()),
                format!(
                    "group {group_state:?}, partitions held {held:?}, committed {committed:?} \
                     of {expected:?}"
                ),
            )
        },
    );
    let summary = worker.stop(Duration::from_secs(40));
    out.drain(Duration::from_secs(2));

    let counts = id_counts(&out.records);
    assert_eq!(missing(&counts, N), Vec::<u64>::new(), "ids lost");
    assert_eq!(counts.len() as u64, N, "ids that were never produced");
    let duplicates = out.records.len() as u64 - N;
    eprintln!(
        "broker_restarts_mid_stream_lose_nothing: {} records for {N} ids, {summary}; \
         duplicates per input partition (count, offsets from, to): {:?}; {:?}",
        out.records.len(),
        duplicates_by_partition(&out.records),
        started.elapsed()
    );
    // What an outage can make the worker read again is what it had delivered and not yet
    // committed; nothing before what was committed ahead of the first restart (a crash of a
    // one-replica broker can lose commits made after that, so no tighter floor holds for the
    // second).
    let floor = first_committed.expect("a first restart");
    let mut positions = HashSet::new();
    for r in &out.records {
        let v = r.json();
        let (p, o) = (v["p"].as_u64().unwrap() as usize, v["o"].as_i64().unwrap());
        if !positions.insert((p, o)) {
            assert!(
                o >= floor[p],
                "input {p}@{o} read again, below the offset {} committed before the restarts \
                 ({duplicates} duplicates)",
                floor[p]
            );
        }
    }
    // The worker stopped cleanly: everything it read was delivered and committed.
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["sent"], summary["received"], "{summary}");
    let committed = committed(&broker.address(), &group, &input, 3);
    assert_eq!(
        committed, expected,
        "committed offsets vs end offsets of {input}"
    );
    // Per key, ids in the order they were produced, apart from what was read again.
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut by_partition: BTreeMap<i32, Vec<&Record>> = BTreeMap::new();
    for r in &out.records {
        by_partition.entry(r.partition).or_default().push(r);
    }
    let mut out_of_order = 0;
    for records in by_partition.values_mut() {
        records.sort_by_key(|r| r.offset);
        for r in records.iter() {
            let key = r.key.clone().unwrap();
            let id = r.id();
            if last.insert(key, id).is_some_and(|prev| prev >= id) {
                out_of_order += 1;
            }
        }
    }
    assert!(
        out_of_order as u64 <= duplicates,
        "{out_of_order} records out of order per key with {duplicates} duplicates"
    );
}
