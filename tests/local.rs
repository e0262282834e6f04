//! Local inputs and outputs end to end through the real binary.

use std::time::Duration;

use testkit::{lines, log_records, pipeline, run_with_stdin, sluice};

/// 100,000 JSON lines with malformed lines and transform failures mixed in, stdin to stdout.
#[test]
fn stdin_to_stdout_keeps_order_and_dead_letters_bad_lines_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let dlq = dir.path().join("dead.jsonl");
    let file = pipeline(
        dir.path(),
        "p",
        &format!(
            "\
input:
  stdin: {{}}
transforms:
  - jq: '{{id, next: (.n + 1), tags: [.tags[]? | ascii_upcase]}}'
output:
  stdout: {{}}
errors:
  output:
    file:
      path: {}
settings:
  batch_size: 256
  workers: 2
",
            dlq.display()
        ),
    );
    let mut input = String::new();
    let mut expected = Vec::new();
    let mut malformed = Vec::new(); // (line number, text)
    let mut failing = Vec::new(); // (line number, id)
    for i in 0..100_000u64 {
        let line_no = i + 1;
        if i % 997 == 13 {
            let text = format!("{{\"id\": {i}, \"n\": ");
            malformed.push((line_no, text.clone()));
            input.push_str(&text);
        } else if i % 1009 == 7 {
            // `.n + 1` fails on a string.
            input.push_str(&format!("{{\"id\":{i},\"n\":\"x\"}}"));
            failing.push((line_no, i));
        } else {
            input.push_str(&format!("{{\"id\":{i},\"n\":{i},\"tags\":[\"a\",\"b\"]}}"));
            expected.push(format!(
                "{{\"id\":{i},\"next\":{},\"tags\":[\"A\",\"B\"]}}",
                i + 1
            ));
        }
        input.push('\n');
    }

    let out = run_with_stdin(sluice!(), &file, input.as_bytes());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    let got: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(got.len(), expected.len());
    assert!(
        got == expected,
        "transformed events differ from the expected ones, in content or order"
    );

    let letters: Vec<serde_json::Value> = lines(&dlq)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), malformed.len() + failing.len());
    let mut seen_malformed = 0;
    let mut seen_failing = 0;
    for letter in &letters {
        let source = letter["source"].as_str().unwrap();
        let line_no: u64 = source.strip_prefix("stdin:").unwrap().parse().unwrap();
        let headers = &letter["headers"];
        assert_eq!(headers["sluice-error-source"], source);
        assert_eq!(headers["sluice-error-pipeline"], "p");
        assert!(
            headers["sluice-error-time"]
                .as_str()
                .unwrap()
                .ends_with('Z')
        );
        if let Some((_, text)) = malformed.iter().find(|(n, _)| *n == line_no) {
            assert_eq!(
                letter["payload_text"],
                text.as_str(),
                "original payload kept"
            );
            assert_eq!(headers["sluice-error-step"], "decode");
            assert!(
                headers["sluice-error-reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("malformed JSON"),
                "{letter}"
            );
            seen_malformed += 1;
        } else {
            let (_, id) = failing
                .iter()
                .find(|(n, _)| *n == line_no)
                .expect("dead letter for a good line");
            assert_eq!(letter["payload"], serde_json::json!({"id": id, "n": "x"}));
            assert_eq!(headers["sluice-error-step"], "transforms[0] (jq)");
            assert!(
                headers["sluice-error-reason"]
                    .as_str()
                    .unwrap()
                    .contains("cannot"),
                "{letter}"
            );
            seen_failing += 1;
        }
    }
    assert_eq!(
        (seen_malformed, seen_failing),
        (malformed.len(), failing.len())
    );

    let summary = &log_records(&stderr, "pipeline stopped")[0];
    assert_eq!(summary["received"], 100_000);
    assert_eq!(summary["sent"], expected.len());
    assert_eq!(summary["dead_lettered"], letters.len());
    assert_eq!(summary["failed"], letters.len());
}

