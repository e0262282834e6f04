//! The Kafka input and output's `tls` and `sasl` blocks against tansu: SASL against tansu's own
//! authentication, TLS through a TLS front (tansu 0.6 cannot serve TLS itself), with
//! certificates made in the test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use testkit::pki::Pki;
use testkit::tansu::Broker;
use testkit::tls_proxy::TlsProxy;
use testkit::{Worker, pipeline, sluice, unique, wait_exit, wait_for};

/// A Kafka-to-Kafka pipeline; `security` is the input's and output's `tls`/`sasl` lines.
fn kafka_pipeline(dir: &Path, broker: &str, security: &str, input: &str, output: &str) -> PathBuf {
    pipeline(
        dir,
        "secure",
        &format!(
            "\
input:
  kafka:
    brokers: {broker}
    topics: [{input}]
    group_id: {group}
    start_from: earliest{security}
output:
  kafka:
    brokers: {broker}
    topic: {output}{security}
errors: stop
",
            group = unique("group"),
        ),
    )
}

/// Runs a pipeline on `broker` with `security` and checks that 100 events come out in order.
fn carries_every_event(broker: &Broker, security: &str) {
    let (input, output) = (unique("in"), unique("out"));
    broker.create_topics(&[(&input, 1), (&output, 1)]);
    let mut producer = broker.producer();
    for i in 0..100 {
        producer.send(&input, None, format!("{{\"id\":{i}}}").as_bytes(), &[]);
    }
    producer.flush();
    let dir = tempfile::tempdir().unwrap();
    let file = kafka_pipeline(dir.path(), &broker.address(), security, &input, &output);
    let log = dir.path().join("w.log");
    let mut worker = Worker::start(sluice!(), &file, &log, &[]);
    let mut out = broker.reader(&output, 1);
    wait_for("100 events out", Duration::from_secs(90), || {
        out.poll(Duration::from_millis(200));
        (out.records.len() >= 100).then_some(())
    });
    out.drain(Duration::from_millis(500));
    let ids: Vec<u64> = out
        .records
        .iter()
        .map(|r| r.json()["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (0..100).collect::<Vec<_>>(), "{}", worker.report());
    worker.stop(Duration::from_secs(30));
}

/// A broker behind a TLS front (requiring client certificates when `mutual`), and the client
/// properties of the test's own clients.
fn behind_tls(pki: &Pki, mutual: bool) -> (TlsProxy, Broker) {
    let front = TlsProxy::start(pki, mutual);
    let (ca, cert, key) = (
        pki.show("ca.pem"),
        pki.show("client.pem"),
        pki.show("client-key.pem"),
    );
    let mut client = vec![
        ("security.protocol", "SSL"),
        ("ssl.ca.location", ca.as_str()),
    ];
    if mutual {
        client.push(("ssl.certificate.location", cert.as_str()));
        client.push(("ssl.key.location", key.as_str()));
    }
    let broker = Broker::start_behind(&front, &client);
    (front, broker)
}

#[test]
fn events_flow_over_tls_and_mutual_tls() {
    let pki = Pki::generate();
    let ca = pki.show("ca.pem");
    let (cert, key) = (pki.show("client.pem"), pki.show("client-key.pem"));

    // TLS, verifying the broker against the test authority.
    let (_front, broker) = behind_tls(&pki, false);
    carries_every_event(&broker, &format!("\n    tls: {{ca_file: \"{ca}\"}}"));
    drop(broker);

    // Mutual TLS: the front requires a client certificate signed by the test authority.
    let (_front, broker) = behind_tls(&pki, true);
    carries_every_event(
        &broker,
        &format!("\n    tls: {{ca_file: \"{ca}\", cert_file: \"{cert}\", key_file: \"{key}\"}}"),
    );
}

/// A worker that cannot reach the broker stays up and unready, and logs `why` as the reason of
/// a client error.
fn refused(broker: &Broker, security: &str, why: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = kafka_pipeline(
        dir.path(),
        &broker.address(),
        security,
        &unique("in"),
        &unique("out"),
    );
    let log = dir.path().join("w.log");
    let port = testkit::free_port();
    let mut worker = Worker::with_metrics(sluice!(), &file, &log, port);
    wait_for(
        &format!("a kafka client error naming {why}"),
        Duration::from_secs(60),
        || {
            worker
                .records("kafka client error")
                .iter()
                .any(|r| r["reason"].as_str().is_some_and(|e| e.contains(why)))
                .then_some(())
        },
    );
    let (status, body) = wait_for("the health endpoint", Duration::from_secs(30), || {
        testkit::http_get(port, "/health/ready")
    });
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("kafka input not connected"), "{body}");
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker keeps running"
    );
    assert!(
        !worker.log().contains("wrong-password"),
        "the password is never logged"
    );
    testkit::signal(&worker, "TERM");
    let status = wait_exit(&mut worker, Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", worker.report());
}

#[test]
fn an_untrusted_broker_a_missing_client_certificate_or_a_refused_login_are_clear_errors() {
    let pki = Pki::generate();
    let ca = pki.show("ca.pem");
    let (_front, broker) = behind_tls(&pki, false);
    refused(
        &broker,
        &format!("\n    tls: {{ca_file: \"{}\"}}", pki.show("other-ca.pem")),
        "certificate verify failed",
    );
    drop(broker);

    // The front requires a client certificate; the test's own clients have one, the worker not.
    let (_front, broker) = behind_tls(&pki, true);
    refused(
        &broker,
        &format!("\n    tls: {{ca_file: \"{ca}\"}}"),
        "certificate required",
    );
    drop(broker);

    let broker = Broker::start_refusing_logins();
    refused(
        &broker,
        "\n    sasl: {mechanism: SCRAM-SHA-512, username: nobody, password: wrong-password}",
        "SASL authentication error",
    );
}
