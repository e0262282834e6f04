//! `sluice check`: every error at once with file:line:column; the sample pipelines are valid.

use testkit::{pipeline, sluice};

#[test]
fn reports_an_unknown_key_and_a_jq_syntax_error_together() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "two-mistakes",
        "\
name: two-mistakes
input:
  stdin:
    codex: json
transforms:
  - jq: '{id: .id, total: (.price * .qty}'
output:
  stdout: {}
errors: drop
",
    );
    let stderr = refused(&[&file]);
    let shown = file.display().to_string();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 2, "stderr: {stderr}");
    assert!(
        errors[0].starts_with(&format!(
            "{shown}:4:5: error: input.stdin.codex: unknown field `codex`"
        )),
        "{stderr}"
    );
    // The `}` that should have been `)`: line 6, column 41.
    assert!(
        errors[1].starts_with(&format!(
            "{shown}:6:41: error: jq syntax error: expected closing parenthesis"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("2 errors found"), "{stderr}");
}

#[test]
fn reports_errors_of_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = pipeline(
        dir.path(),
        "a",
        "input:\n  stdin: {}\noutput:\n  stdout: {}\nerrors: maybe\n",
    );
    let b = pipeline(
        dir.path(),
        "b",
        "input:\n  file: {}\noutput:\n  stdout: {}\nerrors: drop\n",
    );
    let out = sluice!().arg("check").arg(&a).arg(&b).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "{}:5:9: error: errors: unknown kind `maybe`",
            a.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{}:2:9: error: input.file: missing field `path`",
            b.display()
        )),
        "{stderr}"
    );
}

#[test]
fn missing_environment_variable_is_named_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "env",
        "input:\n  file:\n    path: ${SLUICE_TEST_UNSET_VAR_42}\noutput:\n  stdout: {}\nerrors: drop\n",
    );
    let out = sluice!()
        .arg("check")
        .arg(&file)
        .env_remove("SLUICE_TEST_UNSET_VAR_42")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "{}:3:11: error: environment variable `SLUICE_TEST_UNSET_VAR_42` is not set",
            file.display()
        )),
        "{stderr}"
    );
}

#[test]
fn every_sample_pipeline_is_valid() {
    let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "expected the sample pipelines, found {files:?}"
    );
    let out = sluice!().arg("check").args(&files).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.ends_with(')') && l.contains(": ok"))
            .count(),
        files.len(),
        "{stdout}"
    );
}

#[test]
fn every_missing_section_a_bad_name_and_a_duplicate_name_are_reported_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let missing = pipeline(dir.path(), "missing", "input:\n  stdin: {}\n");
    let newline = pipeline(
        dir.path(),
        "newline",
        "name: \"a\\nb\"\ninput: {stdin: {}}\noutput: {stdout: {}}\nerrors: drop\n",
    );
    let empty = pipeline(
        dir.path(),
        "empty",
        "name: ''\ninput: {stdin: {}}\noutput: {stdout: {}}\nerrors: drop\n",
    );
    let first = pipeline(
        dir.path(),
        "first",
        "name: same\ninput: {stdin: {}}\noutput: {stdout: {}}\nerrors: drop\n",
    );
    let second = pipeline(
        dir.path(),
        "second",
        "# the same name as first.yaml\nname: same\ninput: {stdin: {}}\noutput: {stdout: {}}\nerrors: drop\n",
    );
    let out = sluice!()
        .arg("check")
        .args([&missing, &newline, &empty, &first, &second])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let d = |p: &std::path::Path| p.display().to_string();
    for expected in [
        format!("{}:1:1: error: missing field `output`", d(&missing)),
        format!("{}:1:1: error: missing field `errors`", d(&missing)),
        format!(
            "{}:1:7: error: name must not contain line breaks or other control characters",
            d(&newline)
        ),
        format!("{}:1:7: error: name must not be empty", d(&empty)),
        format!(
            "{}:2:7: error: pipeline name `same` is also used by {}",
            d(&second),
            d(&first)
        ),
    ] {
        assert!(
            stderr.lines().any(|l| l == expected),
            "no `{expected}` in:\n{stderr}"
        );
    }
    assert!(stderr.ends_with("5 errors found\n"), "{stderr}");
}