#[test]
fn fan_out_filter_and_route_set_keys_headers_and_destinations() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let out = dir.path().join("out.jsonl");
    std::fs::write(
        &input,
        "{\"order\":1,\"region\":\"eu\",\"items\":[{\"sku\":\"a\",\"qty\":2},{\"sku\":\"b\",\"qty\":0}]}\n\n\
         {\"order\":2,\"region\":\"us\",\"items\":[]}\n\
         {\"order\":3,\"region\":\"us\",\"items\":[{\"sku\":\"c\",\"qty\":5}]}\n",
    )
    .unwrap();
    let file = pipeline(
        dir.path(),
        "fanout",
        &format!(
            "\
input:
  file:
    path: {}
transforms:
  - jq:
      name: explode
      program: '.order as $o | .region as $r | .items[] | . + {{order: $o, region: $r}}'
  - filter: '.qty > 0'
  - route:
      destination: '\"orders.\" + .region'
      key: '.order'
      headers:
        sku: '.sku'
        line: '$source.line'
output:
  file:
    path: {}
    format: envelope
errors: stop
",
            input.display(),
            out.display()
        ),
    );
    let status = sluice!().arg("run").arg(&file).status().unwrap();
    assert!(status.success());
    let got: Vec<serde_json::Value> = lines(&out)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        got.iter().map(|v| v["payload"].clone()).collect::<Vec<_>>(),
        vec![
            serde_json::json!({"sku": "a", "qty": 2, "order": 1, "region": "eu"}),
            serde_json::json!({"sku": "c", "qty": 5, "order": 3, "region": "us"}),
        ]
    );
    assert_eq!(got[0]["key"], "1");
    assert_eq!(got[0]["destination"], "orders.eu");
    assert_eq!(
        got[0]["headers"],
        serde_json::json!({"sku": "a", "line": "1"})
    );
    assert_eq!(got[1]["key"], "3");
    assert_eq!(got[1]["destination"], "orders.us");
    // Line 2 is blank and skipped; order 3 is on line 4.
    assert_eq!(
        got[1]["headers"],
        serde_json::json!({"sku": "c", "line": "4"})
    );
    assert_eq!(got[1]["source"], format!("{}:4", input.display()));
}

#[test]
fn quickstart_prints_transformed_events() {
    let out = sluice!()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "pipelines/quickstart.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e["payload"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![0, 4, 8, 12, 16], "every fourth event is a 503");
    for e in &events {
        assert_eq!(e["key"], e["payload"]["service"]);
        assert_eq!(e["headers"]["x-severity"], "error");
        assert!(e["payload"]["latency_ms"].is_number());
        assert!(e["payload"].get("status").is_none(), "reshaped away");
    }
}

#[test]
fn errors_stop_fails_loudly_after_delivering_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "stop",
        "input:\n  stdin: {}\ntransforms:\n  - jq: '.a + 1'\noutput:\n  stdout: {}\nerrors: stop\nsettings:\n  batch_size: 1\n  workers: 1\n",
    );
    let out = run_with_stdin(sluice!(), &file, b"{\"a\":1}\n{\"a\":\"x\"}\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(std::str::from_utf8(&out.stdout).unwrap(), "2\n");
    let failure = &log_records(&stderr, "exiting on error")[0];
    assert!(
        failure["error"].as_str().unwrap().contains("stdin:2"),
        "{failure}"
    );
}

