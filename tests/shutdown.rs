//! Graceful shutdown: SIGTERM stops reading, delivers everything read, and exits 0.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::{lines, log_records, pipeline, sluice, wait_exit, wait_for};

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
    let mut child = sluice()
        .args(["run", "--log-format", "json"])
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("events in the output", Duration::from_secs(30), || {
        (lines(&out).len() >= 5000).then_some(())
    });
    common::signal(&child, "TERM");
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
    let mut child = sluice()
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
    common::signal(&child, "TERM");
    // stdin stays open: shutdown must not wait for end of input.
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert_eq!(
        lines(&out),
        (0..500).map(|n| n.to_string()).collect::<Vec<_>>()
    );
    drop(stdin);
}
