//! Secrets never reach a log line, at any level, or an error message: librdkafka passwords,
//! misspelled ones included, NATS passwords and tokens, and credentials written in server URLs.

use std::process::Stdio;
use std::time::Duration;

use testkit::nats::NatsServer;
use testkit::{Process, logged, pipeline, sluice, wait_exit, wait_for};

/// Everything `sluice run` wrote to stdout and stderr at `RUST_LOG=trace` until SIGTERM, once
/// `ready` is in its log (or it exited by itself).
fn run_at_trace(file: &std::path::Path, ready: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("w.log");
    let out = dir.path().join("w.out");
    let mut child = Process(
        sluice!()
            // The NATS client's own records are only kept when RUST_LOG names it.
            .env("RUST_LOG", "trace,async_nats=trace")
            .args(["run", "--log-format", "json"])
            .arg(file)
            .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap(),
    );
    wait_for(ready, Duration::from_secs(60), || {
        (logged(&log, ready) || child.try_wait().unwrap().is_some()).then_some(())
    });
    if child.try_wait().unwrap().is_none() {
        testkit::signal(&child, "TERM");
    }
    wait_exit(&mut child, Duration::from_secs(60));
    std::fs::read_to_string(&log).unwrap() + &std::fs::read_to_string(&out).unwrap()
}

/// `sluice check` and `sluice run` both refuse the pipeline file `name` holding `yaml` with exit
/// code 1, printing every line of `expected` (after the file's name) and none of `secrets`.
fn refused_with(name: &str, yaml: &str, expected: &[&str], secrets: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let file = &pipeline(dir.path(), name, yaml);
    for command in ["check", "run"] {
        let out = sluice!().arg(command).arg(file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        for line in expected {
            assert!(
                stderr.contains(&format!("{}:{line}", file.display())),
                "{command}: no `{line}` in {stderr}"
            );
        }
        assert_hidden(&stderr, secrets, command);
    }
}

fn assert_hidden(output: &str, secrets: &[&str], case: &str) {
    assert!(!output.is_empty(), "{case}: nothing was logged");
    for secret in secrets {
        assert!(
            !output.contains(secret),
            "{case}: `{secret}` appears in:\n{}",
            output
                .lines()
                .filter(|l| l.contains(secret))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn a_misspelled_librdkafka_property_is_reported_by_check_without_its_value() {
    refused_with(
        "misspelled",
        "\
input:
  kafka:
    brokers: 127.0.0.1:9092
    topics: [t]
    group_id: g
    options:
      sasl.username: app
      sasl.passwrod: Hunter2-misspelled
      security.protocol: nonsense
output:
  stdout: {}
errors: stop
",
        &[
            "8:22: error: unknown librdkafka property `sasl.passwrod`",
            "9:26: error: librdkafka property `security.protocol`: Invalid value \"nonsense\"",
        ],
        &["Hunter2"],
    );
}

#[test]
fn kafka_passwords_stay_out_of_trace_logs() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = format!("127.0.0.1:{}", testkit::free_port());
    let file = pipeline(
        dir.path(),
        "kafka-secrets",
        &format!(
            "\
input:
  kafka:
    brokers: {nowhere}
    topics: [t]
    group_id: g
    options:
      security.protocol: sasl_plaintext
      sasl.mechanism: PLAIN
      sasl.username: app
      sasl.password: Consumer-Secret-1
      debug: all
output:
  kafka:
    brokers: {nowhere}
    topic: out
    options:
      security.protocol: sasl_plaintext
      sasl.mechanism: PLAIN
      sasl.username: app
      sasl.password: Producer-Secret-2
      debug: all
errors: stop
"
        ),
    );
    let output = run_at_trace(&file, "kafka consumer subscribed");
    assert_hidden(
        &output,
        &["Consumer-Secret-1", "Producer-Secret-2"],
        "kafka",
    );
}

#[test]
fn nats_passwords_tokens_and_url_credentials_stay_out_of_trace_logs() {
    let dir = tempfile::tempdir().unwrap();
    let users = NatsServer::start_with(&["-js", "--user", "bob", "--pass", "Url-Secret-3"]);
    let tokens = NatsServer::start_with(&["-js", "--auth", "Token-Secret-4"]);
    let cases = [
        // Credentials in the URL, right and wrong.
        (
            format!(
                "nats: {{url: \"nats://bob:Url-Secret-3@127.0.0.1:{}\", subjects: [a]}}",
                users.port
            ),
            "nats subscribed",
            vec!["Url-Secret-3"],
        ),
        (
            format!(
                "jetstream: {{url: \"nats://bob:Wrong-Secret-5@127.0.0.1:{}\", stream: S, consumer: c}}",
                users.port
            ),
            "pipeline started",
            vec!["Wrong-Secret-5"],
        ),
        // A token in the URL, and in auth.
        (
            format!(
                "nats: {{url: \"nats://Token-Secret-4@127.0.0.1:{}\", subjects: [a]}}",
                tokens.port
            ),
            "nats subscribed",
            vec!["Token-Secret-4"],
        ),
        (
            format!(
                "nats: {{url: \"{}\", subjects: [a], auth: {{token: Token-Secret-4}}}}",
                tokens.url()
            ),
            "nats subscribed",
            vec!["Token-Secret-4"],
        ),
        // A password in auth.
        (
            format!(
                "nats: {{url: \"{}\", subjects: [a], auth: {{user: bob, password: Url-Secret-3}}}}",
                users.url()
            ),
            "nats subscribed",
            vec!["Url-Secret-3"],
        ),
    ];
    for (input, ready, secrets) in cases {
        let file = pipeline(
            dir.path(),
            "nats-secrets",
            &format!("input:\n  {input}\noutput:\n  stdout: {{}}\nerrors: stop\n"),
        );
        let output = run_at_trace(&file, ready);
        assert_hidden(&output, &secrets, &input);
        if ready == "nats subscribed" {
            assert!(output.contains(ready), "{input}: did not connect: {output}");
        }
    }
}

#[test]
fn a_url_that_does_not_parse_is_reported_with_its_password_hidden() {
    refused_with(
        "bad-url",
        "\
input:
  nats:
    url: nats://bob:Url-Secret-6@host:notaport
    subjects: [a]
output:
  jetstream:
    url: nats://Token-Secret-7@127.0.0.1:4222,nats://Token-Secret-8@127.0.0.1:4223
    subject: out
errors: stop
",
        &[
            "3:10: error: invalid server `nats://bob:<redacted>@host:notaport`",
            "7:10: error: the servers in url give different credentials",
        ],
        &["Url-Secret-6", "Token-Secret-7", "Token-Secret-8"],
    );
}
