//! `sluice test`: the sample pipelines' test cases pass; a broken expectation fails with where it
//! is written and a diff; JUnit reports parse; files that do not load exit 2.

use std::path::Path;
use std::process::Output;

use testkit::sluice;

fn test(args: &[&str]) -> Output {
    sluice!().arg("test").args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// 1-based line of the first line of `file` containing `needle`, and the column of `token` in it.
fn place_of(file: &Path, needle: &str, token: &str) -> (usize, usize) {
    let text = std::fs::read_to_string(file).unwrap();
    let (i, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {}", file.display()));
    let column = line
        .find(token)
        .unwrap_or_else(|| panic!("{token:?} not in {line:?}"));
    (i + 1, column + 1)
}

#[test]
fn every_sample_pipeline_has_passing_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = test(&[root.join("pipelines").to_str().unwrap()]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    // Cases are reported where they are written: the pipeline file, or its test file.
    for sample in [
        "jetstream-to-jetstream.",
        "kafka-to-kafka.",
        "nats-to-kafka.",
        "quickstart.",
        "stdin-to-stdout.",
    ] {
        assert!(
            shown
                .lines()
                .any(|l| l.starts_with("ok ") && l.contains(sample)),
            "no passing case of {sample}:\n{shown}"
        );
    }
    assert!(!shown.contains("FAIL"), "{shown}");
    assert!(shown.ends_with(" passed, 0 failed\n"), "{shown}");
    // A case with a dead letter is among them.
    assert!(
        shown.contains("a line that is not JSON is dead-lettered"),
        "{shown}"
    );
}

#[test]
fn a_broken_expectation_fails_with_its_place_and_a_diff() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quickstart.yaml");
    let original = std::fs::read_to_string(root.join("pipelines/quickstart.yaml")).unwrap();
    let broken = original.replace("latency_ms: 36}", "latency_ms: 37}");
    assert_ne!(broken, original);
    std::fs::write(&file, broken).unwrap();
    let junit = dir.path().join("report.xml");
    let out = test(&[file.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");

    let (line, column) = place_of(&file, "latency_ms: 37}", "payload");
    let place = format!(
        "{}:{line}:{column}: output[0]: payload differs",
        file.display()
    );
    assert!(shown.contains(&place), "no `{place}` in:\n{shown}");
    assert!(shown.contains("-   \"latency_ms\": 37"), "{shown}");
    assert!(shown.contains("+   \"latency_ms\": 36"), "{shown}");
    assert!(
        shown.contains("FAIL") && shown.contains("a server error is reshaped"),
        "{shown}"
    );
    assert!(shown.ends_with("1 passed, 1 failed\n"), "{shown}");
    // Not a terminal: no colour.
    assert!(!shown.contains('\x1b'), "{shown}");

    // The JUnit report parses as XML, with one suite of two cases, one failed.
    let parsed = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, xml.etree.ElementTree as ET\n\
             root = ET.parse(sys.argv[1]).getroot()\n\
             suites = root.findall('testsuite')\n\
             cases = [c for s in suites for c in s.findall('testcase')]\n\
             failed = [c.get('name') for c in cases if c.find('failure') is not None]\n\
             print(root.tag, len(suites), len(cases), failed)",
        )
        .arg(&junit)
        .output()
        .unwrap();
    assert!(parsed.status.success(), "{}", text(&parsed));
    assert_eq!(
        String::from_utf8_lossy(&parsed.stdout).trim(),
        "testsuites 1 2 ['a server error is reshaped, keyed by service and tagged']"
    );
}

#[test]
fn cases_set_variables_and_check_dead_letters_under_every_policy() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders.yaml");
    // No default for the brokers: only the cases' `env` lets the file load.
    std::fs::write(
        &file,
        "\
input:
  kafka: {brokers: \"${ORDERS_BROKERS}\", topics: [orders], group_id: g}
transforms:
  - jq: '{id: .id, total: (.price * .qty)}'
  - route: {partition: '.id % 3', destination: '\"orders-\" + ($source.topic)'}
output:
  kafka: {brokers: \"${ORDERS_BROKERS}\", topic: out}
errors: drop
",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("orders.test.yaml"),
        "\
tests:
  - name: totals, partitions and destinations
    env: {ORDERS_BROKERS: \"localhost:9092\"}
    input:
      - payload: {id: 4, price: 2.5, qty: 2}
        source: {kafka: {topic: eu}}
        key: k4
        timestamp: 1700000000000
      - payload_text: '{\"id\": 5, \"price\": {}, \"qty\": 1}'
    output:
      - payload: {id: 4, total: 5}
        partition: 1
        destination: orders-eu
        key: k4
        timestamp: 1700000000000
        assert: '$key == \"k4\" and .total > 4'
    dead_letters:
      - step: transforms[0] (jq)
        reason_contains: cannot
        payload_contains: {id: 5}
    filtered: 0
",
    )
    .unwrap();
    let out = test(&[dir.path().to_str().unwrap()]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.ends_with("1 passed, 0 failed\n"), "{shown}");

    // Without the variable, the pipeline file alone does not load.
    let check = sluice!().arg("check").arg(&file).output().unwrap();
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
}

#[test]
fn an_output_that_must_stay_empty_and_a_count_that_differs_fail() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(
        &file,
        "\
input:
  stdin: {}
transforms:
  - filter: '.keep'
output:
  stdout: {}
errors: stop
tests:
  - name: nothing may come out
    input:
      - payload: {keep: true}
      - payload: {keep: false}
    output: []
    filtered: 2
",
    )
    .unwrap();
    let out = test(&[file.to_str().unwrap()]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let (line, column) = place_of(&file, "output: []", "[]");
    let place = format!(
        "{}:{line}:{column}: output: 0 events expected, 1 event came out",
        file.display()
    );
    assert!(shown.contains(&place), "no `{place}` in:\n{shown}");
    assert!(shown.contains("\"keep\": true"), "{shown}");
    let (line, column) = place_of(&file, "filtered: 2", "2");
    let place = format!("{}:{line}:{column}: filtered", file.display());
    assert!(shown.contains(&place), "no `{place}` in:\n{shown}");
}

#[test]
fn a_test_file_that_does_not_load_exits_2_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(
        &file,
        "input:\n  stdin: {}\noutput:\n  stdout: {}\nerrors: drop\n",
    )
    .unwrap();
    let tests = dir.path().join("p.test.yaml");
    std::fs::write(
        &tests,
        "tests:\n  - name: x\n    input:\n      - payload: 1\n        colour: red\n",
    )
    .unwrap();
    let out = test(&[tests.to_str().unwrap()]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    let place = format!("{}:5:9: ", tests.display());
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with(&place) && l.contains("colour")),
        "no `{place}` in:\n{shown}"
    );
}

#[test]
fn the_readme_shows_the_sample_test_file_as_it_is() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let sample = std::fs::read_to_string(root.join("pipelines/kafka-to-kafka.test.yaml")).unwrap();
    assert!(
        readme.contains(&format!("```yaml\n{sample}```\n")),
        "README's copy of pipelines/kafka-to-kafka.test.yaml differs from the file"
    );
}

#[test]
fn eval_shows_each_step_and_the_step_that_decided_each_event() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let quickstart = root.join("pipelines/quickstart.yaml");
    let events = [
        r#"{"id":1,"service":"auth","status":200,"latency":0.02,"msg":"fine"}"#,
        r#"{"id":4,"service":"search","status":503,"latency":0.036,"msg":"request 4"}"#,
        "not json",
    ];
    let mut eval = sluice!();
    eval.arg("eval").arg(&quickstart);
    for e in events {
        eval.args(["--event", e]);
    }
    let out = eval.output().unwrap();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(
        lines,
        [
            format!("event 1: {}", events[0]).as_str(),
            "  transforms[0] (filter): filtered out",
            "  => filtered: nothing reaches the output",
            format!("event 2: {}", events[1]).as_str(),
            format!("  transforms[0] (filter): {}", events[1]).as_str(),
            r#"  transforms[1] (jq "reshape"): {"id":4,"service":"search","msg":"request 4","latency_ms":36}"#,
            r#"  transforms[2] (route): {"id":4,"service":"search","msg":"request 4","latency_ms":36} key="search" header x-severity="error""#,
            r#"  => stdout output: {"id":4,"service":"search","msg":"request 4","latency_ms":36} key="search" header x-severity="error""#,
            "event 3: not json",
            "  decode: failed: malformed JSON: expected ident at line 1 column 2",
            "  => failed at decode: malformed JSON: expected ident at line 1 column 2; dead letter to the stdout output",
        ],
        "{shown}"
    );

    // The same events on standard input, one per line.
    let mut child = sluice!()
        .arg("eval")
        .arg(&quickstart)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}\n\n{}\n{}", events[0], events[1], events[2]).unwrap();
    drop(stdin);
    let piped = child.wait_with_output().unwrap();
    assert!(piped.status.success());
    assert_eq!(String::from_utf8_lossy(&piped.stdout), shown);
}

