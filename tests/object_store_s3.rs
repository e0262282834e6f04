//! The `object_store` output against a real S3 implementation (moto's server), read back with an
//! independent client (boto3).

use std::collections::BTreeMap;

use std::time::Duration;
use testkit::s3::Moto;

use testkit::{
    Worker, free_port, http_get, metric_values, pipeline, run_with_stdin, sluice, unique,
};
use testkit::{wait_exit, wait_for};

#[test]
fn generated_events_are_stored_in_s3_each_in_exactly_one_object() {
    let moto = Moto::start();
    let bucket = unique("lake").to_lowercase();
    moto.create_bucket(&bucket);
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "archive",
        &format!(
            "\
input:
  generate:
    template: '{{id: ., service: ([\"checkout\", \"search\", \"cart\"][. % 3])}}'
    count: 5000
output:
  object_store:
    url: s3://{bucket}/archive
    path: 'service={{{{ .service }}}}'
    compression: zstd
    batch: {{max_events: 1000}}
    options: {options}
errors: stop
",
            options = moto.options()
        ),
    );
    let out = run_with_stdin(sluice!(), &file, b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let objects = moto.objects(&bucket, "archive/");
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (key, lines) in &objects {
        let ids: Vec<u64> = lines
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        let service = ["checkout", "search", "cart"][(ids[0] % 3) as usize];
        let name = format!(
            "archive/service={service}/archive-generate-{:020}.0-{:020}.0.ndjson.zst",
            ids[0],
            ids[ids.len() - 1]
        );
        assert_eq!(key, &name);
        assert!(
            ids.len() <= 1000 && ids.windows(2).all(|w| w[0] < w[1]),
            "{key}"
        );
        assert!(
            ids.iter().all(|id| id % 3 == ids[0] % 3),
            "{key} mixes services"
        );
        for id in ids {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 5000, "every event stored");
    assert!(seen.values().all(|n| *n == 1), "an event stored twice");
    // 1,667 events a service at most, 1,000 an object: two objects a service.
    assert_eq!(
        objects.len(),
        6,
        "{:?}",
        objects.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
}

#[test]
fn a_store_that_hangs_holds_the_input_back_turns_readiness_503_and_loses_nothing() {
    let moto = Moto::start();
    let bucket = unique("hang").to_lowercase();
    moto.create_bucket(&bucket);
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "hang",
        &format!(
            "\
input:
  generate:
    template: '{{id: .}}'
    count: 20000
    rate: 4000
output:
  object_store:
    url: s3://{bucket}/events
    batch: {{max_events: 500, max_age: 1s}}
    options: {options}
errors: stop
settings:
  max_event_bytes: 4KiB
  max_in_flight_bytes: 64KiB
  retry: {{initial_backoff: 50ms, max_backoff: 500ms, unready_after: 2s}}
",
            options = moto.options()
        ),
    );
    let metrics = free_port();
    let log = dir.path().join("sluice.log");
    let mut worker = Worker::with_metrics(sluice!(), &file, &log, metrics);
    let metric = |name: &str| {
        let (_, text) = http_get(metrics, "/metrics")?;
        Some(metric_values(&text, name, &[]).first()?.1)
    };
    wait_for("objects stored", Duration::from_secs(30), || {
        (metric("sluice_events_sent_total")? >= 1000.0).then_some(())
    });
    moto.pause();
    wait_for("readiness to fail", Duration::from_secs(30), || {
        let (status, body) = http_get(metrics, "/health/ready")?;
        (status == 503 && body.contains("output failing")).then_some(())
    });
    // The input is held back: the in-flight budget is used up, and it stays under 20,000.
    wait_for("the budget used up", Duration::from_secs(30), || {
        (metric("sluice_bytes_in_flight")? >= 65536.0).then_some(())
    });
    let received = metric("sluice_events_received_total").unwrap();
    assert!(
        received < 20000.0,
        "the input was not held back: {received}"
    );
    moto.resume();
    let status = wait_exit(&mut worker, Duration::from_secs(120));
    assert!(status.success(), "{}", worker.report());

    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (_, lines) in moto.objects(&bucket, "events/") {
        for l in lines {
            let id = serde_json::from_str::<serde_json::Value>(&l).unwrap()["id"]
                .as_u64()
                .unwrap();
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 20000, "every event stored");
    assert!(seen.values().all(|n| *n == 1), "an event stored twice");
}

#[test]
fn a_frozen_store_with_the_default_timeouts_turns_readiness_503_then_200_and_loses_nothing() {
    let moto = Moto::start();
    let bucket = unique("frozen").to_lowercase();
    moto.create_bucket(&bucket);
    let dir = tempfile::tempdir().unwrap();
    // The store's options without a `timeout` of their own: the output's and the client's
    // defaults apply.
    let file = pipeline(
        dir.path(),
        "frozen",
        &format!(
            "\
input:
  generate:
    template: '{{id: .}}'
    count: 20000
    rate: 2000
output:
  object_store:
    url: s3://{bucket}/events
    batch: {{max_events: 500, max_age: 1s}}
    options: {{endpoint: '{endpoint}', allow_http: 'true', region: us-east-1, access_key_id: test, secret_access_key: test}}
errors: stop
settings:
  retry: {{unready_after: 5s}}
",
            endpoint = moto.endpoint()
        ),
    );
    let metrics = free_port();
    let log = dir.path().join("sluice.log");
    let mut worker = Worker::with_metrics(sluice!(), &file, &log, metrics);
    let ready = |want: u16| {
        let (status, body) = http_get(metrics, "/health/ready")?;
        (status == want).then_some(body)
    };
    wait_for("objects stored", Duration::from_secs(30), || {
        let (_, text) = http_get(metrics, "/metrics")?;
        let sent = metric_values(&text, "sluice_events_sent_total", &[])
            .first()?
            .1;
        (sent >= 1000.0).then_some(())
    });
    ready(200).expect("ready while the store answers");
    moto.pause();
    // Three calls in a row given up after the 10 s `timeout` open the circuit, and readiness
    // turns 5 s later; with the client's own 30 s per call it took over 90 s.
    let body = wait_for("readiness to fail", Duration::from_secs(70), || ready(503));
    assert!(body.contains("output failing"), "{body}");
    moto.resume();
    wait_for("readiness again", Duration::from_secs(60), || ready(200));
    let status = wait_exit(&mut worker, Duration::from_secs(120));
    assert!(status.success(), "{}", worker.report());

    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (_, lines) in moto.objects(&bucket, "events/") {
        for l in lines {
            let id = serde_json::from_str::<serde_json::Value>(&l).unwrap()["id"]
                .as_u64()
                .unwrap();
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 20000, "every event stored");
    assert!(seen.values().all(|n| *n == 1), "an event stored twice");
}

#[test]
fn kafka_to_s3_with_two_replicas_and_a_kill_9_stores_every_event_once() {
    use testkit::kafka::{committed, end_offsets};
    use testkit::kraft::Broker;

    let moto = Moto::start();
    let bucket = unique("replicas").to_lowercase();
    moto.create_bucket(&bucket);
    let broker = Broker::start();
    let brokers = broker.address();
    let n = 200_000u64;
    let (topic, group) = broker.input(4, n, |i| format!("{{\"id\":{i},\"kind\":\"k{}\"}}", i % 3));
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "replicas",
        &format!(
            "\
input:
  kafka:
    brokers: {brokers}
    topics: [{topic}]
    group_id: {group}
    commit_interval: 2s
    options: {{session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\"}}
output:
  object_store:
    url: s3://{bucket}/events
    path: 'kind={{{{ .kind }}}}'
    compression: zstd
    batch: {{max_events: 4000, max_age: 1s}}
    options: {options}
errors: stop
",
            options = moto.options()
        ),
    );
    let ports = [free_port(), free_port()];
    let start = |name: &str, port: u16| {
        Worker::with_metrics(
            sluice!(),
            &file,
            &dir.path().join(format!("{name}.log")),
            port,
        )
    };
    let mut a = start("a", ports[0]);
    let b = start("b", ports[1]);
    let sent = |port: u16| {
        let (_, text) = http_get(port, "/metrics")?;
        Some(
            metric_values(&text, "sluice_events_sent_total", &[])
                .first()?
                .1,
        )
    };
    wait_for("both replicas storing", Duration::from_secs(120), || {
        let (x, y) = (sent(ports[0])?, sent(ports[1])?);
        (x > 0.0 && y > 0.0 && x + y >= 60_000.0).then_some(())
    });
    a.kill().unwrap();
    wait_exit(&mut a, Duration::from_secs(10));
    let mut a = start("a2", free_port());
    let ends = end_offsets(&brokers, &topic, 4);
    wait_for("every offset committed", Duration::from_secs(180), || {
        let done = committed(&brokers, &group, &topic, 4);
        (done.iter().zip(&ends).all(|(c, e)| *c == Some(*e))).then_some(())
    });
    a.stop(Duration::from_secs(30));
    let mut b = b;
    b.stop(Duration::from_secs(30));

    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (key, lines) in moto.objects(&bucket, "events/") {
        for l in lines {
            let e: serde_json::Value = serde_json::from_str(&l).unwrap();
            let kind = e["kind"].as_str().unwrap();
            assert!(
                key.starts_with(&format!("events/kind={kind}/replicas-{topic}-")),
                "{key}"
            );
            *seen.entry(e["id"].as_u64().unwrap()).or_default() += 1;
        }
    }
    assert_eq!(seen.len() as u64, n, "every event stored");
    let twice = seen.values().filter(|c| **c > 1).count();
    assert_eq!(twice, 0, "events stored twice");
}

#[test]
fn parquet_objects_open_with_pyarrow_as_declared_and_misfits_are_dead_lettered_again_when_read_again()
 {
    use testkit::kafka::{committed, end_offsets};
    use testkit::kraft::Broker;

    let moto = Moto::start();
    let bucket = unique("parquet").to_lowercase();
    moto.create_bucket(&bucket);
    let broker = Broker::start();
    let brokers = broker.address();
    let n = 3_000u64;
    // Every 97th event has an amount that is not a number, the next one no time (a required
    // column), the next one is not a JSON object.
    let misfit = |i: u64| match i % 97 {
        5 => Some("column amount: "),
        6 => Some("column at: required"),
        7 => Some("not one JSON object"),
        _ => None,
    };
    let (topic, group) = broker.input(2, n, |i| match i % 97 {
        5 => format!("{{\"id\":{i},\"at\":1795935600000,\"amount\":\"lots\"}}"),
        6 => format!("{{\"id\":{i},\"service\":\"s{}\"}}", i % 3),
        7 => format!("[{i}]"),
        _ => format!(
            "{{\"id\":{i},\"service\":\"s{}\",\"amount\":{i}.25,\"at\":{},\"tags\":[\"a\",\"t{i}\"],\"address\":{{\"city\":\"Oslo\"}},\"extra\":true}}",
            i % 3,
            1_795_935_600_000 + i
        ),
    });
    let fits = (0..n).filter(|i| misfit(*i).is_none()).count() as u64;
    let dir = tempfile::tempdir().unwrap();
    let yaml = |commit_interval: &str, dlq: &str| {
        format!(
            "\
input:
  kafka:
    brokers: {brokers}
    topics: [{topic}]
    group_id: {group}
    commit_interval: {commit_interval}
    options: {{session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\"}}
output:
  object_store:
    url: s3://{bucket}/orders
    format: parquet
    compression: snappy
    schema:
      - {{name: id, type: int64, required: true}}
      - {{name: service, type: string}}
      - {{name: amount, type: 'decimal(10,2)'}}
      - {{name: at, type: timestamp_ms, required: true}}
      - {{name: tags, type: list<string>}}
      - name: address
        type: struct
        fields: [{{name: city, type: string}}]
    batch: {{max_events: 500, max_age: 500ms}}
    options: {options}
errors:
  output:
    file: {{path: {dlq}}}
",
            options = moto.options(),
            dlq = dir.path().join(dlq).display(),
        )
    };
    // The first worker commits nothing (kill -9 before its first commit): the second reads
    // everything again, finds the objects stored, and dead-letters the misfits again, as the
    // first one's dead letters might not have been delivered.
    let first_dir = dir.path().join("first");
    std::fs::create_dir_all(&first_dir).unwrap();
    let file = pipeline(&first_dir, "orders", &yaml("1h", "first.dlq"));
    let port = free_port();
    let mut first = Worker::with_metrics(sluice!(), &file, &dir.path().join("first.log"), port);
    wait_for(
        "every fitting event stored",
        Duration::from_secs(120),
        || {
            let (_, text) = http_get(port, "/metrics")?;
            let sent = metric_values(&text, "sluice_events_sent_total", &[]);
            (sent.first()?.1 as u64 == fits).then_some(())
        },
    );
    first.kill().unwrap();
    wait_exit(&mut first, Duration::from_secs(10));
    let file = pipeline(dir.path(), "orders", &yaml("1s", "second.dlq"));
    let mut second = Worker::start(sluice!(), &file, &dir.path().join("second.log"), &[]);
    let ends = end_offsets(&brokers, &topic, 2);
    wait_for("every offset committed", Duration::from_secs(120), || {
        let done = committed(&brokers, &group, &topic, 2);
        (done.iter().zip(&ends).all(|(c, e)| *c == Some(*e))).then_some(())
    });
    let summary = second.stop(Duration::from_secs(30));
    assert_eq!(
        summary["received"], n,
        "the second worker read everything again"
    );

    let objects = moto.parquet(&bucket, "orders/");
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for o in &objects {
        let key = o["key"].as_str().unwrap();
        assert!(
            key.starts_with(&format!("orders/orders-{topic}-")) && key.ends_with(".parquet"),
            "{key}"
        );
        assert_eq!(
            o["schema"],
            serde_json::json!([
                "id: int64 not null",
                "service: string",
                "amount: decimal128(10, 2)",
                "at: timestamp[ms, tz=+00:00] not null",
                "tags: list<item: string>",
                "address: struct<city: string>",
            ]),
            "{key}"
        );
        assert_eq!(o["compression"], "SNAPPY", "{key}");
        for row in o["rows"].as_array().unwrap() {
            let id = row["id"].as_u64().unwrap();
            assert_eq!(
                *row,
                serde_json::json!({
                    "id": id,
                    "service": format!("s{}", id % 3),
                    "amount": format!("{id}.25"),
                    "at": format!("2026-11-29T07:00:{:02}.{:03}+00:00", id / 1000, id % 1000),
                    "tags": ["a", format!("t{id}")],
                    "address": {"city": "Oslo"},
                }),
                "{key}"
            );
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len() as u64, fits, "every fitting event stored");
    assert!(seen.keys().all(|i| misfit(*i).is_none()), "a misfit stored");
    assert!(seen.values().all(|c| *c == 1), "an event stored twice");

    let letters = std::fs::read_to_string(dir.path().join("second.dlq")).unwrap();
    let mut dead: BTreeMap<u64, String> = BTreeMap::new();
    for line in letters.lines() {
        let letter: serde_json::Value = serde_json::from_str(line).unwrap();
        // The payload, JSON: an object with an id, or an array of it.
        let payload = &letter["payload"];
        let id = payload["id"].as_u64().or(payload[0].as_u64()).unwrap();
        let reason = letter["headers"]["sluice-error-reason"].as_str().unwrap();
        dead.insert(id, reason.to_string());
    }
    let misfits: Vec<u64> = (0..n).filter(|i| misfit(*i).is_some()).collect();
    assert_eq!(dead.keys().copied().collect::<Vec<_>>(), misfits);
    for (id, reason) in &dead {
        let why = misfit(*id).unwrap();
        assert!(reason.contains(why), "event {id}: {reason}");
    }
}
