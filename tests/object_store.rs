//! The `object_store` output through the real binary, on a local directory (`file://`): which
//! objects are written, where, under which names, and that each event is in exactly one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use testkit::{pipeline, run_with_stdin, sluice};

/// Every file under `dir`, by path relative to it.
fn files(dir: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                found.insert(rel, path);
            }
        }
    }
    found
}

fn lines_of(object: &Path) -> Vec<serde_json::Value> {
    let bytes = std::fs::read(object).unwrap();
    let text = match object.extension().and_then(|e| e.to_str()) {
        Some("zst") => zstd::decode_all(&bytes[..]).unwrap(),
        Some("gz") => {
            let mut out = Vec::new();
            let mut gz = flate2::read::GzDecoder::new(&bytes[..]);
            std::io::Read::read_to_end(&mut gz, &mut out).unwrap();
            out
        }
        _ => bytes,
    };
    String::from_utf8(text)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn events_land_in_folders_by_template_in_objects_named_after_what_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("lake");
    let file = pipeline(
        dir.path(),
        "archive",
        &format!(
            "\
input: {{stdin: {{}}}}
transforms:
  - route: {{timestamp: '.ts'}}
output:
  object_store:
    url: file://{store}/events
    path: 'dt=%Y-%m-%d/service={{{{ .service }}}}'
    compression: zstd
    batch: {{max_events: 400}}
errors:
  output: {{file: {{path: {dlq}}}}}
",
            store = store.display(),
            dlq = dir.path().join("dlq.ndjson").display()
        ),
    );
    // 2026-11-29T00:00:00Z, then one event a minute: the day changes at event 1440.
    let day = 1_795_910_400_000i64;
    let mut input = String::new();
    for i in 0..2000 {
        let service = ["checkout", "search", "cart/v2"][i % 3];
        input.push_str(&format!(
            "{{\"i\":{i},\"service\":\"{service}\",\"ts\":{}}}\n",
            day + i as i64 * 60_000
        ));
    }
    input.push_str("not json\n");
    let out = run_with_stdin(sluice!(), &file, input.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let objects = files(&store);
    let mut seen = BTreeMap::new();
    for (rel, path) in &objects {
        let events = lines_of(path);
        let is: Vec<i64> = events.iter().map(|e| e["i"].as_i64().unwrap()).collect();
        // In line order within an object, and named after its first and last line.
        assert!(is.windows(2).all(|w| w[0] < w[1]), "{rel}: {is:?}");
        let (first, last) = (is[0] + 1, is[is.len() - 1] + 1);
        let name = format!("archive-stdin-{first:020}.0-{last:020}.0.ndjson.zst");
        assert!(rel.ends_with(&name), "{rel} is not named {name}");
        for e in &events {
            let date = if e["i"].as_i64().unwrap() < 1440 {
                "2026-11-29"
            } else {
                "2026-11-30"
            };
            let service = e["service"].as_str().unwrap().replace('/', "_");
            let folder = format!("events/dt={date}/service={service}/");
            assert!(rel.starts_with(&folder), "{rel} holds {e}");
            *seen.entry(e["i"].as_i64().unwrap()).or_insert(0) += 1;
        }
        assert!(events.len() <= 400, "{rel}: {} events", events.len());
    }
    assert_eq!(seen.len(), 2000, "every event stored");
    assert!(seen.values().all(|n| *n == 1), "an event stored twice");
    // Two days by three services, the largest folder (667 events a day at most) in two objects.
    let folders: std::collections::BTreeSet<_> = objects
        .keys()
        .map(|k| k.rsplit_once('/').unwrap().0.to_string())
        .collect();
    assert_eq!(folders.len(), 6, "{folders:?}");
    // The line that is not JSON has no folder: it is dead-lettered with the reason.
    let dlq = std::fs::read_to_string(dir.path().join("dlq.ndjson")).unwrap();
    assert_eq!(dlq.lines().count(), 1, "{dlq}");
    assert!(dlq.contains("\"payload_text\":\"not json\""), "{dlq}");
}

#[test]
fn a_bad_url_an_unknown_option_and_a_bad_path_are_reported_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "bad",
        "\
input: {stdin: {}}
output:
  object_store:
    url: ftp://host/x
    path: '{{ .a | }}'
    batch: {max_events: 0}
errors:
  output:
    object_store:
      url: s3://bucket/dead
      options: {endpoint: 'http://127.0.0.1:1', colour: blue}
",
    );
    let out = sluice!().arg("check").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let shown = file.display();
    for expected in [
        format!("{shown}:4:10: error: "),
        format!("{shown}:5:11: error: jq expression"),
        format!("{shown}:6:25: error: must be above 0"),
        format!("{shown}:11:57: error: unknown option \"colour\""),
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(&expected)),
            "no `{expected}` in:\n{stderr}"
        );
    }
    assert!(stderr.ends_with("4 errors found\n"), "{stderr}");
}