#[test]
fn thousands_of_unknown_keys_are_all_counted_and_the_first_hundred_shown() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("input: {stdin: {}}\noutput: {stdout: {}}\nerrors: drop\n");
    for i in 0..20_000 {
        text.push_str(&format!("k{i}: 1\n"));
    }
    let file = pipeline(dir.path(), "keys", &text);
    let stderr = refused(&[&file]);
    let shown: Vec<&str> = stderr.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(shown.len(), 100);
    assert!(shown[0].starts_with(&format!(
        "{}:4:1: error: k0: unknown field `k0`",
        file.display()
    )));
    assert!(shown[99].starts_with(&format!(
        "{}:103:1: error: k99: unknown field",
        file.display()
    )));
    assert!(
        stderr.contains("\n... and 19900 more errors not shown\n20000 errors found\n"),
        "{}",
        &stderr[stderr.len() - 200..]
    );
}

#[test]
fn the_metrics_address_may_be_a_host_name() {
    let port = testkit::free_port();
    let out = sluice!()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--log-format", "json", "--metrics-addr"])
        .arg(format!("localhost:{port}"))
        .arg("pipelines/quickstart.yaml")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let serving = testkit::log_records(&stderr, "serving /metrics, /health/live and /health/ready");
    assert_eq!(serving.len(), 1, "{stderr}");
    assert!(
        serving[0]["address"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{port}"))
    );
    let bad = sluice!()
        .args(["run", "--metrics-addr", "localhost"])
        .arg(format!(
            "{}/pipelines/quickstart.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("invalid metrics address: expected host:port")
    );
}

#[test]
fn server_addresses_are_parsed_for_real() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "addresses",
        "input: {nats: {url: \"not a url\", subjects: [a]}}\noutput: {kafka: {brokers: \":::\", topic: t}}\nerrors:\n  output: {jetstream: {url: \"nats://127.0.0.1:4222,ftp://x\", subject: d}}\n",
    );
    let stderr = refused(&[&file]);
    let shown = file.display();
    for expected in [
        format!("{shown}:1:21: error: invalid server `not a url`: "),
        format!("{shown}:2:27: error: brokers must be host:port entries"),
        format!("{shown}:4:29: error: invalid server `ftp://x`: invalid scheme"),
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(&expected)),
            "no `{expected}` in:\n{stderr}"
        );
    }
    assert!(stderr.ends_with("3 errors found\n"), "{stderr}");
}

/// Runs `sluice check FILES`, asserts it exits 1 (errors found), and returns its stderr.
fn refused<P: AsRef<std::ffi::OsStr>>(files: &[P]) -> String {
    let out = sluice!().arg("check").args(files).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    stderr
}

/// `stderr` has a line starting with each of `expected`, and no other error.
fn reported(stderr: &str, expected: &[String]) {
    for e in expected {
        assert!(
            stderr.lines().any(|l| l.starts_with(e.as_str())),
            "no `{e}` in:\n{stderr}"
        );
    }
    let count = format!("{} errors found\n", expected.len());
    assert!(stderr.ends_with(&count), "{stderr}");
}

