//! The `http_server` input through the real binary, with curl as the client and JetStream as
//! the output: what each request is answered, and which events come out of it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testkit::nats::{NatsServer, create_stream, read_stream, stored};
use testkit::{Worker, eventually, free_port, http_get, logged, metric_values, sluice};
use testkit::{unique, wait_exit, wait_for};

/// Waits until the worker has taken at least `n` events, by its metrics.
fn received(metrics: u16, n: f64) {
    wait_for("events taken", Duration::from_secs(30), || {
        let (_, text) = http_get(metrics, "/metrics")?;
        let now = metric_values(&text, "sluice_events_received_total", &[])
            .first()?
            .1;
        (now >= n).then_some(())
    });
}

fn name(prefix: &str) -> String {
    unique(prefix).replace('-', "_")
}

/// A JetStream context on the server at `url`, and a new stream named after `prefix` that
/// captures `<name>.>`.
async fn new_stream(url: &str, prefix: &str) -> (async_nats::jetstream::Context, String) {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    let name = name(prefix);
    create_stream(&js, &name, &[format!("{name}.>")]).await;
    (js, name)
}

/// The stream's events, as JSON, in stream order.
async fn stored_events(
    js: &async_nats::jetstream::Context,
    stream: &str,
) -> Vec<serde_json::Value> {
    read_stream(js, stream)
        .await
        .iter()
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect()
}

/// Field `i` of each of the stream's events, in stream order.
async fn stored_is(js: &async_nats::jetstream::Context, stream: &str) -> Vec<i64> {
    let events = stored_events(js, stream).await;
    events.iter().map(|e| e["i"].as_i64().unwrap()).collect()
}

/// What curl got: status, HTTP version, body and headers.
struct Answer {
    status: u16,
    version: String,
    body: String,
    headers: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// `curl -X POST` with `args` (headers, `--data-binary`, TLS options) to `url`.
fn curl(url: &str, args: &[&str]) -> Answer {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("headers");
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "60",
            "-o",
            "-",
            "-w",
            "\n%{http_version} %{http_code}",
        ])
        .arg("-D")
        .arg(&headers)
        .args(args)
        .arg(url)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, last) = text.rsplit_once('\n').expect("curl wrote the status");
    let (version, status) = last.split_once(' ').unwrap_or_default();
    Answer {
        status: status.trim().parse().unwrap_or(0),
        version: version.to_string(),
        body: body.to_string(),
        headers: std::fs::read_to_string(headers).unwrap_or_default(),
    }
}

