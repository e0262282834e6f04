//! Graceful shutdown: SIGTERM stops reading, delivers everything read, and exits 0.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use testkit::{Worker, lines, log_records, pipeline, sluice, wait_exit, wait_for};

#[test]
fn sigterm_during_a_run_delivers_everything_read_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let file = pipeline(
        dir.path(),
        "endless",
        &format!(
            "\
input:
  generate:
    rate: 20000
    template: '{{id: ., pad: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}'
transforms:
  - jq: '{{id, len: (.pad | length)}}'
output:
  file:
    path: {}
errors: stop
",
            out.display()
        ),
    );
    let mut child = sluice!()
        .args(["run", "--log-format", "json"])
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("events in the output", Duration::from_secs(30), || {
        (lines(&out).len() >= 5000).then_some(())
    });
    testkit::signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "exit {status:?}: {stderr}");

    let summary = &log_records(&stderr, "pipeline stopped")[0];
    let received = summary["received"].as_u64().unwrap();
    let written = lines(&out);
    assert_eq!(
        summary["sent"].as_u64(),
        Some(received),
        "every event read was delivered: {summary}"
    );
    assert_eq!(written.len() as u64, received);
    for (i, line) in written.iter().enumerate() {
        assert_eq!(
            line,
            &format!("{{\"id\":{i},\"len\":40}}"),
            "no gap, no duplicate, in order"
        );
    }
}

#[test]
fn sigterm_with_stdin_still_open_exits_and_keeps_what_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let file = pipeline(
        dir.path(),
        "stdin",
        &format!(
            "input:\n  stdin: {{}}\ntransforms:\n  - jq: .n\noutput:\n  file:\n    path: {}\nerrors: stop\n",
            out.display()
        ),
    );
    let mut child = sluice!()
        .arg("run")
        .arg(&file)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for n in 0..500 {
        writeln!(stdin, "{{\"n\":{n}}}").unwrap();
    }
    stdin.flush().unwrap();
    wait_for("500 lines in the output", Duration::from_secs(30), || {
        (lines(&out).len() == 500).then_some(())
    });
    testkit::signal(&child, "TERM");
    // stdin stays open: shutdown must not wait for end of input.
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert_eq!(
        lines(&out),
        (0..500).map(|n| n.to_string()).collect::<Vec<_>>()
    );
    drop(stdin);
}

/// SIGTERM exits at once and cleanly (code 0) when an input never got to read anything: nothing
/// listening, a server that refuses the credentials, a server without JetStream, for each input
/// that talks to a broker. Before, NATS and JetStream inputs waited out the whole
/// shutdown_timeout and exited 1.
#[test]
fn sigterm_exits_cleanly_when_an_input_never_connected() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = format!("127.0.0.1:{}", testkit::free_port());
    let auth = testkit::nats::NatsServer::start_with(&["-js", "--user", "bob", "--pass", "right"]);
    let no_jetstream = testkit::nats::NatsServer::start_with(&[]);
    let wrong = format!("nats://bob:wrong@127.0.0.1:{}", auth.port);
    let cases = [
        (
            "kafka, nothing listening",
            format!("kafka: {{brokers: \"{nowhere}\", topics: [t], group_id: g}}"),
        ),
        (
            "nats, nothing listening",
            format!("nats: {{url: \"nats://{nowhere}\", subjects: [a]}}"),
        ),
        (
            "nats, wrong password",
            format!("nats: {{url: \"{wrong}\", subjects: [a]}}"),
        ),
        (
            "jetstream, nothing listening",
            format!("jetstream: {{url: \"nats://{nowhere}\", stream: S, consumer: c}}"),
        ),
        (
            "jetstream, wrong password",
            format!("jetstream: {{url: \"{wrong}\", stream: S, consumer: c}}"),
        ),
        (
            "jetstream, no jetstream",
            format!(
                "jetstream: {{url: \"{}\", stream: S, consumer: c}}",
                no_jetstream.url()
            ),
        ),
    ];
    for (case, input) in cases {
        let log = dir.path().join("w.log");
        let file = pipeline(
            dir.path(),
            "unconnected",
            &format!(
                "input:\n  {input}\noutput:\n  stdout: {{}}\nerrors: stop\nsettings:\n  shutdown_timeout: 120s\n"
            ),
        );
        let mut child = Worker::start(sluice!(), &file, &log, &[]);
        wait_for("the pipeline to start", Duration::from_secs(30), || {
            testkit::logged(&log, "pipeline started").then_some(())
        });
        testkit::signal(&child, "TERM");
        // Far less than the shutdown timeout: waiting it out is the failure.
        let status = wait_exit(&mut child, Duration::from_secs(60));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(status.success(), "{case}: exit {status:?}: {text}");
        assert!(
            log_records(
                &text,
                "shutdown deadline passed with events in flight; they were not acknowledged"
            )
            .is_empty(),
            "{case}: {text}"
        );
        assert_eq!(
            log_records(&text, "pipeline stopped").len(),
            1,
            "{case}: {text}"
        );
    }
}