/// Under `errors: stop`, every line before the failing one is delivered, in order, whatever batch
/// it is in, and nothing after it; the process exits 1. Both line inputs, batches of 1 and 500,
/// the failure at the start, middle and end of a batch.
#[test]
fn errors_stop_delivers_every_line_before_the_failure_and_none_after() {
    let dir = tempfile::tempdir().unwrap();
    let n = 1_200;
    for batch_size in [1, 500] {
        for fail_at in [0, 250, 499, 500, 1_199] {
            let mut input = String::new();
            for i in 0..n {
                match i == fail_at {
                    true => input.push_str("bad\n"),
                    false => input.push_str(&format!("{{\"n\":{i}}}\n")),
                }
            }
            let expected: Vec<String> = (0..fail_at).map(|i| format!("{{\"n\":{i}}}")).collect();
            let settings = format!("settings:\n  batch_size: {batch_size}\n  workers: 2\n");

            let file = pipeline(
                dir.path(),
                "stdin-stop",
                &format!(
                    "input:\n  stdin: {{}}\ntransforms:\n  - jq: .\noutput:\n  stdout: {{}}\nerrors: stop\n{settings}"
                ),
            );
            let out = run_with_stdin(sluice!(), &file, input.as_bytes());
            assert_eq!(
                out.status.code(),
                Some(1),
                "stdin, batch {batch_size}, failure at {fail_at}"
            );
            let got: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
            assert!(
                got == expected,
                "stdin, batch {batch_size}, failure at {fail_at}: {} lines out",
                got.len()
            );

            let data = dir.path().join("in.jsonl");
            let written = dir.path().join("out.jsonl");
            std::fs::write(&data, &input).unwrap();
            let _ = std::fs::remove_file(&written);
            let file = pipeline(
                dir.path(),
                "file-stop",
                &format!(
                    "input:\n  file:\n    path: {}\ntransforms:\n  - jq: .\noutput:\n  file:\n    path: {}\nerrors: stop\n{settings}",
                    data.display(),
                    written.display()
                ),
            );
            let status = sluice!()
                .arg("run")
                .arg(&file)
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert_eq!(
                status.code(),
                Some(1),
                "file, batch {batch_size}, failure at {fail_at}"
            );
            assert!(
                lines(&written) == expected,
                "file, batch {batch_size}, failure at {fail_at}: {} lines out",
                lines(&written).len()
            );
        }
    }
}

#[test]
fn errors_drop_counts_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "drop",
        "input:\n  stdin: {}\noutput:\n  stdout: {}\ntransforms:\n  - jq: .\nerrors: drop\n",
    );
    let out = run_with_stdin(sluice!(), &file, b"1\nnope\n3\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(std::str::from_utf8(&out.stdout).unwrap(), "1\n3\n");
    let summary = &log_records(&stderr, "pipeline stopped")[0];
    assert_eq!(
        (summary["dropped"].as_u64(), summary["sent"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(log_records(&stderr, "event failed").len(), 1);
}

#[test]
fn raw_codec_routes_non_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "raw",
        "input:\n  stdin:\n    codec: raw\ntransforms:\n  - filter: 'startswith(\"ERROR\")'\n  - jq: 'ascii_downcase'\noutput:\n  stdout: {}\nerrors: stop\n",
    );
    let out = run_with_stdin(
        sluice!(),
        &file,
        b"ERROR disk full\nINFO fine\nERROR {not json}\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::str::from_utf8(&out.stdout).unwrap(),
        "error disk full\nerror {not json}\n"
    );
}

#[test]
fn several_pipelines_run_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let a_out = dir.path().join("a.jsonl");
    let b_out = dir.path().join("b.jsonl");
    let a = pipeline(
        dir.path(),
        "a",
        &format!(
            "input:\n  generate:\n    count: 1000\n    template: '{{n: .}}'\noutput:\n  file:\n    path: {}\nerrors: stop\n",
            a_out.display()
        ),
    );
    let b = pipeline(
        dir.path(),
        "b",
        &format!(
            "input:\n  generate:\n    count: 500\n    template: '{{n: .}}'\ntransforms:\n  - filter: '.n % 2 == 0'\noutput:\n  file:\n    path: {}\nerrors: stop\n",
            b_out.display()
        ),
    );
    let status = sluice!().arg("run").arg(&a).arg(&b).status().unwrap();
    assert!(status.success());
    let a_lines = lines(&a_out);
    let b_lines = lines(&b_out);
    assert_eq!(
        a_lines,
        (0..1000)
            .map(|n| format!("{{\"n\":{n}}}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        b_lines,
        (0..500)
            .step_by(2)
            .map(|n| format!("{{\"n\":{n}}}"))
            .collect::<Vec<_>>()
    );
}

#[test]
fn file_input_follows_appended_lines() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let out = dir.path().join("out.jsonl");
    std::fs::write(&input, "{\"n\":1}\n").unwrap();
    let file = pipeline(
        dir.path(),
        "follow",
        &format!(
            "input:\n  file:\n    path: {}\n    follow: true\n    poll_interval: 20ms\noutput:\n  file:\n    path: {}\nerrors: stop\n",
            input.display(),
            out.display()
        ),
    );
    let mut child = sluice!().arg("run").arg(&file).spawn().unwrap();
    testkit::wait_for("the first line", Duration::from_secs(20), || {
        (lines(&out).len() == 1).then_some(())
    });
    std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap()
        .write_all(b"{\"n\":2}\n{\"n\":3}\n")
        .unwrap();
    testkit::wait_for("the appended lines", Duration::from_secs(20), || {
        (lines(&out).len() == 3).then_some(())
    });
    testkit::signal(&child, "TERM");
    let status = testkit::wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success());
    assert_eq!(lines(&out), vec!["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"]);
}