#[test]
fn a_file_named_twice_runs_once() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let quickstart = root.join("pipelines/quickstart.yaml");
    let kafka = root.join("pipelines/kafka-to-kafka.test.yaml");
    let q = quickstart.to_str().unwrap();
    let out = test(&[q, kafka.to_str().unwrap(), q]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    // Two cases of quickstart, three of kafka-to-kafka, each once.
    assert!(shown.ends_with("\n5 passed, 0 failed\n"), "{shown}");
}

#[test]
fn a_broken_pipeline_file_without_test_cases_exits_2_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("a-good.yaml");
    std::fs::write(
        &good,
        "input:\n  stdin: {}\noutput:\n  stdout: {}\nerrors: drop\n",
    )
    .unwrap();
    // Alone, a file without cases is loaded and checked, and counted as such.
    let out = test(&[dir.path().to_str().unwrap()]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.ends_with("0 passed, 0 failed; 1 pipeline file without test cases checked\n"),
        "{shown}"
    );

    // Two broken files beside it, neither with cases: both errors, each with its place.
    let unknown_key = dir.path().join("b-unknown-key.yaml");
    std::fs::write(
        &unknown_key,
        "input:\n  stdin: {}\noutput:\n  stdout: {colour: red}\nerrors: drop\n",
    )
    .unwrap();
    let bad_program = dir.path().join("c-bad-program.yaml");
    std::fs::write(
        &bad_program,
        "input:\n  stdin: {}\ntransforms:\n  - jq: '.a | '\noutput:\n  stdout: {}\nerrors: drop\n",
    )
    .unwrap();
    let out = test(&[dir.path().to_str().unwrap()]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    for (file, line) in [(&unknown_key, 4), (&bad_program, 4)] {
        let place = format!("{}:{line}:", file.display());
        assert!(
            shown.lines().any(|l| l.starts_with(&place)),
            "no `{place}` in:\n{shown}"
        );
    }
    assert!(!shown.contains(&good.display().to_string()), "{shown}");
}

