//! Every YAML example in README.md loads, so the README cannot drift from what `sluice check`
//! accepts: a whole pipeline as it is; a part of one (a list of steps, an input or an output
//! alone, a `tls`/`sasl` block) with the rest added; a test file as a test file. The files an
//! example names are made in a temp dir (certificates from the test authority, schemas from
//! `tests/schemas/`), and every `${VAR}` it uses is set.

use std::path::{Path, PathBuf};

use testkit::pki::Pki;
use testkit::sluice;

/// The password of the encrypted client key an example with `key_password` gets.
const KEY_PASSWORD: &str = "Readme-Key-7";

/// A fenced YAML block of the README and the line its text starts on.
struct Example {
    line: usize,
    text: String,
}

fn examples(readme: &str) -> Vec<Example> {
    let mut found = Vec::new();
    let mut open: Option<Example> = None;
    for (i, line) in readme.lines().enumerate() {
        match &mut open {
            None if line.trim_end() == "```yaml" => {
                open = Some(Example {
                    line: i + 2,
                    text: String::new(),
                })
            }
            None => {}
            Some(_) if line.trim_end() == "```" => found.extend(open.take()),
            Some(example) => {
                example.text.push_str(line);
                example.text.push('\n');
            }
        }
    }
    found
}

/// The top-level keys of a YAML text (`-` for a list).
fn top_keys(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.starts_with([' ', '#']) && !l.trim().is_empty())
        .map(|l| {
            if l.starts_with("- ") {
                "-"
            } else {
                l.split(':').next().unwrap_or_default()
            }
        })
        .collect()
}

fn indent(text: &str, by: usize) -> String {
    text.lines().map(|l| format!("{:by$}{l}\n", "")).collect()
}

/// The file to check for an example: (file name, contents).
fn completed(example: &Example) -> (&'static str, String) {
    let keys = top_keys(&example.text);
    let text = &example.text;
    if keys.contains(&"tests") {
        return ("example.test.yaml", text.clone());
    }
    if keys == ["-"] || keys.iter().all(|k| *k == "-") {
        return (
            "example.yaml",
            format!(
                "input:\n  stdin: {{}}\ntransforms:\n{}output:\n  stdout: {{}}\nerrors: drop\n",
                indent(text, 2)
            ),
        );
    }
    if keys.iter().all(|k| matches!(*k, "tls" | "sasl")) {
        // `server_name` is the NATS block's; the Kafka block has `sasl` and `key_password`.
        let input = if text.contains("server_name:") {
            "nats:\n    url: nats://127.0.0.1:4222\n    subjects: [orders]\n"
        } else {
            "kafka:\n    brokers: localhost:9092\n    topics: [orders]\n    group_id: shop\n"
        };
        return (
            "example.yaml",
            format!(
                "input:\n  {input}{}output:\n  stdout: {{}}\nerrors: drop\n",
                indent(text, 4)
            ),
        );
    }
    let known = [
        "name",
        "input",
        "transforms",
        "output",
        "errors",
        "settings",
    ];
    if let Some(other) = keys.iter().find(|k| !known.contains(k)) {
        panic!(
            "README.md:{}: an example with the key `{other}`: say here how to check it",
            example.line
        );
    }
    let mut file = text.clone();
    if !keys.contains(&"input") {
        file.push_str("input:\n  stdin: {}\n");
    }
    if !keys.contains(&"output") {
        file.push_str("output:\n  stdout: {}\n");
    }
    if !keys.contains(&"errors") {
        file.push_str("errors: drop\n");
    }
    ("example.yaml", file)
}

/// Makes the files an example names (`ca_file: ...`, `schema_file: ...`) under `dir`, an
/// absolute path moved under it; returns the text with the paths replaced.
fn make_files(text: &str, dir: &Path, pki: &Pki) -> String {
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas");
    let mut out = text.to_string();
    let named_files = text.lines().flat_map(|line| {
        line.split([',', '{'])
            .filter_map(|part| part.split_once(':'))
            .filter(|(k, _)| k.trim().ends_with("_file"))
            .map(|(k, v)| {
                let value = v.split_whitespace().next().unwrap_or_default();
                (k.trim(), value.trim_end_matches([',', '}']))
            })
    });
    for (key, named) in named_files {
        let target: PathBuf = dir.join(named.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let source = match key {
            "ca_file" | "client_ca_file" => pki.path("ca.pem"),
            "cert_file" => pki.path("client.pem"),
            "key_file" if text.contains("key_password:") => pki.path("client-key-pkcs8.pem"),
            "key_file" => pki.path("client-key.pem"),
            "schema_file" => {
                let name = Path::new(named).file_name().unwrap();
                let source = schemas.join(name);
                assert!(
                    source.is_file(),
                    "the README names {named}: add {} for it",
                    source.display()
                );
                source
            }
            other => panic!("a file key `{other}` in README.md: say here what it holds"),
        };
        std::fs::copy(&source, &target).unwrap();
        if named.starts_with('/') {
            out = out.replace(named, &target.display().to_string());
        }
    }
    out
}

/// `${NAME}`, `${NAME:-...}`, `${NAME:?...}` names in `text`.
fn variables(text: &str) -> Vec<String> {
    text.split("${")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn every_yaml_example_in_the_readme_passes_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let examples = examples(&readme);
    assert!(examples.len() >= 10, "{} examples found", examples.len());
    let pki = Pki::generate();
    pki.encrypt_client_key(KEY_PASSWORD);
    let mut failed = Vec::new();
    for example in &examples {
        let dir = tempfile::tempdir().unwrap();
        let (name, text) = completed(example);
        let text = make_files(&text, dir.path(), &pki);
        let file = dir.path().join(name);
        std::fs::write(&file, &text).unwrap();
        let mut check = sluice!();
        check.arg("check").arg(&file).current_dir(dir.path());
        for var in variables(&text) {
            let value = match var.as_str() {
                "KEY_PASSWORD" => KEY_PASSWORD,
                _ => "readme-value",
            };
            check.env(var, value);
        }
        let out = check.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !stdout.contains(": ok") {
            failed.push(format!(
                "README.md:{}: sluice check says:\n{stdout}{}\nof:\n{text}",
                example.line,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