#[test]
fn nats_credentials_files_are_read_when_checking() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("user.creds");
    std::fs::write(&garbage, "not a credentials file\n").unwrap();
    let (missing, garbage) = (
        dir.path().join("missing.creds").display().to_string(),
        garbage.display().to_string(),
    );
    let file = pipeline(
        dir.path(),
        "creds",
        &format!(
            "\
input:
  nats:
    url: nats://127.0.0.1:4222
    subjects: [a]
    auth: {{credentials_file: \"{missing}\"}}
output:
  jetstream:
    url: nats://127.0.0.1:4222
    subject: b
    auth: {{credentials_file: \"{garbage}\"}}
errors: drop
"
        ),
    );
    let stderr = refused(&[&file]);
    let shown = file.display();
    reported(
        &stderr,
        &[
            format!("{shown}:5:30: error: {missing}: No such file"),
            format!("{shown}:10:30: error: {garbage}: cannot parse user JWT"),
        ],
    );
}

#[test]
fn tls_files_and_nkey_seeds_are_read_when_checking() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let seed = dir.path().join("user.nk");
    std::fs::write(&seed, "SUnotaseed\n").unwrap();
    let (missing, not_pem, seed) = (
        dir.path().join("missing.pem").display().to_string(),
        not_pem.display().to_string(),
        seed.display().to_string(),
    );
    let file = pipeline(
        dir.path(),
        "tls",
        &format!(
            "\
input:
  nats:
    url: nats://127.0.0.1:4222
    subjects: [a]
    tls: {{ca_file: \"{missing}\"}}
output:
  nats:
    url: nats://127.0.0.1:4222
    subject: b
    tls: {{cert_file: \"{not_pem}\"}}
    auth: {{nkey_file: \"{seed}\"}}
errors:
  output:
    jetstream:
      url: nats://127.0.0.1:4222
      subject: d
      tls: {{ca_file: \"{not_pem}\", server_name: \"not a name\", key_password: x}}
"
        ),
    );
    let stderr = refused(&[&file]);
    let shown = file.display();
    reported(
        &stderr,
        &[
            format!("{shown}:5:20: error: {missing}: "),
            format!("{shown}:10:22: error: cert_file needs key_file"),
            format!("{shown}:11:23: error: {seed}: not a valid NKey seed"),
            format!("{shown}:17:22: error: {not_pem}: no PEM certificate in the file"),
            format!("{shown}:17:62: error: `not a name`: invalid dns name"),
            format!("{shown}:17:90: error: key_password is only supported for Kafka"),
        ],
    );
}

#[test]
fn kafka_tls_and_sasl_blocks_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem").display().to_string();
    let file = pipeline(
        dir.path(),
        "kafka-tls",
        &format!(
            "\
input:
  kafka:
    brokers: 127.0.0.1:9092
    topics: [t]
    group_id: g
    tls: {{ca_file: \"{missing}\", server_name: broker.test}}
    sasl: {{mechanism: PLAIN, username: \"\", password: secret-value}}
    options: {{security.protocol: SSL}}
output:
  kafka:
    brokers: 127.0.0.1:9092
    topic: t
    sasl: {{mechanism: GSSAPI, username: u, password: p}}
errors: drop
"
        ),
    );
    let stderr = refused(&[&file]);
    let shown = file.display();
    for expected in [
        format!("{shown}:6:20: error: {missing}: "),
        format!("{shown}:6:64: error: server_name is not supported for Kafka"),
        format!("{shown}:7:40: error: username must not be empty"),
        format!("{shown}:8:34: error: `security.protocol` is set by the tls and sasl blocks"),
        format!(
            "{shown}:13:23: error: output.kafka.sasl.mechanism: unknown kind `GSSAPI`, expected one of `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`"
        ),
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(&expected)),
            "no `{expected}` in:\n{stderr}"
        );
    }
    assert!(!stderr.contains("secret-value"), "{stderr}");
    assert!(stderr.ends_with("5 errors found\n"), "{stderr}");
}

#[test]
fn json_format_lists_every_error_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "bad",
        "input:\n  nats: {url: \"not a url\", subjects: [a]}\noutput:\n  kafka: {brokers: \":::\", topic: t}\nerrors: drop\n",
    );
    let out = sluice!()
        .args(["check", "--format", "json"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let errors: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let places: Vec<(u64, u64)> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["file"], file.display().to_string());
            (e["line"].as_u64().unwrap(), e["column"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(places, [(2, 15), (4, 20)], "{errors}");
    assert!(errors[1]["message"].as_str().unwrap().contains("host:port"));

    let good = pipeline(
        dir.path(),
        "good",
        "input:\n  stdin: {}\noutput:\n  stdout: {}\nerrors: drop\n",
    );
    let out = sluice!()
        .args(["check", "--format", "json"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

#[test]
fn a_dry_run_builds_everything_and_connects_to_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on either address: a dry run must not try.
    let nowhere = format!("127.0.0.1:{}", testkit::free_port());
    let file = pipeline(
        dir.path(),
        "dry",
        &format!(
            "input:\n  kafka: {{brokers: \"{nowhere}\", topics: [t], group_id: g}}\noutput:\n  nats: {{url: \"nats://{nowhere}\", subject: s}}\nerrors: stop\n"
        ),
    );
    let out = sluice!()
        .args(["run", "--dry-run"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        format!(
            "{}: ready to run (pipeline `dry`: kafka input, 0 transforms, nats output, errors: stop)",
            file.display()
        )
    );
    // A file that does not build fails the dry run as it fails `check`.
    let bad = pipeline(
        dir.path(),
        "bad",
        "input:\n  nats: {url: \"not a url\", subjects: [a]}\noutput:\n  stdout: {}\nerrors: drop\n",
    );
    let out = sluice!()
        .args(["run", "--dry-run"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":2:15: error: invalid server"));
}

#[test]
fn http_server_settings_and_tls_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem").display().to_string();
    let file = pipeline(
        dir.path(),
        "http",
        &format!(
            "\
input:
  http_server:
    address: localhost
    path: events
    response_timeout: 0s
    headers_to_keep: [X-Ok, \"bad header\"]
    key_header: \"\"
    tls: {{cert_file: \"{missing}\", key_file: \"{missing}\"}}
output: {{stdout: {{}}}}
errors: drop
"
        ),
    );
    let stderr = refused(&[&file]);
    let shown = file.display();
    reported(
        &stderr,
        &[
            format!("{shown}:3:14: error: address must be host:port"),
            format!("{shown}:4:11: error: path must start with /"),
            format!("{shown}:5:23: error: must be above 0s"),
            format!("{shown}:6:29: error: \"bad header\" is not an HTTP header name"),
            format!("{shown}:7:17: error: \"\" is not an HTTP header name"),
            format!("{shown}:8:22: error: {missing}: "),
            format!("{shown}:8:63: error: {missing}: "),
        ],
    );
}

#[test]
fn schema_files_are_read_and_checked_at_load_with_every_error_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.avsc"),
        r#"{"type": "record", "name": "R"}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("bad.json"), r#"{"type": 12}"#).unwrap();
    std::fs::write(
        dir.path().join("m.proto"),
        "syntax = \"proto3\";\nmessage M { int32 a = 1; }\n",
    )
    .unwrap();
    let file = pipeline(
        dir.path(),
        "schemas",
        &format!(
            "\
input:
  kafka:
    brokers: localhost:9092
    topics: [t]
    group_id: g
    codec:
      avro:
        schema_file: {d}/bad.avsc
transforms:
  - validate: {{schema_file: {d}/bad.json}}
output:
  kafka:
    brokers: localhost:9092
    topic: out
    format:
      protobuf:
        schema_file: {d}/m.proto
        message: N
errors: drop
",
            d = dir.path().display()
        ),
    );
    let stderr = refused(&[&file]);
    let shown = file.display().to_string();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 3, "stderr: {stderr}");
    assert!(
        errors[0].starts_with(&format!("{shown}:8:22: error: "))
            && errors[0].contains("not a valid Avro schema"),
        "{stderr}"
    );
    assert!(
        errors[1].starts_with(&format!("{shown}:10:29: error: "))
            && errors[1].contains("is not a usable JSON Schema"),
        "{stderr}"
    );
    assert!(
        errors[2].starts_with(&format!("{shown}:18:18: error: "))
            && errors[2].contains("no message type `N` in the schema (it has M)"),
        "{stderr}"
    );
}

#[test]
fn file_output_formats_are_checked_at_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.avsc"), r#"{"type": "record"}"#).unwrap();
    std::fs::write(dir.path().join("ok.avsc"), r#"{"type": "string"}"#).unwrap();
    std::fs::write(
        dir.path().join("m.proto"),
        "syntax = \"proto3\";\nmessage M { int32 a = 1; }\n",
    )
    .unwrap();
    let d = dir.path().display();
    let output = |format: String| {
        format!(
            "input:\n  stdin: {{}}\noutput:\n  file:\n    path: out\n    format: {format}\nerrors: drop\n"
        )
    };
    // (pipeline, where the error is, what it says)
    let cases = [
        (
            output(format!("{{avro: {{schema_file: {d}/bad.avsc}}}}")),
            "6:",
            "not a valid Avro schema",
        ),
        (
            output(format!(
                "{{avro: {{schema_file: {d}/ok.avsc, compression: lz4}}}}"
            )),
            "6:",
            "unknown kind `lz4`, expected one of `null`, `deflate`, `snappy`, `zstandard`",
        ),
        (
            output(format!(
                "{{avro: {{schema_file: {d}/ok.avsc, registry: {{url: 'http://r'}}}}}}"
            )),
            "6:",
            "unknown field `registry`",
        ),
        (
            output(format!(
                "{{protobuf: {{schema_file: {d}/m.proto, message: N}}}}"
            )),
            "6:",
            "no message type `N` in the schema (it has M)",
        ),
        (
            output(format!("{{protobuf: {{schema_file: {d}/m.proto}}}}")),
            "6:",
            "missing field `message`",
        ),
        // A dead-letter file keeps the original payloads.
        (
            format!(
                "input:\n  stdin: {{}}\noutput:\n  stdout: {{}}\nerrors:\n  output:\n    file:\n      path: dead\n      format: {{protobuf: {{schema_file: {d}/m.proto, message: M}}}}\n"
            ),
            "9:15:",
            "a dead-letter output writes the original payloads",
        ),
    ];
    for (yaml, at, message) in cases {
        let file = pipeline(dir.path(), "files", &yaml);
        let out = sluice!().arg("check").arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{yaml}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(": error: ")).collect();
        assert_eq!(errors.len(), 1, "{yaml}: {stderr}");
        assert!(
            errors[0].starts_with(&format!("{}:{at}", file.display()))
                && errors[0].contains(message),
            "{yaml}: {stderr}"
        );
    }
}

#[test]
fn http_server_credentials_paths_and_shared_addresses_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let a = pipeline(
        dir.path(),
        "a",
        "\
input:
  http_server:
    address: 127.0.0.1:8080
    path: /my events
    auth: {bearer: \"\"}
    idle_timeout: 0s
output: {stdout: {}}
errors: drop
",
    );
    let b = pipeline(
        dir.path(),
        "b",
        "\
input:
  http_server:
    address: 0.0.0.0:8080
    path: /events?x=1
    auth: {basic: {user: ingest, password: \"\"}}
    max_connections: 0
output: {stdout: {}}
errors: drop
",
    );
    let c = pipeline(
        dir.path(),
        "c",
        "input:\n  http_server: {address: '127.0.0.1:8081'}\noutput: {stdout: {}}\nerrors: drop\n",
    );
    let stderr = refused(&[&a, &b, &c]);
    let (a, b) = (a.display(), b.display());
    reported(
        &stderr,
        &[
            format!("{a}:4:11: error: \"/my events\" is not a URL path"),
            format!("{a}:5:20: error: the token must not be empty"),
            format!("{a}:6:19: error: must be above 0s"),
            format!("{b}:4:11: error: \"/events?x=1\" is not a URL path"),
            format!("{b}:5:44: error: the password must not be empty"),
            format!("{b}:6:22: error: must be at least 1"),
            format!("{b}:3:14: error: address 0.0.0.0:8080 is already listened on by {a}"),
        ],
    );
}

#[test]
fn an_http_output_or_a_registry_with_empty_credentials_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "creds",
        "\
input:
  kafka:
    brokers: localhost:9092
    topics: [t]
    group_id: g
    codec:
      avro: {registry: {url: 'http://registry:8081', auth: {basic: {user: 'k:1', password: ''}}}}
output:
  http:
    url: http://collector:8080/events
    auth: {bearer: '  '}
errors: drop
",
    );
    let stderr = refused(&[&file]);
    let f = file.display();
    reported(
        &stderr,
        &[
            format!("{f}:7:75: error: the user must not contain `:`"),
            format!("{f}:7:92: error: the password must not be empty"),
            format!("{f}:11:20: error: the token must not be empty"),
        ],
    );
}