/// `tests/registry_clients.py` (fastavro, protobuf) with `args`: what it printed.
fn python_reader(args: &[&str]) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/registry_clients.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "registry_clients.py {args:?}: {stderr}"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// stdin to an Avro object container file, in each codec: two runs append to one file, which
/// fastavro reads whole and in order; a result that does not fit the schema is dead-lettered
/// with the field named, and the file goes on without it.
#[test]
fn avro_files_in_every_codec_grow_across_runs_and_fastavro_reads_them() {
    const RUN: u64 = 500;
    let dir = tempfile::tempdir().unwrap();
    let avsc = dir.path().join("order.avsc");
    std::fs::write(
        &avsc,
        r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
          {"name": "id", "type": "long"},
          {"name": "name", "type": "string"},
          {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
          {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
          {"name": "tags", "type": {"type": "array", "items": "string"}},
          {"name": "note", "type": ["null", "string"], "default": null}]}"#,
    )
    .unwrap();
    let misfit = |id: u64| id % 97 == 5;
    for codec in ["null", "deflate", "snappy", "zstandard"] {
        let out = dir.path().join(format!("{codec}.avro"));
        let dlq = dir.path().join(format!("{codec}.dead.jsonl"));
        let file = pipeline(
            dir.path(),
            codec,
            &format!(
                "\
input:
  stdin: {{}}
transforms:
  - jq: '{{id, name: \"n\\(.id)\", amount, at, tags: [.tag]}}'
output:
  file:
    path: {}
    format: {{avro: {{schema_file: {}, compression: {codec}}}}}
errors:
  output: {{file: {{path: {}}}}}
",
                out.display(),
                avsc.display(),
                dlq.display()
            ),
        );
        for run in 0..2 {
            let input: String = (run * RUN..(run + 1) * RUN)
                .map(|id| {
                    let amount = match misfit(id) {
                        true => serde_json::json!("x"),
                        false => serde_json::json!(id as f64 + 0.25),
                    };
                    let at = 1_700_000_000_123u64 + id * 1000;
                    format!("{}\n", serde_json::json!({"id": id, "amount": amount, "at": at, "tag": format!("t{}", id % 3)}))
                })
                .collect();
            let ran = run_with_stdin(sluice!(), &file, input.as_bytes());
            assert!(
                ran.status.success(),
                "{}",
                String::from_utf8_lossy(&ran.stderr)
            );
        }

        let read = python_reader(&["read-avro-file", "-", "-", "-", out.to_str().unwrap()]);
        let (file_codec, records) = read.split_once('\n').unwrap();
        assert_eq!(file_codec, codec);
        let got: Vec<serde_json::Value> = records
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let want: Vec<serde_json::Value> = (0..2 * RUN)
            .filter(|id| !misfit(*id))
            .map(|id| {
                let at = jiff::Timestamp::from_millisecond(1_700_000_000_123 + id as i64 * 1000)
                    .unwrap()
                    .strftime("%Y-%m-%dT%H:%M:%S.%6f+00:00")
                    .to_string();
                serde_json::json!({"id": id, "name": format!("n{id}"), "amount": format!("{id}.25"),
                    "at": at, "tags": [format!("t{}", id % 3)], "note": null})
            })
            .collect();
        assert_eq!(
            got.len(),
            want.len(),
            "{codec}: every record that fits, once"
        );
        assert_eq!(got, want, "{codec}: the records, in order");

        let letters: Vec<serde_json::Value> = lines(&dlq)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let ids: Vec<u64> = letters
            .iter()
            .map(|l| l["payload"]["id"].as_u64().unwrap())
            .collect();
        assert_eq!(
            ids,
            (0..2 * RUN).filter(|id| misfit(*id)).collect::<Vec<_>>()
        );
        for letter in &letters {
            assert_eq!(letter["headers"]["sluice-error-step"], "encode");
            let reason = letter["headers"]["sluice-error-reason"].as_str().unwrap();
            assert!(reason.contains("amount"), "{reason}");
        }
    }
}

