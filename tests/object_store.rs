//! The `object_store` output through the real binary, on a local directory (`file://`): which
//! objects are written, where, under which names, and that each event is in exactly one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use testkit::{pipeline, run_with_stdin, sluice};

/// Every file under `dir`, by path relative to it.
fn files(dir: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if !path.to_string_lossy().contains('#') {
                // (`name#n`: a write a killed process did not finish, not an object.)
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                found.insert(rel, path);
            }
        }
    }
    found
}

fn lines_of(object: &Path) -> Vec<serde_json::Value> {
    let bytes = std::fs::read(object).unwrap();
    let text = match object.extension().and_then(|e| e.to_str()) {
        Some("zst") => zstd::decode_all(&bytes[..]).unwrap(),
        Some("gz") => {
            let mut out = Vec::new();
            let mut gz = flate2::read::GzDecoder::new(&bytes[..]);
            std::io::Read::read_to_end(&mut gz, &mut out).unwrap();
            out
        }
        _ => bytes,
    };
    String::from_utf8(text)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn events_land_in_folders_by_template_in_objects_named_after_what_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("lake");
    let file = pipeline(
        dir.path(),
        "archive",
        &format!(
            "\
input: {{stdin: {{}}}}
transforms:
  - route: {{timestamp: '.ts'}}
output:
  object_store:
    url: file://{store}/events
    path: 'dt=%Y-%m-%d/service={{{{ .service }}}}'
    compression: zstd
    batch: {{max_events: 400}}
errors:
  output: {{file: {{path: {dlq}}}}}
",
            store = store.display(),
            dlq = dir.path().join("dlq.ndjson").display()
        ),
    );
    // 2026-11-29T00:00:00Z, then one event a minute: the day changes at event 1440.
    let day = 1_795_910_400_000i64;
    let mut input = String::new();
    for i in 0..2000 {
        let service = ["checkout", "search", "cart/v2"][i % 3];
        input.push_str(&format!(
            "{{\"i\":{i},\"service\":\"{service}\",\"ts\":{}}}\n",
            day + i as i64 * 60_000
        ));
    }
    input.push_str("not json\n");
    let out = run_with_stdin(sluice!(), &file, input.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let objects = files(&store);
    let mut seen = BTreeMap::new();
    for (rel, path) in &objects {
        let events = lines_of(path);
        let is: Vec<i64> = events.iter().map(|e| e["i"].as_i64().unwrap()).collect();
        // In line order within an object, and named after its first and last line.
        assert!(is.windows(2).all(|w| w[0] < w[1]), "{rel}: {is:?}");
        let (first, last) = (is[0] + 1, is[is.len() - 1] + 1);
        let name = format!("archive-stdin-{first:020}.0-{last:020}.0.ndjson.zst");
        assert!(rel.ends_with(&name), "{rel} is not named {name}");
        for e in &events {
            let date = if e["i"].as_i64().unwrap() < 1440 {
                "2026-11-29"
            } else {
                "2026-11-30"
            };
            let service = e["service"].as_str().unwrap().replace('/', "_");
            let folder = format!("events/dt={date}/service={service}/");
            assert!(rel.starts_with(&folder), "{rel} holds {e}");
            *seen.entry(e["i"].as_i64().unwrap()).or_insert(0) += 1;
        }
        assert!(events.len() <= 400, "{rel}: {} events", events.len());
    }
    assert_eq!(seen.len(), 2000, "every event stored");
    assert!(seen.values().all(|n| *n == 1), "an event stored twice");
    // Two days by three services, the largest folder (667 events a day at most) in two objects.
    let folders: std::collections::BTreeSet<_> = objects
        .keys()
        .map(|k| k.rsplit_once('/').unwrap().0.to_string())
        .collect();
    assert_eq!(folders.len(), 6, "{folders:?}");
    // The line that is not JSON has no folder: it is dead-lettered with the reason.
    let dlq = std::fs::read_to_string(dir.path().join("dlq.ndjson")).unwrap();
    assert_eq!(dlq.lines().count(), 1, "{dlq}");
    assert!(dlq.contains("\"payload_text\":\"not json\""), "{dlq}");
}

#[test]
fn a_bad_url_an_unknown_option_and_a_bad_path_are_reported_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "bad",
        "\
input: {stdin: {}}
output:
  object_store:
    url: ftp://host/x
    path: '{{ .a | }}'
    batch: {max_events: 0}
errors:
  output:
    object_store:
      url: s3://bucket/dead
      options: {endpoint: 'http://127.0.0.1:1', colour: blue}
",
    );
    let out = sluice!().arg("check").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let shown = file.display();
    for expected in [
        format!("{shown}:4:10: error: "),
        format!("{shown}:5:11: error: jq expression"),
        format!("{shown}:6:25: error: must be above 0"),
        format!("{shown}:11:57: error: unknown option \"colour\""),
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(&expected)),
            "no `{expected}` in:\n{stderr}"
        );
    }
    assert!(stderr.ends_with("4 errors found\n"), "{stderr}");
}