/// When the shutdown deadline passes with events in flight, the process exits 1 and still logs
/// each pipeline's totals, saying it did not finish.
#[test]
fn a_deadline_exit_still_logs_the_pipeline_totals() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("w.log");
    let nowhere = format!("nats://127.0.0.1:{}", testkit::free_port());
    let file = pipeline(
        dir.path(),
        "stuck",
        &format!(
            "input:\n  generate:\n    count: 10\n    template: '{{n: .}}'\noutput:\n  jetstream:\n    url: {nowhere}\n    subject: out\nerrors: stop\nsettings:\n  shutdown_timeout: 1s\n"
        ),
    );
    let port = testkit::free_port();
    let mut child = Worker::with_metrics(sluice!(), &file, &log, port);
    // Every event was read; none can be delivered.
    wait_for("the events to be read", Duration::from_secs(30), || {
        let (_, body) = testkit::http_get(port, "/metrics")?;
        let read = testkit::metric_values(&body, "sluice_events_received_total", &[]);
        (read.first()?.1 == 10.0).then_some(())
    });
    testkit::signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{text}");
    assert_eq!(
        log_records(
            &text,
            "shutdown deadline passed with events in flight; they were not acknowledged"
        )
        .len(),
        1,
        "{text}"
    );
    let summary = &log_records(&text, "pipeline stopped");
    assert_eq!(summary.len(), 1, "{text}");
    assert_eq!(summary[0]["pipeline"], "stuck");
    assert_eq!(summary[0]["unfinished"], true);
    assert_eq!(summary[0]["sent"], 0);
    assert_eq!(summary[0]["received"], 10);
    assert_eq!(summary[0]["in_flight"], 10, "{}", summary[0]);
}

/// A broker that cannot be reached is logged once as a warning naming it, not once per attempt
/// and not twice per attempt (by the client library and by sluice).
#[test]
fn an_unreachable_broker_is_logged_once_per_failure_and_names_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = testkit::free_port();
    for (input, message, field) in [
        (
            format!("nats: {{url: \"nats://bob:Hidden-1@127.0.0.1:{port}\", subjects: [a]}}"),
            "nats connection attempt failed; retrying",
            "servers",
        ),
        (
            format!("kafka: {{brokers: \"127.0.0.1:{port}\", topics: [t], group_id: g}}"),
            "kafka client error",
            "reason",
        ),
    ] {
        let log = dir.path().join("w.log");
        let file = pipeline(
            dir.path(),
            "unreachable",
            &format!("input:\n  {input}\noutput:\n  stdout: {{}}\nerrors: stop\n"),
        );
        let mut child = Worker::start(sluice!(), &file, &log, &[]);
        wait_for(message, Duration::from_secs(30), || {
            testkit::logged(&log, message).then_some(())
        });
        testkit::signal(&child, "TERM");
        assert!(wait_exit(&mut child, Duration::from_secs(60)).success());
        let text = std::fs::read_to_string(&log).unwrap();
        let records: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let warned: Vec<&serde_json::Value> =
            records.iter().filter(|r| r["message"] == message).collect();
        assert_eq!(warned[0]["level"], "WARN", "{text}");
        assert!(
            warned[0][field]
                .as_str()
                .unwrap()
                .contains(&format!("127.0.0.1:{port}")),
            "{text}"
        );
        // Only sluice's own record of each failure: not the client libraries' as well.
        let from_library = |r: &serde_json::Value| {
            r["target"] == "async_nats"
                || (r["target"] == "librdkafka"
                    && r["message"].as_str().is_some_and(|m| m.contains("FAIL")))
        };
        assert!(!records.iter().any(from_library), "{text}");
        if field == "servers" {
            assert_eq!(warned.len(), 1, "one warning until it connects: {text}");
            assert!(!text.contains("Hidden-1"), "{text}");
        }
    }
}
