//! The `http` output against a local server that answers 200, 429 with `Retry-After`, 500, 400,
//! 413 and 401 on cue: retried answers are sent again in order, refused events follow the error
//! policy with the status and the answer as the reason, and nothing is delivered twice.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use testkit::{log_records, pipeline, sluice, wait_exit};

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    content_type: String,
    authorization: String,
    team: String,
    body: String,
}

#[derive(Default)]
struct Shared {
    seen: Vec<Seen>,
    /// Answers to give, in turn: status, `Retry-After`, body. When none is left, 200.
    cues: VecDeque<(u16, Option<u64>, &'static str)>,
    /// While set, the answer to every request, before the cues.
    outage: Option<(u16, &'static str)>,
}

type Server = Arc<Mutex<Shared>>;

async fn answer(
    State(server): State<Server>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut shared = server.lock().unwrap();
    shared.seen.push(Seen {
        path: uri.path().to_string(),
        content_type: header("content-type"),
        authorization: header("authorization"),
        team: header("x-team"),
        body,
    });
    let (status, retry_after, text) = match shared.outage {
        Some((status, text)) => (status, None, text),
        None => shared.cues.pop_front().unwrap_or((200, None, "ok")),
    };
    let mut response = (StatusCode::from_u16(status).unwrap(), text).into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
    }
    response
}

/// Serves on a free port from a thread of its own until the test ends.
fn serve(cues: Vec<(u16, Option<u64>, &'static str)>) -> (u16, Server) {
    let server: Server = Arc::new(Mutex::new(Shared {
        seen: Vec::new(),
        cues: cues.into(),
        outage: None,
    }));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = server.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().fallback(answer).with_state(state);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (port, server)
}

/// The envelopes of a dead-letter file.
fn letters(path: &Path) -> Vec<serde_json::Value> {
    testkit::lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn run_to_end(file: &Path, dir: &Path) -> String {
    let log = dir.join("w.log");
    let mut w = testkit::Worker::start(sluice!(), file, &log, &[]);
    let status = wait_exit(&mut w, Duration::from_secs(60));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    text
}

#[test]
fn answers_are_retried_in_order_refused_to_the_error_policy_and_delivered_once() {
    let (port, server) = serve(vec![
        (429, Some(1), "slow down"),
        (500, None, "oops"),
        (200, None, "ok"),
        (400, None, "field n is odd"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let text: String = (0..10).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let dead = dir.path().join("dead.jsonl");
    let file = pipeline(
        dir.path(),
        "to-http",
        &format!(
            "\
input:
  file: {{path: {input}}}
output:
  http:
    url: http://127.0.0.1:{port}/events
    headers: {{x-team: a}}
    auth: {{bearer: t0k3n}}
    batch: {{max_events: 4}}
errors:
  output:
    file: {{path: {dead}}}
settings:
  retry: {{initial_backoff: 10ms, max_backoff: 50ms}}
",
            input = input.display(),
            dead = dead.display(),
        ),
    );
    let log = run_to_end(&file, dir.path());

    let seen = server.lock().unwrap().seen.clone();
    let ndjson =
        |ns: std::ops::Range<u32>| -> String { ns.map(|n| format!("{{\"n\":{n}}}\n")).collect() };
    let bodies: Vec<&str> = seen.iter().map(|s| s.body.as_str()).collect();
    // 0-3 three times (429, 500, then 200), then 4-7 (refused) and 8-9.
    assert_eq!(
        bodies,
        [
            ndjson(0..4),
            ndjson(0..4),
            ndjson(0..4),
            ndjson(4..8),
            ndjson(8..10)
        ],
        "{log}"
    );
    for s in &seen {
        assert_eq!(s.path, "/events");
        assert_eq!(s.content_type, "application/x-ndjson");
        assert_eq!(s.authorization, "Bearer t0k3n");
        assert_eq!(s.team, "a");
    }

    let letters = letters(&dead);
    let ns: Vec<u64> = letters
        .iter()
        .map(|l| l["payload"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, [4, 5, 6, 7]);
    for l in &letters {
        assert_eq!(l["headers"]["sluice-error-step"], "output");
        assert_eq!(
            l["headers"]["sluice-error-reason"],
            "HTTP 400 Bad Request: field n is odd"
        );
    }
    let summary = &log_records(&log, "pipeline stopped")[0];
    assert_eq!(summary["sent"], 6, "{summary}");
    assert_eq!(summary["dead_lettered"], 4, "{summary}");
}

#[test]
fn single_events_go_to_the_url_of_their_destination() {
    let (port, server) = serve(Vec::new());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"n\":0,\"to\":\"a\"}\n{\"n\":1,\"to\":\"b\"}\n{\"n\":2,\"to\":\"a\"}\n{\"n\":3}\n",
    )
    .unwrap();
    let dead = dir.path().join("dead.jsonl");
    let file = pipeline(
        dir.path(),
        "routed",
        &format!(
            "\
input:
  file: {{path: {input}}}
transforms:
  - route: {{destination: '.to', key: '.n | tostring'}}
output:
  http:
    url: http://127.0.0.1:{port}/in/{{destination}}
    headers: {{x-team: 'team-{{key}}'}}
    method: put
    encoding: single
errors:
  output:
    file: {{path: {dead}}}
",
            input = input.display(),
            dead = dead.display(),
        ),
    );
    run_to_end(&file, dir.path());
    let seen = server.lock().unwrap().seen.clone();
    let got: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| (s.path.as_str(), s.body.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("/in/a", "{\"n\":0,\"to\":\"a\"}"),
            ("/in/b", "{\"n\":1,\"to\":\"b\"}"),
            ("/in/a", "{\"n\":2,\"to\":\"a\"}"),
        ]
    );
    assert!(seen.iter().all(|s| s.content_type == "application/json"));
    let teams: Vec<&str> = seen.iter().map(|s| s.team.as_str()).collect();
    assert_eq!(teams, ["team-0", "team-1", "team-2"]);
    // The event without a destination has no URL: it is refused, not sent anywhere.
    let letters = letters(&dead);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["payload"]["n"], 3);
    assert!(
        letters[0]["headers"]["sluice-error-reason"]
            .as_str()
            .unwrap()
            .contains("names {destination}")
    );
}

#[test]
fn https_with_mutual_tls_through_a_tls_front() {
    let (port, server) = serve(Vec::new());
    let pki = testkit::pki::Pki::generate();
    let front = testkit::tls_proxy::TlsProxy::start(&pki, true);
    front.forward_to(port);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"n\":0}\n{\"n\":1}\n").unwrap();
    let file = pipeline(
        dir.path(),
        "secure",
        &format!(
            "\
input:
  file: {{path: {input}}}
output:
  http:
    url: https://localhost:{front}/events
    encoding: json_array
    tls: {{ca_file: {ca}, cert_file: {cert}, key_file: {key}}}
errors: stop
",
            input = input.display(),
            front = front.port(),
            ca = pki.path("ca.pem").display(),
            cert = pki.path("client.pem").display(),
            key = pki.path("client-key.pem").display(),
        ),
    );
    run_to_end(&file, dir.path());
    let seen = server.lock().unwrap().seen.clone();
    let bodies: Vec<&str> = seen.iter().map(|s| s.body.as_str()).collect();
    assert_eq!(bodies, ["[{\"n\":0},{\"n\":1}]"]);
    assert_eq!(seen[0].content_type, "application/json");
}

#[test]
fn requests_wait_up_to_max_wait_to_fill() {
    let (port, server) = serve(Vec::new());
    let dir = tempfile::tempdir().unwrap();
    // Ten events over about a tenth of a second: without waiting, several requests.
    let file = pipeline(
        dir.path(),
        "lingering",
        &format!(
            "\
input:
  generate: {{count: 10, rate: 100, template: '{{n: .}}'}}
output:
  http:
    url: http://127.0.0.1:{port}/events
    batch: {{max_events: 10, max_wait: 20s}}
errors: stop
"
        ),
    );
    run_to_end(&file, dir.path());
    let seen = server.lock().unwrap().seen.clone();
    let bodies: Vec<&str> = seen.iter().map(|s| s.body.as_str()).collect();
    let all: String = (0..10).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    assert_eq!(bodies, [all.as_str()]);
}

/// The body of every request the server saw, in order.
fn requests(server: &Server) -> Vec<String> {
    let shared = server.lock().unwrap();
    shared.seen.iter().map(|s| s.body.clone()).collect()
}

#[test]
fn refused_credentials_are_an_outage_retried_until_the_endpoint_takes_the_events() {
    let (port, server) = serve(Vec::new());
    server.lock().unwrap().outage = Some((401, "bad token"));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let n = 20;
    let text: String = (0..n).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let dead = dir.path().join("dead.jsonl");
    let file = pipeline(
        dir.path(),
        "unauthorized",
        &format!(
            "\
input:
  file: {{path: {input}}}
output:
  http:
    url: http://127.0.0.1:{port}/events
    batch: {{max_events: 5}}
errors:
  output:
    file: {{path: {dead}}}
settings:
  retry: {{initial_backoff: 10ms, max_backoff: 100ms, open_after: 3, unready_after: 1s}}
",
            input = input.display(),
            dead = dead.display(),
        ),
    );
    let metrics = testkit::free_port();
    let log = dir.path().join("w.log");
    let mut w = testkit::Worker::with_metrics(sluice!(), &file, &log, metrics);
    let (status, body) = testkit::wait_for(
        "readiness to report the output failing",
        Duration::from_secs(60),
        || testkit::http_get(metrics, "/health/ready").filter(|(s, _)| *s == 503),
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("failing"), "{body}");
    let asked = server.lock().unwrap().seen.len();
    assert!(asked >= 3, "the output kept trying: {asked} requests");
    assert!(
        testkit::lines(&dead).is_empty(),
        "nothing dead-lettered during the outage"
    );
    let (_, scraped) = testkit::http_get(metrics, "/metrics").unwrap();
    let open = testkit::metric_values(
        &scraped,
        "sluice_output_circuit_open",
        &[("pipeline", "unauthorized")],
    );
    assert_eq!(open.first().map(|(_, v)| *v), Some(1.0), "{scraped}");

    // The credentials are fixed: everything goes through, once and in order.
    let failed = {
        let mut shared = server.lock().unwrap();
        shared.outage = None;
        shared.seen.len()
    };
    let status = wait_exit(&mut w, Duration::from_secs(60));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    let bodies = requests(&server)[failed..].concat();
    let all: String = (0..n).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    assert_eq!(bodies, all);
    assert!(testkit::lines(&dead).is_empty());
    let summary = &log_records(&text, "pipeline stopped")[0];
    assert_eq!(summary["sent"], n, "{summary}");
    assert_eq!(summary["dead_lettered"], 0, "{summary}");
}

#[test]
fn a_request_too_large_is_sent_again_in_halves_and_a_single_event_too_large_is_refused() {
    let (port, server) = serve(vec![
        (413, None, "too large"),
        (200, None, "ok"),
        (413, None, "too large"),
        (200, None, "ok"),
        (413, None, "too large"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let text: String = (0..4).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let dead = dir.path().join("dead.jsonl");
    let file = pipeline(
        dir.path(),
        "large",
        &format!(
            "\
input:
  file: {{path: {input}}}
output:
  http:
    url: http://127.0.0.1:{port}/events
    batch: {{max_events: 4}}
errors:
  output:
    file: {{path: {dead}}}
",
            input = input.display(),
            dead = dead.display(),
        ),
    );
    run_to_end(&file, dir.path());
    let ndjson =
        |ns: std::ops::Range<u32>| -> String { ns.map(|n| format!("{{\"n\":{n}}}\n")).collect() };
    assert_eq!(
        requests(&server),
        [
            ndjson(0..4),
            ndjson(0..2),
            ndjson(2..4),
            ndjson(2..3),
            ndjson(3..4)
        ]
    );
    let letters = letters(&dead);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["payload"]["n"], 3);
    assert_eq!(
        letters[0]["headers"]["sluice-error-reason"],
        "HTTP 413 Payload Too Large: too large"
    );
}