/// Ids in every object under `dir`, with how many times each was stored.
fn stored_ids(dir: &Path) -> BTreeMap<i64, usize> {
    let mut seen = BTreeMap::new();
    for path in files(dir).values() {
        for e in lines_of(path) {
            *seen.entry(e["id"].as_i64().unwrap()).or_insert(0) += 1;
        }
    }
    seen
}

#[test]
fn kafka_events_read_again_after_a_kill_9_are_not_stored_twice() {
    use std::time::Duration;
    use testkit::kraft::Broker;
    use testkit::{Worker, wait_exit, wait_for};

    let broker = Broker::start();
    let brokers = broker.address();
    let n = 40_000i64;
    let (topic, group) = broker.input(4, n as u64, |i| {
        format!("{{\"id\":{i},\"service\":\"s{}\"}}", i % 3)
    });
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("lake");
    // Commits every 5 s: when the first worker is killed, objects it stored are not committed
    // yet, and the second reads their events again. The second cuts objects at other places
    // (as `max_age` and a full in-flight budget also make a run cut differently from the one
    // before), so the events read again would land in objects of other names.
    let yaml = |max_events: u32| {
        format!(
            "\
input:
  kafka:
    brokers: {brokers}
    topics: [{topic}]
    group_id: {group}
    commit_interval: 5s
    options: {{session.timeout.ms: \"6000\"}}
output:
  object_store:
    url: file://{store}
    path: 'service={{{{ .service }}}}'
    batch: {{max_events: {max_events}, max_age: 200ms}}
errors: stop
settings:
  batch_size: 100
",
            store = store.display()
        )
    };
    let first_dir = dir.path().join("first");
    let second_dir = dir.path().join("second");
    std::fs::create_dir_all(&first_dir).unwrap();
    std::fs::create_dir_all(&second_dir).unwrap();
    let file = pipeline(&first_dir, "archive", &yaml(300));
    let log = dir.path().join("first.log");
    let mut first = Worker::start(sluice!(), &file, &log, &[]);
    wait_for("part of the events stored", Duration::from_secs(60), || {
        (stored_ids(&store).len() >= 10_000).then_some(())
    });
    first.kill().unwrap();
    wait_exit(&mut first, Duration::from_secs(10));
    let before = stored_ids(&store).len();
    assert!(
        before < n as usize,
        "the first worker stored everything before the kill"
    );

    let file = pipeline(&second_dir, "archive", &yaml(250));
    let log = dir.path().join("second.log");
    let mut second = Worker::start(sluice!(), &file, &log, &[]);
    wait_for("every event stored", Duration::from_secs(120), || {
        (stored_ids(&store).len() == n as usize).then_some(())
    });
    let summary = second.stop(Duration::from_secs(30));
    let seen = stored_ids(&store);
    let twice: Vec<_> = seen
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(
        twice.is_empty(),
        "{} events stored twice, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    // The second worker read again what the first stored without committing: it acknowledged
    // those events without writing them.
    let received = summary["received"].as_i64().unwrap();
    assert!(
        received > n - before as i64,
        "nothing was read again: {summary}"
    );
}

#[test]
fn mistakes_in_a_parquet_schema_are_each_reported_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "columns",
        "\
input: {stdin: {}}
output:
  object_store:
    url: file:///tmp/lake
    format: parquet
    compression: snappy
    schema:
      - {name: id, type: int}
      - {name: id, type: string}
      - {name: price, type: 'decimal(40,2)'}
      - {name: tags, type: 'list<string>', fields: [{name: a, type: string}]}
      - {name: address, type: struct}
      - name: items
        type: list<struct>
        fields: [{name: sku, type: text}]
errors:
  output:
    object_store:
      url: file:///tmp/dead
      compression: snappy
      schema: [{name: a, type: string}]
",
    );
    let other = pipeline(
        dir.path(),
        "bare",
        "\
input: {stdin: {}}
output:
  object_store: {url: 'file:///tmp/lake', format: parquet}
errors: stop
",
    );
    let out = sluice!()
        .arg("check")
        .arg(&file)
        .arg(&other)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let (shown, bare) = (file.display(), other.display());
    for expected in [
        format!("{shown}:8:26: error: unknown type \"int\": one of boolean, int8,"),
        format!("{shown}:9:16: error: \"id\" is declared twice"),
        format!("{shown}:10:29: error: decimal(P,S) takes a precision P from 1 to 38"),
        format!("{shown}:11:52: error: only a struct has fields"),
        format!("{shown}:12:31: error: a struct needs `fields`"),
        format!("{shown}:15:36: error: unknown type \"text\""),
        format!("{shown}:20:20: error: snappy is for parquet"),
        format!("{shown}:21:15: error: only the parquet format takes a schema"),
        format!("{bare}:3:51: error: parquet needs a `schema`"),
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(&expected)),
            "no `{expected}` in:\n{stderr}"
        );
    }
    assert!(stderr.ends_with("9 errors found\n"), "{stderr}");
}

