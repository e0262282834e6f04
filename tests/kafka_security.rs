//! The Kafka input and output's `tls` and `sasl` blocks against Apache Kafka's own listeners:
//! TLS, mutual TLS, SASL PLAIN and SCRAM-SHA-512 with and without TLS, with certificates made in
//! the test; and what a worker says when the broker is not trusted, wants a certificate it does
//! not have, or refuses its password.

use std::path::{Path, PathBuf};
use std::time::Duration;

use testkit::kafka::{KafkaPipeline, Record};
use testkit::kraft::{Broker, Listener, PASSWORD, USER};
use testkit::pki::Pki;
use testkit::{Worker, sluice, unique, wait_exit, wait_for};

/// A Kafka-to-Kafka pipeline; `security` is the input's and output's `tls`/`sasl` lines.
fn kafka_pipeline(dir: &Path, broker: &str, security: &str, input: &str, output: &str) -> PathBuf {
    KafkaPipeline::new(broker, input, &unique("group"), output)
        .input("start_from: earliest")
        .both(security)
        .write(dir, "secure")
}

/// Runs a pipeline on `broker`'s `listener` with `security` and checks that 100 events come out
/// in order. The test's own clients use the plaintext listener.
fn carries_every_event(broker: &Broker, listener: Listener, security: &str) {
    let (input, output) = (unique("in"), unique("out"));
    broker.create_topics(&[(&input, 1), (&output, 1)]);
    let mut producer = broker.producer();
    for i in 0..100 {
        producer.send(&input, None, format!("{{\"id\":{i}}}").as_bytes(), &[]);
    }
    producer.flush();
    let dir = tempfile::tempdir().unwrap();
    let address = broker.address_of(listener);
    let file = kafka_pipeline(dir.path(), &address, security, &input, &output);
    let log = dir.path().join("w.log");
    let mut worker = Worker::start(sluice!(), &file, &log, &[]);
    let mut out = broker.reader(&output, 1);
    wait_for("100 events out", Duration::from_secs(90), || {
        out.poll(Duration::from_millis(200));
        (out.records.len() >= 100).then_some(())
    });
    out.drain(Duration::from_millis(500));
    let ids: Vec<u64> = out.records.iter().map(Record::id).collect();
    assert_eq!(ids, (0..100).collect::<Vec<_>>(), "{}", worker.report());
    worker.stop(Duration::from_secs(30));
}

#[test]
fn events_flow_over_tls_mutual_tls_sasl_plain_and_scram() {
    let pki = Pki::generate();
    let broker = Broker::start_secured(&pki);
    let ca = pki.show("ca.pem");
    let (cert, key) = (pki.show("client.pem"), pki.show("client-key.pem"));
    let tls = format!("tls: {{ca_file: \"{ca}\"}}");
    let login = |mechanism: &str| {
        format!("sasl: {{mechanism: {mechanism}, username: {USER}, password: {PASSWORD}}}")
    };

    // TLS, verifying the broker against the test authority.
    carries_every_event(&broker, Listener::Tls, &tls);
    // Mutual TLS: the listener requires a client certificate signed by the test authority.
    carries_every_event(
        &broker,
        Listener::MutualTls,
        &format!("tls: {{ca_file: \"{ca}\", cert_file: \"{cert}\", key_file: \"{key}\"}}"),
    );
    // SASL without TLS, both mechanisms; and SCRAM over TLS.
    carries_every_event(&broker, Listener::Sasl, &login("PLAIN"));
    carries_every_event(&broker, Listener::Sasl, &login("SCRAM-SHA-512"));
    carries_every_event(
        &broker,
        Listener::SaslTls,
        &format!("{tls}\n{}", login("SCRAM-SHA-512")),
    );
}

#[test]
fn an_encrypted_client_key_with_its_password_works_in_pkcs8_and_traditional_form() {
    let pki = Pki::generate();
    pki.encrypt_client_key("Key-Secret-9");
    let broker = Broker::start_secured(&pki);
    let (ca, cert) = (pki.show("ca.pem"), pki.show("client.pem"));
    for key in ["client-key-pkcs8.pem", "client-key-traditional.pem"] {
        assert!(
            std::fs::read_to_string(pki.path(key))
                .unwrap()
                .contains("ENCRYPTED"),
            "{key} is encrypted"
        );
        carries_every_event(
            &broker,
            Listener::MutualTls,
            &format!(
                "tls: {{ca_file: \"{ca}\", cert_file: \"{cert}\", key_file: \"{}\", key_password: Key-Secret-9}}",
                pki.show(key)
            ),
        );
    }
}

/// A worker that cannot reach the broker stays up and unready, and logs `why` as the reason of
/// a client error.
fn refused(broker: &Broker, listener: Listener, security: &str, why: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = kafka_pipeline(
        dir.path(),
        &broker.address_of(listener),
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
fn an_untrusted_broker_a_missing_client_certificate_or_a_wrong_password_are_clear_errors() {
    let pki = Pki::generate();
    let broker = Broker::start_secured(&pki);
    let ca = pki.show("ca.pem");
    refused(
        &broker,
        Listener::Tls,
        &format!("tls: {{ca_file: \"{}\"}}", pki.show("other-ca.pem")),
        "certificate verify failed",
    );
    // The listener requires a client certificate; the worker has none, and the broker ends
    // the handshake with a bad_certificate alert.
    refused(
        &broker,
        Listener::MutualTls,
        &format!("tls: {{ca_file: \"{ca}\"}}"),
        "alert bad certificate",
    );
    for mechanism in ["PLAIN", "SCRAM-SHA-512"] {
        refused(
            &broker,
            Listener::Sasl,
            &format!(
                "sasl: {{mechanism: {mechanism}, username: {USER}, password: wrong-password}}"
            ),
            "SASL authentication error",
        );
    }
}
