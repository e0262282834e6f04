//! The `http_server` input's connections, through the real binary: idle and slow clients are
//! closed, the connection limit keeps open files from running out, and early answers (401, 413)
//! reach HTTP/1.1 and HTTP/2 clients over TLS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use testkit::{Worker, free_port, http_get, metric_values, wait_for};

/// What the server sends on `stream` until it closes it, waiting at most `deadline`; None if it
/// is still open then.
fn until_closed(stream: &mut TcpStream, deadline: Duration) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(deadline)).unwrap();
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => Some(got),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(got),
        Err(_) => None,
    }
}

/// `curl -X POST` with `args`; the HTTP version and status it got (status 0: no answer).
fn curl(url: &str, args: &[&str]) -> (String, u16) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "60",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (version, status) = text.split_once(' ').unwrap_or_default();
    (version.to_string(), status.trim().parse().unwrap_or(0))
}

const REQUEST: &[u8] = b"POST / HTTP/1.1\r\nHost: sluice\r\nContent-Length: 7\r\n\r\n{\"a\":1}";

#[test]
fn idle_and_slow_connections_are_closed_after_their_timeouts() {
    let (port, metrics) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let _worker = Worker::http_server(
        dir.path(),
        &format!(
            "\
input:
  http_server:
    address: 127.0.0.1:{port}
    header_read_timeout: 1s
    idle_timeout: 2s
output:
  stdout: {{}}
errors: drop
"
        ),
        testkit::sluice!(),
        metrics,
    );
    let connect = || TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut silent = connect();
    let mut slow = connect();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: sluice\r\n")
        .unwrap();
    let mut kept = connect();
    kept.write_all(REQUEST).unwrap();
    // Far above the timeouts: only a server that never closes them gets here.
    let deadline = Duration::from_secs(30);
    assert_eq!(
        until_closed(&mut silent, deadline),
        Some(vec![]),
        "a connection that sends nothing is closed"
    );
    assert_eq!(
        until_closed(&mut slow, deadline),
        Some(vec![]),
        "a head that never ends is not waited for"
    );
    let answered = until_closed(&mut kept, deadline).expect("a kept-alive connection is closed");
    let answered = String::from_utf8_lossy(&answered);
    assert!(answered.starts_with("HTTP/1.1 200 OK"), "{answered}");
    // And the server still serves.
    let (_, status) = curl(
        &format!("http://127.0.0.1:{port}/"),
        &["--data-binary", "{\"b\":2}"],
    );
    assert_eq!(status, 200);
}

/// Open connections by the worker's metrics.
fn open_connections(metrics: u16) -> Option<f64> {
    let (_, text) = http_get(metrics, "/metrics")?;
    Some(
        metric_values(&text, "sluice_http_connections", &[])
            .first()?
            .1,
    )
}

#[test]
fn at_the_connection_limit_new_clients_wait_and_files_never_run_out() {
    let (port, metrics) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    // 64 open files: some 15 for the worker itself, the rest for clients.
    let mut sluice = Command::new("prlimit");
    sluice
        .args(["--nofile=64:64", "--", env!("CARGO_BIN_EXE_sluice")])
        .env("RUST_LOG", "info");
    let worker = Worker::http_server(
        dir.path(),
        &format!(
            "\
input:
  http_server:
    address: 127.0.0.1:{port}
    max_connections: 16
    header_read_timeout: 60s
output:
  stdout: {{}}
errors: drop
"
        ),
        sluice,
        metrics,
    );
    // More idle clients than the worker has files for: the first 16 are taken, the others wait.
    let idle: Vec<TcpStream> = (0..80)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    wait_for("the limit reached", Duration::from_secs(30), || {
        let log = worker.log();
        assert!(!log.contains("Too many open files"), "{log}");
        log.contains("connection limit reached").then_some(())
    });
    assert_eq!(open_connections(metrics), Some(16.0));
    // A client with a request, behind them in the queue.
    let url = format!("http://127.0.0.1:{port}/");
    let waiting = std::thread::spawn({
        let url = url.clone();
        move || curl(&url, &["--data-binary", "{\"n\":1}"])
    });
    // The idle clients leave: their slots go to the next in line, and then to the request.
    drop(idle);
    let (_, status) = waiting.join().unwrap();
    assert_eq!(status, 200, "served once a slot was free");
    let (_, status) = curl(&url, &["--data-binary", "{\"n\":2}"]);
    assert_eq!(status, 200);
    let log = worker.log();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(open_connections(metrics).is_some_and(|n| n <= 16.0));
}

#[test]
fn early_answers_reach_http1_and_http2_clients_over_tls() {
    let pki = testkit::pki::Pki::generate();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _worker = Worker::http_server(
        dir.path(),
        &format!(
            "\
input:
  http_server:
    address: 127.0.0.1:{port}
    auth: {{bearer: t0ken}}
    max_body_bytes: 1MiB
    tls: {{cert_file: {cert}, key_file: {key}}}
output:
  stdout: {{}}
errors: drop
",
            cert = pki.show("broker.pem"),
            key = pki.show("broker-key.pem"),
        ),
        testkit::sluice!(),
        free_port(),
    );
    let big = dir.path().join("big.json");
    // 12 MiB: far more than HTTP/2 flow control lets a client send before it is answered.
    let mut body = vec![b' '; 12 * 1024 * 1024];
    body[0] = b'{';
    body[1] = b'}';
    std::fs::write(&big, body).unwrap();
    let big = format!("@{}", big.display());
    let url = format!("https://127.0.0.1:{port}/");
    let ca = pki.show("ca.pem");
    let post = |option: &str, auth: &str, body: &str| {
        curl(
            &url,
            &["--cacert", &ca, option, "-H", auth, "--data-binary", body],
        )
    };
    for (option, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        for _ in 0..3 {
            let got = post(option, "Authorization: Bearer t0ken", &big);
            assert_eq!(got, (version.into(), 413), "too large over {version}");
            let got = post(option, "Authorization: Bearer wrong", &big);
            assert_eq!(got, (version.into(), 401), "bad token over {version}");
        }
    }
    // The scheme is case-insensitive (RFC 9110), the token is not.
    for (option, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let got = post(option, "authorization: bearer t0ken", "{\"a\":1}");
        assert_eq!(
            got,
            (version.into(), 200),
            "lower-case scheme over {version}"
        );
        let got = post(option, "Authorization: BEARER T0KEN", "{\"a\":1}");
        assert_eq!(
            got,
            (version.into(), 401),
            "token in another case over {version}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_without_streams_is_closed_after_the_idle_timeout() {
    let (port, metrics) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let _worker = Worker::http_server(
        dir.path(),
        &format!(
            "\
input:
  http_server:
    address: 127.0.0.1:{port}
    header_read_timeout: 10s
    idle_timeout: 1s
output:
  stdout: {{}}
errors: drop
"
        ),
        testkit::sluice!(),
        metrics,
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A client that keeps its connection for as long as the server lets it.
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .pool_idle_timeout(None)
        .build()
        .unwrap();
    let answer = client
        .post(format!("http://127.0.0.1:{port}/"))
        .body("{\"a\":1}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (answer.status().as_u16(), answer.version()),
        (200, reqwest::Version::HTTP_2)
    );
    tokio::task::spawn_blocking(move || {
        wait_for(
            "the idle connection closed",
            Duration::from_secs(30),
            || (open_connections(metrics)? == 0.0).then_some(()),
        )
    })
    .await
    .unwrap();
    // The client notices, and its next request goes over a new connection.
    let answer = client
        .post(format!("http://127.0.0.1:{port}/"))
        .body("{\"a\":2}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
}
