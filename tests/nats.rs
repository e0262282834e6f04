//! Core NATS input and output through the real binary and a real nats-server.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use testkit::nats::NatsServer;
use testkit::{
    Worker, eventually, log_records, logged, pipeline, sluice, unique, wait_exit, wait_for,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_group_of_two_handles_every_event_once() {
    let server = NatsServer::start();
    let (input, output) = (unique("in"), unique("out"));
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "queue",
        &format!(
            "\
input:
  nats:
    url: {url}
    subjects: [\"{input}.>\"]
    queue_group: workers
transforms:
  - jq: '{{id, site: ($source.subject | split(\".\") | last)}}'
  - route:
      destination: '\"{output}.\" + .site'
      headers:
        x-id: '.id'
output:
  nats:
    url: {url}
    subject: {output}.unrouted
errors: stop
",
            url = server.url()
        ),
    );
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut out = client.subscribe(format!("{output}.>")).await.unwrap();
    client.flush().await.unwrap();

    let logs = [dir.path().join("w1.log"), dir.path().join("w2.log")];
    let mut workers: Vec<_> = logs
        .iter()
        .map(|l| Worker::start(sluice!(), &file, l, &[]))
        .collect();
    wait_for("both workers subscribed", Duration::from_secs(30), || {
        logs.iter()
            .all(|l| logged(l, "nats subscribed"))
            .then_some(())
    });

    let n = 5_000u64;
    for i in 0..n {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("trace", format!("t{i}").as_str());
        client
            .publish_with_headers(
                format!("{input}.site{}", i % 4),
                headers,
                format!("{{\"id\":{i}}}").into(),
            )
            .await
            .unwrap();
    }
    client.flush().await.unwrap();

    let mut seen: HashMap<u64, usize> = HashMap::new();
    // One deadline for the whole subscription, read as messages arrive: each is checked, which
    // a polled condition would not do.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < n as usize {
        let msg = tokio::time::timeout_at(deadline, out.next())
            .await
            .expect("every event arrives")
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        let id = v["id"].as_u64().unwrap();
        assert_eq!(
            msg.subject.as_str(),
            format!("{output}.site{}", id % 4),
            "routed by content"
        );
        let headers = msg.headers.as_ref().expect("headers");
        assert_eq!(
            headers.get("x-id").map(|h| h.as_str()),
            Some(id.to_string().as_str())
        );
        assert_eq!(
            headers.get("trace").map(|h| h.as_str()),
            Some(format!("t{id}").as_str()),
            "input headers kept"
        );
        *seen.entry(id).or_default() += 1;
    }
    assert!(seen.values().all(|c| *c == 1), "an event came out twice");

    for w in &workers {
        testkit::signal(w, "TERM");
    }
    let mut handled = Vec::new();
    for (w, log) in workers.iter_mut().zip(&logs) {
        assert!(wait_exit(w, Duration::from_secs(30)).success());
        let text = std::fs::read_to_string(log).unwrap();
        let summary = &log_records(&text, "pipeline stopped")[0];
        assert_eq!(summary["received"], summary["sent"], "{summary}");
        handled.push(summary["sent"].as_u64().unwrap());
    }
    assert_eq!(
        handled.iter().sum::<u64>(),
        n,
        "every event handled by exactly one worker"
    );
    assert!(
        handled.iter().all(|h| *h > 0),
        "both workers shared the work: {handled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_output_confirms_publishes_and_drops_redelivered_duplicates() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let (stream, subject) = (unique("OUT").replace('-', "_"), unique("orders"));
    let mut out = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: stream.clone(),
            subjects: vec![format!("{subject}.>")],
            ..Default::default()
        })
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "js-out",
        &format!(
            "\
input:
  stdin: {{}}
transforms:
  - jq: '.items[] | {{sku, order: $source.line}}'
  - route:
      destination: '\"{subject}.\" + .sku'
output:
  jetstream:
    url: {url}
    subject: {subject}.unknown
errors: stop
",
            url = server.url()
        ),
    );
    let input: String = (0..100)
        .map(|i| format!("{{\"items\":[{{\"sku\":\"a{i}\"}},{{\"sku\":\"b{i}\"}}]}}\n"))
        .collect();
    // The same input twice, as after a redelivery: the second run publishes the same ids.
    for run in 0..2 {
        let done = testkit::run_with_stdin(sluice!(), &file, input.as_bytes());
        assert!(
            done.status.success(),
            "run {run}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        let summary = &log_records(&String::from_utf8_lossy(&done.stderr), "pipeline stopped")[0];
        assert_eq!(
            summary["sent"], 200,
            "every publish acknowledged by the stream: {summary}"
        );
    }
    let info = out.info().await.unwrap();
    assert_eq!(
        info.state.messages, 200,
        "two outputs per input, each stored once"
    );

    let consumer = out
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("check".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.fetch().max_messages(200).messages().await.unwrap();
    let mut ids = Vec::new();
    while let Some(m) = messages.next().await {
        let m = m.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(
            m.subject.as_str(),
            format!("{subject}.{}", v["sku"].as_str().unwrap())
        );
        ids.push(
            m.headers
                .as_ref()
                .unwrap()
                .get("Nats-Msg-Id")
                .unwrap()
                .as_str()
                .to_string(),
        );
    }
    assert_eq!(ids.len(), 200);
    assert_eq!(ids[0], "stdin:1#0");
    assert_eq!(ids[1], "stdin:1#1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_server_connection() {
    let mut server = NatsServer::start();
    let (input, output) = (unique("in"), unique("out"));
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "conn",
        &format!(
            "\
input:
  nats:
    url: {url}
    subjects: [\"{input}\"]
output:
  nats:
    url: {url}
    subject: {output}
errors: stop
",
            url = server.url()
        ),
    );
    let port = testkit::free_port();
    let log = dir.path().join("w.log");
    let mut w = Worker::with_metrics(sluice!(), &file, &log, port);
    let ready = |want: (u16, &str)| {
        wait_for(
            &format!("/health/ready {want:?}"),
            Duration::from_secs(60),
            || testkit::http_get(port, "/health/ready").filter(|r| (r.0, r.1.as_str()) == want),
        )
    };
    ready((200, "ready\n"));

    // Both clients notice on their own.
    server.stop();
    ready((
        503,
        "not ready: conn: nats input not connected; conn: nats output not connected\n",
    ));
    assert_eq!(
        testkit::http_get(port, "/health/live").map(|r| r.0),
        Some(200),
        "still live while the server is away"
    );
    let (_, metrics) = testkit::http_get(port, "/metrics").unwrap();
    let connected = testkit::metric_values(&metrics, "sluice_connected", &[("pipeline", "conn")]);
    assert_eq!(connected.len(), 2, "{connected:?}");
    assert!(connected.iter().all(|(_, v)| *v == 0.0), "{connected:?}");

    server.resume();
    ready((200, "ready\n"));
    // Events flow again after the reconnection.
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut out = client.subscribe(output.clone()).await.unwrap();
    client.flush().await.unwrap();
    let mut i = 0u64;
    // The input may resubscribe a moment after readiness: publish until one comes out.
    let first = eventually(
        "an event out after the reconnection",
        Duration::from_secs(30),
        async || {
            client
                .publish(input.clone(), format!("{{\"id\":{i}}}").into())
                .await
                .unwrap();
            i += 1;
            tokio::time::timeout(Duration::from_millis(200), out.next())
                .await
                .ok()
                .flatten()
        },
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&first.payload).unwrap();
    assert!(v["id"].as_u64().unwrap() < i);

    testkit::signal(&w, "TERM");
    assert!(wait_exit(&mut w, Duration::from_secs(30)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subject_of_an_input_is_read_each_in_order() {
    let server = NatsServer::start();
    let (input, output) = (unique("in"), unique("out"));
    let subjects = [
        format!("{input}.a"),
        format!("{input}.b"),
        format!("{input}.c"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "subjects",
        &format!(
            "\
input:
  nats:
    url: {url}
    subjects: [\"{}\", \"{}\", \"{}\"]
transforms:
  - jq: '{{id, subject: $source.subject}}'
output:
  nats:
    url: {url}
    subject: {output}
errors: stop
",
            subjects[0],
            subjects[1],
            subjects[2],
            url = server.url()
        ),
    );
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut out = client.subscribe(output.clone()).await.unwrap();
    client.flush().await.unwrap();
    let log = dir.path().join("w.log");
    let mut w = Worker::start(sluice!(), &file, &log, &[]);
    wait_for("subscribed", Duration::from_secs(30), || {
        logged(&log, "nats subscribed").then_some(())
    });

    // The first two subjects interleaved, the third only at the end: none may wait on another.
    let n = 3_000u64;
    for i in 0..n {
        let subject = if i >= n - 100 {
            &subjects[2]
        } else {
            &subjects[(i % 2) as usize]
        };
        client
            .publish(subject.clone(), format!("{{\"id\":{i}}}").into())
            .await
            .unwrap();
    }
    client.flush().await.unwrap();

    let mut last: HashMap<String, u64> = HashMap::new();
    // One deadline for the whole subscription, read as messages arrive: each is checked, which
    // a polled condition would not do.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for _ in 0..n {
        let msg = tokio::time::timeout_at(deadline, out.next())
            .await
            .expect("every event arrives")
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        let (id, subject) = (v["id"].as_u64().unwrap(), v["subject"].as_str().unwrap());
        let expected = if id >= n - 100 {
            &subjects[2]
        } else {
            &subjects[(id % 2) as usize]
        };
        assert_eq!(subject, expected.as_str(), "event {id} names its subject");
        if let Some(before) = last.insert(subject.to_string(), id) {
            assert!(before < id, "{subject}: {id} came after {before}");
        }
    }
    assert_eq!(last.len(), 3, "events of every subject came out");
    assert_eq!(last[&subjects[2]], n - 1);

    testkit::signal(&w, "TERM");
    assert!(wait_exit(&mut w, Duration::from_secs(30)).success());
    let text = std::fs::read_to_string(&log).unwrap();
    let summary = &log_records(&text, "pipeline stopped")[0];
    assert_eq!(summary["sent"], n, "nothing more came out: {summary}");
}