/// An Avro file written by a process killed with SIGKILL, then a block cut short at its end (as
/// a crash inside a write leaves it): the next run cuts the unfinished block off, says so, and
/// appends; fastavro reads the whole file, and every record of the first run's whole blocks is
/// there, in order, before the second run's.
#[test]
fn a_killed_writers_avro_file_is_repaired_and_appended_to() {
    const N: u64 = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let avsc = dir.path().join("r.avsc");
    std::fs::write(
        &avsc,
        r#"{"type": "record", "name": "R", "fields": [{"name": "id", "type": "long"}]}"#,
    )
    .unwrap();
    let out = dir.path().join("out.avro");
    let file = pipeline(
        dir.path(),
        "killed",
        &format!(
            "\
input:
  generate: {{count: {N}, rate: 50000, template: '{{id: .}}'}}
output:
  file: {{path: {}, format: {{avro: {{schema_file: {}}}}}}}
errors: stop
",
            out.display(),
            avsc.display()
        ),
    );
    let mut child = sluice!()
        .args(["run", "--log-format", "json"])
        .arg(&file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    testkit::wait_for("blocks in the file", Duration::from_secs(30), || {
        let len = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        (len > 20_000).then_some(())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // A block of 1 record in 64 bytes, of which only 3 were written.
    let mut bytes = std::fs::read(&out).unwrap();
    let whole = bytes.len();
    bytes.extend_from_slice(&[0x02, 0x80, 0x01, 0x02, 0x04, 0x06]);
    std::fs::write(&out, &bytes).unwrap();

    let ran = sluice!()
        .args(["run", "--log-format", "json"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "{stderr}");
    let cut = &log_records(
        &stderr,
        "cutting off the unfinished last block of an Avro file",
    );
    assert_eq!(cut.len(), 1, "{stderr}");
    assert!(cut[0]["bytes"].as_u64().unwrap() >= 6, "{}", cut[0]);
    assert!(std::fs::metadata(&out).unwrap().len() > whole as u64);

    let read = python_reader(&["read-avro-file", "-", "-", "-", out.to_str().unwrap()]);
    let (codec, records) = read.split_once('\n').unwrap();
    assert_eq!(codec, "null");
    let ids: Vec<u64> = records
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let first = ids
        .len()
        .checked_sub(N as usize)
        .expect("every record of the second run is in the file");
    assert!(
        first > 0,
        "the first run wrote whole blocks before it was killed"
    );
    assert_eq!(
        ids[..first],
        (0..first as u64).collect::<Vec<_>>()[..],
        "the first run's records, in order"
    );
    assert_eq!(
        ids[first..],
        (0..N).collect::<Vec<_>>()[..],
        "then every record of the second run, in order"
    );
}
