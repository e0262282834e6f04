//! `sluice check`: every error at once with file:line:column; the sample pipelines are valid.

mod common;

use common::{pipeline, sluice};

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
    let out = sluice().arg("check").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
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
    let out = sluice().arg("check").arg(&a).arg(&b).output().unwrap();
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
    let out = sluice()
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
    let out = sluice().arg("check").args(&files).output().unwrap();
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