/// Objects under `dir` named `<pipeline>-<stream>-<first>.0-<last>.0.ndjson` (stream sequences)
/// and holding exactly the events of that range, by `id` (the stream sequence less one); how
/// many times each `id` was stored.
fn whole_objects(dir: &Path, prefix: &str) -> BTreeMap<u64, usize> {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (rel, path) in files(dir) {
        let ids: Vec<u64> = lines_of(&path)
            .iter()
            .map(|l| l["id"].as_u64().unwrap())
            .collect();
        let (first, last) = (ids[0], ids[ids.len() - 1]);
        let name = format!("{prefix}-{:020}.0-{:020}.0.ndjson", first + 1, last + 1);
        assert_eq!(rel, name, "an object named after what it holds");
        assert!(
            ids.iter().copied().eq(first..=last),
            "{rel} holds a gap or a repeat"
        );
        for id in ids {
            *seen.entry(id).or_default() += 1;
        }
    }
    seen
}

/// A NATS server and a stream of a random name holding `n` events `{"id": i}` on `STREAM.a`.
async fn jetstream_backlog(
    prefix: &str,
    n: u64,
) -> (
    testkit::nats::NatsServer,
    async_nats::jetstream::Context,
    String,
) {
    use testkit::nats::{NatsServer, create_stream, publish_all};
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let stream = testkit::unique(prefix).replace('-', "_");
    create_stream(&js, &stream, &[format!("{stream}.>")]).await;
    let subject = format!("{stream}.a");
    publish_all(
        &js,
        (0..n).map(|i| (subject.clone(), format!("{{\"id\":{i}}}").into())),
    )
    .await;
    (server, js, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_into_objects_larger_than_max_ack_pending_keeps_flowing() {
    use std::time::Duration;
    use testkit::nats::consumer_state;

    // Twenty times the input's default max_ack_pending (1,000).
    const N: u64 = 20_000;
    let (server, js, stream) = jetstream_backlog("IN", N).await;

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("lake");
    // The input with its defaults; the output gathers up to 100,000 events an object, for 10 s:
    // the last events, once the stream has no more, wait that long.
    let file = pipeline(
        dir.path(),
        "gather",
        &format!(
            "\
input:
  jetstream: {{url: '{url}', stream: {stream}, consumer: proc}}
output:
  object_store: {{url: 'file://{store}', batch: {{max_events: 100000, max_age: 10s}}}}
errors: stop
",
            url = server.url(),
            store = store.display()
        ),
    );
    let log = dir.path().join("w.log");
    let mut worker = testkit::Worker::start(sluice!(), &file, &log, &[]);
    // Written only at max_age, 1,000 events (max_ack_pending) each time, this would take 200 s.
    testkit::eventually(
        "every message acknowledged",
        Duration::from_secs(60),
        || async {
            consumer_state(&js, &stream, "proc")
                .await
                .filter(|(unacked, left, _)| *unacked == 0 && *left == 0)
        },
    )
    .await;
    let summary = worker.stop(Duration::from_secs(30));
    assert_eq!(summary["redelivered"], 0, "{summary}");

    let seen = whole_objects(&store, &format!("gather-{stream}"));
    assert_eq!(seen.len() as u64, N, "every event stored");
    assert!(seen.values().all(|n| *n == 1), "an event stored twice");
}

#[test]
fn check_warns_when_max_ack_pending_is_set_below_what_an_object_gathers() {
    let dir = tempfile::tempdir().unwrap();
    let check = |input: &str| {
        let yaml = format!(
            "input:\n  jetstream: {{url: 'nats://127.0.0.1:4222', stream: S, consumer: c{input}}}\n\
             output:\n  object_store: {{url: 'file:///tmp/lake', batch: {{max_events: 5000}}}}\n\
             errors: stop\n"
        );
        let file = pipeline(dir.path(), "advice", &yaml);
        let out = sluice!().arg("check").arg(&file).output().unwrap();
        assert!(out.status.success(), "a warning does not fail the check");
        String::from_utf8(out.stderr).unwrap()
    };
    let low = check(", max_ack_pending: 500");
    assert!(
        low.contains("warning: input.jetstream.max_ack_pending (500) is below the 5000 events"),
        "{low}"
    );
    assert_eq!(check(""), "", "the defaults work together");
    assert_eq!(check(", max_ack_pending: 5000"), "");
    assert_eq!(
        check(", max_ack_pending: 500, bind: true"),
        "",
        "the consumer's own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_messages_waiting_in_an_object_longer_than_ack_wait_are_not_redelivered() {
    use std::time::Duration;
    use testkit::nats::consumer_state;

    let (server, js, stream) = jetstream_backlog("WAIT", 10).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("lake");
    // The object is written after 5 s, five ack waits.
    let file = pipeline(
        dir.path(),
        "wait",
        &format!(
            "\
input:
  jetstream: {{url: '{url}', stream: {stream}, consumer: proc, ack_wait: 1s}}
output:
  object_store: {{url: 'file://{store}', batch: {{max_age: 5s}}}}
errors: stop
",
            url = server.url(),
            store = store.display()
        ),
    );
    let log = dir.path().join("w.log");
    let mut worker = testkit::Worker::start(sluice!(), &file, &log, &[]);
    let (_, _, redelivered) = testkit::eventually(
        "every message acknowledged",
        Duration::from_secs(30),
        || async {
            consumer_state(&js, &stream, "proc")
                .await
                .filter(|(unacked, left, _)| *unacked == 0 && *left == 0)
        },
    )
    .await;
    assert_eq!(
        redelivered, 0,
        "the server redelivered messages held in an object"
    );
    worker.stop(Duration::from_secs(30));
    let seen = whole_objects(&store, &format!("wait-{stream}"));
    assert_eq!(seen.len(), 10, "every event stored");
    assert!(seen.values().all(|n| *n == 1), "an event stored twice");
    assert_eq!(files(&store).len(), 1, "one object");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_events_held_in_an_object_are_written_and_acknowledged_at_shutdown() {
    use std::time::Duration;
    use testkit::nats::consumer_state;

    let (server, js, stream) = jetstream_backlog("STOP", 10).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("lake");
    // The output's defaults: the object would wait a minute, longer than the shutdown may take.
    let file = pipeline(
        dir.path(),
        "stop",
        &format!(
            "\
input:
  jetstream: {{url: '{url}', stream: {stream}, consumer: proc}}
output:
  object_store: {{url: 'file://{store}'}}
errors: stop
",
            url = server.url(),
            store = store.display()
        ),
    );
    let log = dir.path().join("w.log");
    let mut worker = testkit::Worker::start(sluice!(), &file, &log, &[]);
    testkit::eventually(
        "every message handed out",
        Duration::from_secs(30),
        || async {
            consumer_state(&js, &stream, "proc")
                .await
                .filter(|(unacked, left, _)| *unacked == 10 && *left == 0)
        },
    )
    .await;
    let summary = worker.stop(Duration::from_secs(30));
    assert_eq!(summary["unfinished"], false, "{summary}");
    let (unacked, _, _) = consumer_state(&js, &stream, "proc").await.unwrap();
    assert_eq!(unacked, 0, "every message acknowledged");
    let seen = whole_objects(&store, &format!("stop-{stream}"));
    assert_eq!(seen.len(), 10, "every event stored");
    assert!(seen.values().all(|n| *n == 1), "an event stored twice");
}