#[test]
fn eval_shows_what_the_output_refuses_and_avro_as_the_json_it_holds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let eval = |file: &Path, events: &[&str]| {
        let mut eval = sluice!();
        eval.arg("eval").arg(file);
        for e in events {
            eval.args(["--event", e]);
        }
        let out = eval.output().unwrap();
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(0), "{shown}");
        shown
    };

    // A Parquet row without its required column: refused by the output, so it follows the
    // error policy, though the transforms let it through.
    let parquet = dir.path().join("parquet.yaml");
    std::fs::write(
        &parquet,
        format!(
            "input: {{stdin: {{}}}}\noutput:\n  object_store:\n    url: file://{}/store\n    path: x\n    format: parquet\n    schema:\n      - {{name: id, type: int64, required: true}}\n      - {{name: service, type: string}}\nerrors: drop\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let shown = eval(
        &parquet,
        &[r#"{"id":1,"service":"a"}"#, r#"{"service":"b"}"#],
    );
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(
        lines,
        [
            r#"event 1: {"id":1,"service":"a"}"#,
            r#"  => object_store output: {"id":1,"service":"a"}"#,
            r#"event 2: {"service":"b"}"#,
            "  => refused by the object_store output: column id: required, but missing or null; dropped (errors: drop)",
        ],
        "{shown}"
    );

    // An Avro body is shown as the JSON it holds (as a reader of the file would see it).
    let avro = dir.path().join("avro.yaml");
    std::fs::write(
        &avro,
        format!(
            "input: {{stdin: {{}}}}\noutput:\n  file:\n    path: {}/out.avro\n    format: {{avro: {{schema_file: {}}}}}\nerrors: drop\n",
            dir.path().display(),
            root.join("tests/schemas/order.avsc").display()
        ),
    )
    .unwrap();
    let order = r#"{"id":1,"customer":"c","status":"NEW","amount":"12.50","placed_at":1700000000000,"lines":[{"sku":"a","qty":1,"price":2.5}]}"#;
    let shown = eval(&avro, &[order]);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(
        lines[1],
        r#"  => file output: {"id":1,"customer":"c","status":"NEW","amount":12.50,"placed_at":"2023-11-14T22:13:20.000Z","lines":[{"sku":"a","qty":1,"price":2.5}],"note":null} (avro, 27 bytes)"#,
        "{shown}"
    );
}