fn start(dir: &Path, yaml: &str, metrics: u16) -> Worker {
    Worker::http_server(dir, yaml, sluice!(), metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_answered_for_what_became_of_its_events() {
    let server = NatsServer::start();
    let nats = server.url();
    let (js, out) = new_stream(&nats, "HTTPOUT").await;
    let (_, dlq) = new_stream(&nats, "HTTPDLQ").await;
    let (port, metrics) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let worker = start(
        dir.path(),
        &format!(
            "\
input:
  http_server:
    address: 127.0.0.1:{port}
    path: /ingest
    auth: {{bearer: t0ken}}
    max_body_bytes: 1KiB
    headers_to_keep: [X-Tenant]
    key_header: X-Key
transforms:
  - jq: '. + {{key: $key, tenant: $headers[\"X-Tenant\"], request: $source.request, index: $source.index}}'
output:
  jetstream: {{url: {nats}, subject: {out}.events}}
errors:
  output:
    jetstream: {{url: {nats}, subject: {dlq}.bad}}
"
        ),
        metrics,
    );
    let url = format!("http://127.0.0.1:{port}/ingest");
    let auth = "Authorization: Bearer t0ken";

    let a = curl(&url, &["--data-binary", "{\"n\":1}"]);
    assert_eq!(a.status, 401, "{}", a.body);
    assert_eq!(a.header("www-authenticate").as_deref(), Some("Bearer"));
    let a = curl(
        &url,
        &["-H", "Authorization: Bearer t0kem", "--data-binary", "{}"],
    );
    assert_eq!(a.status, 401, "{}", a.body);
    let a = curl(&url, &["-X", "GET", "-H", auth]);
    assert_eq!(
        (a.status, a.header("allow").as_deref()),
        (405, Some("POST"))
    );
    let a = curl(
        &format!("http://127.0.0.1:{port}/other"),
        &["-H", auth, "-d", "{}"],
    );
    assert_eq!(a.status, 404, "{}", a.body);
    let big = format!("[{}]", vec!["{\"n\":1}"; 200].join(","));
    let a = curl(&url, &["-H", auth, "--data-binary", &big]);
    assert_eq!(a.status, 413, "{}", a.body);
    let a = curl(
        &url,
        &["-H", auth, "--data-binary", "[{\"n\":1},\n {\"n\": }]"],
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.json()["error"]
            .as_str()
            .unwrap()
            .contains("line 2 column 8"),
        "{}",
        a.body
    );

    // A JSON array: one event per item, with the request's key and kept header.
    let a = curl(
        &url,
        &[
            "-H",
            auth,
            "-H",
            "X-Tenant: acme",
            "-H",
            "X-Key: k1",
            "-H",
            "X-Other: no",
        ]
        .into_iter()
        .chain(["--data-binary", "[{\"n\":1},{\"n\":2},{\"n\":3}]"])
        .collect::<Vec<_>>(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json(),
        serde_json::json!({"accepted": 3, "dead_lettered": 0})
    );
    // NDJSON: a line that is not JSON is dead-lettered, the others go on.
    let ndjson = "{\"n\":4}\nnot json\n\n{\"n\":5}\n";
    let a = curl(
        &url,
        &[
            "-H",
            auth,
            "-H",
            "Content-Type: application/x-ndjson",
            "--data-binary",
            ndjson,
        ],
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json(),
        serde_json::json!({"accepted": 2, "dead_lettered": 1})
    );

    // A 200 came after delivery: the events are stored already, no waiting needed.
    let events = stored_events(&js, &out).await;
    let ns: Vec<_> = events.iter().map(|e| e["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, [1, 2, 3, 4, 5], "in request order: {events:?}");
    assert_eq!(events[0]["key"], "k1");
    assert_eq!(events[0]["tenant"], "acme");
    assert_eq!(events[3]["key"], serde_json::Value::Null);
    let indexes: Vec<_> = events
        .iter()
        .map(|e| e["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 1, 2, 0, 2], "index within the request");
    assert_eq!(events[0]["request"], events[2]["request"]);
    assert_ne!(events[0]["request"], events[3]["request"]);
    let bad = read_stream(&js, &dlq).await;
    assert_eq!(bad.len(), 1);
    assert_eq!(&bad[0].payload[..], b"not json");
    let reason = bad[0]
        .headers
        .as_ref()
        .and_then(|h| h.get("sluice-error-step"));
    assert_eq!(reason.map(|v| v.as_str()), Some("decode"));

    let (_, text) = http_get(metrics, "/metrics").unwrap();
    let answered = |status: &str| {
        metric_values(&text, "sluice_http_requests_total", &[("status", status)])
            .iter()
            .map(|(_, v)| *v)
            .sum::<f64>()
    };
    assert_eq!(
        [
            answered("200"),
            answered("401"),
            answered("413"),
            answered("400")
        ],
        [2.0, 2.0, 1.0, 1.0]
    );
    drop(worker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates_and_http2() {
    let pki = testkit::pki::Pki::generate();
    let server = NatsServer::start();
    let nats = server.url();
    let (js, out) = new_stream(&nats, "HTTPTLS").await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _worker = start(
        dir.path(),
        &format!(
            "\
input:
  http_server:
    address: 127.0.0.1:{port}
    tls: {{cert_file: {cert}, key_file: {key}, client_ca_file: {ca}}}
output:
  jetstream: {{url: {nats}, subject: {out}.events}}
errors: stop
",
            cert = pki.show("broker.pem"),
            key = pki.show("broker-key.pem"),
            ca = pki.show("ca.pem"),
        ),
        free_port(),
    );
    let url = format!("https://127.0.0.1:{port}/");
    let ca = pki.show("ca.pem");
    let (cert, key) = (pki.show("client.pem"), pki.show("client-key.pem"));
    let with_cert = ["--cacert", &ca, "--cert", &cert, "--key", &key];
    for (option, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let a = curl(
            &url,
            &[&with_cert[..], &[option, "--data-binary", "{\"v\":1}"]].concat(),
        );
        assert_eq!((a.status, a.version.as_str()), (200, version), "{}", a.body);
    }
    // Without a client certificate the handshake fails: no answer at all.
    let a = curl(&url, &["--cacert", &ca, "--data-binary", "{\"v\":1}"]);
    assert_eq!(a.status, 0, "{}", a.body);
    // A client that does not trust the server's authority gets nothing either.
    let other = pki.show("other-ca.pem");
    let a = curl(
        &url,
        &[
            "--cacert", &other, "--cert", &cert, "--key", &key, "-d", "{}",
        ],
    );
    assert_eq!(a.status, 0, "{}", a.body);
    assert_eq!(stored(&js, &out).await, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_budget_answers_429_and_the_server_recovers() {
    let mut server = NatsServer::start();
    let (js, out) = new_stream(&server.url(), "HTTPFULL").await;
    let (port, metrics) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let worker = start(
        dir.path(),
        &format!(
            "\
input:
  http_server:
    address: 127.0.0.1:{port}
    ack: accepted
    retry_after: 2s
output:
  jetstream: {{url: {url}, subject: {out}.events}}
errors: stop
settings:
  max_event_bytes: 1KiB
  max_in_flight_bytes: 8KiB
  retry: {{initial_backoff: 50ms, max_backoff: 500ms}}
",
            url = server.url()
        ),
        metrics,
    );
    let url = format!("http://127.0.0.1:{port}/");
    let body = |from: usize| {
        let items: Vec<String> = (from..from + 10)
            .map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(300)))
            .collect();
        format!("[{}]", items.join(","))
    };
    server.stop();
    let a = curl(&url, &["--data-binary", &body(0)]);
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.json()["accepted"], 10);
    // The output is down, so the events stay in flight: about 3 KiB of body and 10 events, so
    // that what is left of the 8 KiB budget cannot take another request like it.
    wait_for("the budget used up", Duration::from_secs(30), || {
        let (_, text) = http_get(metrics, "/metrics")?;
        let used = metric_values(&text, "sluice_bytes_in_flight", &[])
            .first()?
            .1;
        (used >= 5000.0).then_some(())
    });
    let a = curl(&url, &["--data-binary", &body(10)]);
    assert_eq!(a.status, 429, "{}", a.body);
    assert_eq!(a.header("retry-after").as_deref(), Some("2"));

    server.resume();
    eventually(
        "the first events delivered",
        Duration::from_secs(60),
        async || (stored(&js, &out).await? == 10).then_some(()),
    )
    .await;
    let a = wait_for("a request taken again", Duration::from_secs(30), || {
        let a = curl(&url, &["--data-binary", &body(10)]);
        (a.status != 429).then_some(a)
    });
    assert_eq!(a.status, 202, "{}", a.body);
    eventually(
        "every event delivered once",
        Duration::from_secs(60),
        async || (stored(&js, &out).await? == 20).then_some(()),
    )
    .await;
    let is = stored_is(&js, &out).await;
    assert_eq!(is, (0..20).collect::<Vec<_>>());
    drop(worker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_outage_gets_503_never_200_and_a_resent_request_is_stored_once() {
    let mut server = NatsServer::start();
    let (js, out) = new_stream(&server.url(), "HTTPDOWN").await;
    let (port, metrics) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let mut worker = start(
        dir.path(),
        &format!(
            "\
input:
  http_server:
    address: 127.0.0.1:{port}
    response_timeout: 3s
output:
  jetstream: {{url: {url}, subject: {out}.events}}
errors: stop
settings:
  shutdown_timeout: 2s
  retry: {{initial_backoff: 50ms, max_backoff: 300ms}}
",
            url = server.url()
        ),
        metrics,
    );
    let url = format!("http://127.0.0.1:{port}/");
    let events = |from: i64| format!("[{{\"i\":{from}}},{{\"i\":{}}}]", from + 1);
    let a = curl(&url, &["--data-binary", &events(0)]);
    assert_eq!(a.status, 200, "{}", a.body);

    server.stop();
    let key = "Idempotency-Key: order-42";
    let a = curl(&url, &["-H", key, "--data-binary", &events(2)]);
    assert_eq!(
        a.status, 503,
        "undelivered events must not get a 200: {}",
        a.body
    );
    assert_eq!(
        a.json()["unfinished"].as_u64().unwrap() + a.json()["failed"].as_u64().unwrap(),
        2
    );
    assert!(a.header("retry-after").is_some());

    // Sent while the output is down and answered once it is back: 200 only after delivery.
    let waiting = std::thread::spawn({
        let url = url.clone();
        move || curl(&url, &["--data-binary", &events(4)])
    });
    received(metrics, 6.0);
    server.resume();
    let b = waiting.join().unwrap();
    assert!(matches!(b.status, 200 | 503), "{}", b.body);

    // The client sends the 503'd request again, with the same key: stored once.
    let a = wait_for("the resent request taken", Duration::from_secs(30), || {
        let a = curl(&url, &["-H", key, "--data-binary", &events(2)]);
        (a.status == 200).then_some(a)
    });
    assert_eq!(a.json()["accepted"], 2);
    if b.status == 503 {
        let b = curl(&url, &["--data-binary", &events(4)]);
        assert_eq!(b.status, 200, "{}", b.body);
    }
    let mut is = stored_is(&js, &out).await;
    is.sort();
    assert_eq!(is, [0, 1, 2, 3, 4, 5], "every 200'd event once");

    // Shutdown while a request waits for a dead output: answered 503 by the drain deadline.
    server.stop();
    let waiting = std::thread::spawn({
        let url = url.clone();
        move || curl(&url, &["--data-binary", &events(6)])
    });
    let before = if b.status == 503 { 10.0 } else { 8.0 };
    received(metrics, before + 2.0);
    worker.signal("TERM");
    let c = waiting.join().unwrap();
    assert_eq!(c.status, 503, "{}", c.body);
    wait_exit(&mut worker, Duration::from_secs(30));
    let stopped = worker.records("pipeline stopped");
    assert_eq!(
        stopped.last().map(|r| r["unfinished"].clone()),
        Some(true.into())
    );
}

/// Without steps, the input's codec still decides: under `codec: json` an NDJSON line that is
/// not JSON is dead-lettered, as it is with steps, and never reaches the output. An
/// `Idempotency-Key` that cannot name the request's events is refused, not ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_steps_a_line_that_is_not_json_is_dead_lettered() {
    let server = NatsServer::start();
    let nats = server.url();
    let (js, out) = new_stream(&nats, "HTTPPLAIN").await;
    let (_, dlq) = new_stream(&nats, "HTTPPLAINDLQ").await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _worker = start(
        dir.path(),
        &format!(
            "\
input:
  http_server:
    address: 127.0.0.1:{port}
output:
  jetstream: {{url: {nats}, subject: {out}.events}}
errors:
  output:
    jetstream: {{url: {nats}, subject: {dlq}.bad}}
"
        ),
        free_port(),
    );
    let url = format!("http://127.0.0.1:{port}/");
    let ndjson = ["-H", "Content-Type: application/x-ndjson"];
    let a = curl(
        &url,
        &[&ndjson[..], &["--data-binary", "{\"id\":1}\nnot json\n"]].concat(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json(),
        serde_json::json!({"accepted": 1, "dead_lettered": 1})
    );
    assert_eq!(
        stored_events(&js, &out).await,
        [serde_json::json!({"id": 1})]
    );
    let bad = read_stream(&js, &dlq).await;
    assert_eq!(bad.len(), 1);
    assert_eq!(&bad[0].payload[..], b"not json");
    let step = bad[0]
        .headers
        .as_ref()
        .and_then(|h| h.get("sluice-error-step"));
    assert_eq!(step.map(|v| v.as_str()), Some("decode"));

    // `Name;` is how curl sends a header with an empty value.
    let long = format!("Idempotency-Key: {}", "k".repeat(129));
    for header in ["Idempotency-Key;", "Idempotency-Key: has space", &long] {
        let a = curl(&url, &["-H", header, "--data-binary", "{\"id\":2}"]);
        assert_eq!(a.status, 400, "{header:?}: {}", a.body);
        assert!(
            a.json()["error"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key"),
            "{}",
            a.body
        );
    }
    let a = curl(
        &url,
        &[
            "-H",
            "Idempotency-Key: order-7",
            "--data-binary",
            "{\"id\":3}",
        ],
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let ids: Vec<_> = stored_events(&js, &out)
        .await
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 3], "nothing of the refused requests was taken");
}

/// A pipeline full by its count of batches (the output is down; the bytes are far below the
/// budget) answers 429 at once, as a full byte budget does, instead of after the whole
/// `response_timeout`; what it answered 202 is delivered once the output is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_full_of_batches_answers_429_at_once() {
    let mut server = NatsServer::start();
    let (js, out) = new_stream(&server.url(), "HTTPBATCHES").await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _worker = start(
        dir.path(),
        &format!(
            "\
input:
  http_server:
    address: 127.0.0.1:{port}
    ack: accepted
    response_timeout: 5m
output:
  jetstream: {{url: {url}, subject: {out}.events}}
errors: stop
settings:
  batch_size: 1
  channel_batches: 1
  retry: {{initial_backoff: 50ms, max_backoff: 500ms}}
",
            url = server.url()
        ),
        free_port(),
    );
    let url = format!("http://127.0.0.1:{port}/");
    server.stop();
    let mut accepted = 0;
    let full = (0..200).find_map(|i| {
        // curl gives up long before the response timeout: an answer only after it is none.
        let a = curl(
            &url,
            &[
                "--max-time",
                "20",
                "--data-binary",
                &format!("{{\"i\":{i}}}"),
            ],
        );
        match a.status {
            202 => {
                accepted += 1;
                None
            }
            _ => Some(a),
        }
    });
    let a = full.expect("the pipeline fills up");
    assert_eq!(a.status, 429, "{}", a.body);
    assert!(a.header("retry-after").is_some());

    server.resume();
    eventually(
        "every accepted event delivered",
        Duration::from_secs(60),
        async || (stored(&js, &out).await? == accepted).then_some(()),
    )
    .await;
    assert_eq!(
        stored_is(&js, &out).await,
        (0..accepted as i64).collect::<Vec<_>>()
    );
}

/// One request over a kept-alive HTTP/1.1 connection: its status and headers (lower-cased
/// names), or None when the connection ended without an answer.
fn exchange(
    stream: &mut std::io::BufReader<std::net::TcpStream>,
    body: &str,
) -> Option<(u16, Vec<(String, String)>)> {
    use std::io::{BufRead, Read, Write};
    let request = format!(
        "POST / HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.get_mut().write_all(request.as_bytes()).ok()?;
    let mut line = String::new();
    if stream.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        stream.read_line(&mut line).ok()?;
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut content = vec![0; length];
    stream.read_exact(&mut content).ok()?;
    Some((status, headers))
}

/// At shutdown, requests sent on connections kept alive are answered 503 with `Retry-After`
/// and `Connection: close`, not cut off unanswered; the worker then exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_shutdown_requests_on_kept_alive_connections_are_answered_503() {
    let server = NatsServer::start();
    let (js, out) = new_stream(&server.url(), "HTTPBYE").await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut worker = start(
        dir.path(),
        &format!(
            "\
input:
  http_server:
    address: 127.0.0.1:{port}
output:
  jetstream: {{url: {url}, subject: {out}.events}}
errors: stop
settings:
  shutdown_timeout: 20s
",
            url = server.url()
        ),
        free_port(),
    );
    let mut connections: Vec<_> = (0..50)
        .map(|i| {
            let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut stream = std::io::BufReader::new(stream);
            let answer = exchange(&mut stream, &format!("{{\"i\":{i}}}"));
            assert_eq!(answer.map(|a| a.0), Some(200));
            stream
        })
        .collect();
    worker.signal("TERM");
    wait_for("shutdown begun", Duration::from_secs(30), || {
        let log = dir.path().join("sluice.log");
        let message = "shutting down: no new events are read; in-flight events are delivered";
        logged(&log, message).then_some(())
    });
    let answers: Vec<_> = connections
        .iter_mut()
        .map(|stream| exchange(stream, "{\"i\":-1}"))
        .collect();
    let header = |headers: &[(String, String)], name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut taken = 50u64;
    for answer in &answers {
        let (status, headers) = answer.as_ref().expect("every request is answered");
        // Only a request read before the shutdown reached the input could still be taken.
        if *status == 200 {
            taken += 1;
            continue;
        }
        assert_eq!(*status, 503);
        assert!(header(headers, "retry-after").is_some());
        assert_eq!(header(headers, "connection").as_deref(), Some("close"));
    }
    let summary = worker.stopped(Duration::from_secs(30));
    assert_eq!(summary["received"].as_u64(), Some(taken), "{summary}");
    assert_eq!(stored(&js, &out).await, Some(taken));
}
