//! Core NATS input and output through the real binary and a real nats-server.

mod common;

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::kafka::unique;
use common::nats::NatsServer;
use common::{log_records, pipeline, sluice, wait_exit, wait_for};
use futures_util::StreamExt;

fn start_worker(file: &std::path::Path, log: &std::path::Path) -> Child {
    sluice()
        .args(["run", "--log-format", "json"])
        .arg(file)
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .unwrap()
}

fn subscribed(log: &std::path::Path) -> bool {
    !log_records(
        &std::fs::read_to_string(log).unwrap_or_default(),
        "nats subscribed",
    )
    .is_empty()
}

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
    let mut workers: Vec<Child> = logs.iter().map(|l| start_worker(&file, l)).collect();
    wait_for("both workers subscribed", Duration::from_secs(30), || {
        logs.iter().all(|l| subscribed(l)).then_some(())
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
        common::signal(w, "TERM");
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
