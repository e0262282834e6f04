//! `sluice schema`: the JSON Schema of pipeline files accepts every sample pipeline and every
//! valid corpus file, and rejects what `sluice check` rejects for its shape (an unknown key, a
//! wrong type, an unknown kind, a malformed duration), checked by an independent validator
//! (Python `jsonschema`).

use std::path::{Path, PathBuf};

use testkit::sluice;

fn yaml_files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.ends_with(".yaml") && !name.ends_with(".test.yaml") && keep(name)
        })
        .collect();
    files.sort();
    files
}

/// Each file's verdict from Python `jsonschema` (draft 2020-12) against `schema`: `ok`, or
/// `invalid: <first error>`.
fn validate(schema: &Path, files: &[PathBuf]) -> Vec<String> {
    let script = "\
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    with open(path, encoding='utf-8-sig') as f:
        doc = yaml.safe_load(f)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    print('ok' if not errors else 'invalid: ' + errors[0].message.replace('\\n', ' '))
";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(schema)
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_schema_accepts_valid_files_and_rejects_what_check_rejects() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = sluice!().arg("schema").output().unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    // Documentation and defaults come from the types the loader uses.
    let settings = &schema["$defs"]["Settings"]["properties"];
    assert_eq!(settings["batch_size"]["default"], 500, "{settings}");
    assert!(
        settings["batch_size"]["description"]
            .as_str()
            .unwrap()
            .contains("Most events moved between stages")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("schema.json");
    std::fs::write(&file, &out.stdout).unwrap();

    let mut valid = yaml_files(&root.join("pipelines"), |_| true);
    let samples = valid.len();
    valid.extend(yaml_files(&root.join("tests/corpus/pipelines"), |n| {
        n.starts_with("ok-")
    }));
    assert!(samples >= 5 && valid.len() > samples, "{valid:?}");
    let verdicts = validate(&file, &valid);
    for (path, verdict) in valid.iter().zip(&verdicts) {
        assert_eq!(verdict, "ok", "{}", path.display());
    }
    assert_eq!(verdicts.len(), valid.len());

    let invalid = yaml_files(&root.join("tests/corpus/schema-invalid"), |_| true);
    assert_eq!(invalid.len(), 4, "{invalid:?}");
    let verdicts = validate(&file, &invalid);
    assert_eq!(verdicts.len(), invalid.len());
    for (path, verdict) in invalid.iter().zip(&verdicts) {
        assert!(
            verdict.starts_with("invalid: "),
            "{}: {verdict}",
            path.display()
        );
        let check = sluice!().arg("check").arg(path).output().unwrap();
        assert_eq!(check.status.code(), Some(1), "{}", path.display());
    }
}

#[test]
fn the_test_file_schema_accepts_the_sample_test_files_and_rejects_an_unknown_key() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = sluice!().args(["schema", "--tests"]).output().unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tests.schema.json");
    std::fs::write(&file, &out.stdout).unwrap();

    let mut samples: Vec<PathBuf> = std::fs::read_dir(root.join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(".test.yaml"))
        .collect();
    samples.sort();
    assert!(samples.len() >= 4, "{samples:?}");
    let verdicts = validate(&file, &samples);
    assert_eq!(verdicts.len(), samples.len());
    for (path, verdict) in samples.iter().zip(&verdicts) {
        assert_eq!(verdict, "ok", "{}", path.display());
    }

    // What `sluice check` refuses in a test file, the schema refuses too.
    let bad = dir.path().join("p.test.yaml");
    std::fs::write(
        &bad,
        "tests:\n  - name: x\n    input:\n      - payload: 1\n        colour: red\n",
    )
    .unwrap();
    let verdicts = validate(&file, std::slice::from_ref(&bad));
    assert!(verdicts[0].starts_with("invalid: "), "{verdicts:?}");
    assert!(verdicts[0].contains("colour"), "{verdicts:?}");
    let check = sluice!().arg("check").arg(&bad).output().unwrap();
    assert_eq!(check.status.code(), Some(1));
}
