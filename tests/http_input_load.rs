//! The `http_server` input under load, through the real binary: many concurrent requests, each
//! event stored exactly once; and a kill -9 in the middle loses nothing that was answered 200.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use testkit::nats::{NatsServer, create_stream, read_stream};
use testkit::{Worker, free_port, logged, pipeline, sluice, unique, wait_exit, wait_for};

fn name(prefix: &str) -> String {
    unique(prefix).replace('-', "_")
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

/// Starts a worker taking requests on `port` with `ack: delivered`, storing in stream `out`.
fn start(dir: &std::path::Path, port: u16, nats: &str, out: &str) -> Worker {
    let file = pipeline(
        dir,
        "load",
        &format!(
            "\
input:
  http_server:
    address: 127.0.0.1:{port}
transforms:
  - jq: '{{id, bucket: (.id % 7)}}'
output:
  jetstream: {{url: {nats}, subject: {out}.events}}
errors: stop
"
        ),
    );
    let log = dir.join("sluice.log");
    let worker = Worker::start(sluice!(), &file, &log, &[]);
    wait_for("the server listening", Duration::from_secs(30), || {
        logged(&log, "http_server: listening").then_some(())
    });
    worker
}

/// A request of the events `ids`, as a JSON array.
fn body(ids: std::ops::Range<u64>) -> String {
    let items: Vec<String> = ids.map(|i| format!("{{\"id\":{i}}}")).collect();
    format!("[{}]", items.join(","))
}

/// How many times each id is in the stream.
async fn stored_ids(js: &async_nats::jetstream::Context, stream: &str) -> HashMap<u64, usize> {
    let mut seen = HashMap::new();
    for m in read_stream(js, stream).await {
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        *seen.entry(v["id"].as_u64().unwrap()).or_default() += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_events_over_concurrent_requests_are_stored_exactly_once() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let out = name("HTTPLOAD");
    create_stream(&js, &out, &[format!("{out}.>")]).await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut worker = start(dir.path(), port, &server.url(), &out);
    let url = format!("http://127.0.0.1:{port}/");
    let (requests, per_request) = (1_000u64, 100u64);
    let http = client();
    let resent = Arc::new(Mutex::new(0usize));
    let answers: Vec<serde_json::Value> = futures_util::stream::iter(0..requests)
        .map(|r| {
            let (http, url, resent) = (http.clone(), url.clone(), resent.clone());
            async move {
                let body = body(r * per_request..(r + 1) * per_request);
                // As a client should: send a 429 or 503'd request again, as the same request.
                loop {
                    let answer = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("idempotency-key", format!("load-{r}"))
                        .body(body.clone())
                        .send()
                        .await
                        .expect("the server answers");
                    let status = answer.status().as_u16();
                    if status == 200 {
                        let text = answer.text().await.unwrap();
                        return serde_json::from_str(&text).unwrap();
                    }
                    assert!(matches!(status, 429 | 503), "answered {status}");
                    *resent.lock().unwrap() += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for a in &answers {
        assert_eq!(
            a,
            &serde_json::json!({"accepted": per_request, "dead_lettered": 0})
        );
    }
    // Every request was answered 200, so every event is stored already.
    let seen = stored_ids(&js, &out).await;
    let n = requests * per_request;
    assert_eq!(seen.len() as u64, n, "events missing");
    assert!(
        (0..n).all(|id| seen.get(&id) == Some(&1)),
        "an event stored twice or lost"
    );
    let summary = worker.stop(Duration::from_secs(30));
    assert_eq!(summary["received"].as_u64(), Some(n), "{summary}");
    eprintln!(
        "requests sent again after 429/503: {}",
        resent.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_during_load_loses_nothing_that_was_answered_200() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let out = name("HTTPKILL");
    create_stream(&js, &out, &[format!("{out}.>")]).await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut worker = start(dir.path(), port, &server.url(), &out);
    let url = format!("http://127.0.0.1:{port}/");
    let http = client();
    let answered: Arc<Mutex<Vec<u64>>> = Arc::default();
    let per_request = 50u64;
    let senders: Vec<_> = (0..8u64)
        .map(|s| {
            let (http, url, answered) = (http.clone(), url.clone(), answered.clone());
            tokio::spawn(async move {
                // Each sender its own ids: request r of sender s holds ids from (r * 8 + s) * 50.
                for r in 0u64.. {
                    let from = (r * 8 + s) * per_request;
                    let sent = http.post(&url).body(body(from..from + per_request)).send();
                    let Ok(answer) = sent.await else { return };
                    if answer.status().as_u16() == 200 {
                        answered.lock().unwrap().extend(from..from + per_request);
                    }
                }
            })
        })
        .collect();
    wait_for("requests answered", Duration::from_secs(60), || {
        (answered.lock().unwrap().len() >= 20_000).then_some(())
    });
    worker.kill().unwrap();
    wait_exit(&mut worker, Duration::from_secs(10));
    for s in senders {
        s.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    let seen = stored_ids(&js, &out).await;
    let lost: Vec<_> = answered
        .iter()
        .filter(|id| !seen.contains_key(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} events answered 200 are not stored: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(seen.values().all(|n| *n == 1), "an event stored twice");
    eprintln!(
        "answered 200: {} events; stored: {} (the rest were in flight at the kill)",
        answered.len(),
        seen.len()
    );
}
