//! Property tests in place of fuzz targets (cargo-fuzz needs a nightly toolchain): env
//! interpolation, pipeline-file loading, and event decoding through a jq transform chain.
//!
//! Each property runs a bounded number of cases (`PROPTEST_CASES` overrides it). The corpus under
//! `tests/corpus/` (tricky pipeline files and event payloads) is replayed through the same checks
//! on every run, and proptest keeps the inputs of past failures beside each property's file
//! (`tests/fuzz/<topic>.proptest-regressions`).
//!
//! # Layout
//! - `interpolation`: `${VAR}` templates expand as specified and map positions back.
//! - `loading`: pipeline files, any text or mutated samples, load or fail with a place inside.
//! - `events`: payloads decoded, run through jq stages and encoded, with known results checked.
//! - `payloads`: the JSON values, corrupted JSON and token soup the event properties feed in.
//! - `nesting`: jq programs nested deeply load or fail with a place, and never overflow a stack.

mod events;
mod interpolation;
mod loading;
mod nesting;
mod payloads;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Stack of the threads that run decode and transforms in the pipeline; the event properties
/// run on a thread with the same stack.
const WORKER_STACK: usize = sluice::transform::nesting::STACK;

/// `cases` unless `PROPTEST_CASES` says otherwise, as proptest's own default does.
///
/// Past failures are kept beside the property's own file: proptest's default would put them in
/// `tests/proptest-regressions/`, as this folder has a `main.rs`.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

fn corpus(dir: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
}

/// Lines as YAML, and so every diagnostic, counts them: broken at `\n`, `\r\n` or a lone `\r`.
fn lines(text: &str) -> Vec<&str> {
    text.split('\n')
        .flat_map(|l| l.strip_suffix('\r').unwrap_or(l).split('\r'))
        .collect()
}

/// The 1-based line and column of every char of `text`, and of its end.
fn positions(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut line, mut column) = (1, 1);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push((line, column));
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => (line, column) = (line + 1, 1),
            _ => column += 1,
        }
    }
    out.push((line, column));
    out
}

/// The text of `text` from a 1-based line and column on; `None` when the position is outside the
/// text. The end of a line (column `length + 1`) is inside, as is the end of the text.
fn rest_at(text: &str, line: usize, column: usize) -> Option<&str> {
    let at = positions(text).iter().position(|&p| p == (line, column))?;
    let byte = text.char_indices().nth(at).map_or(text.len(), |(i, _)| i);
    Some(&text[byte..])
}

/// The environment that templates and pipeline files are interpolated with.
fn env(name: &str) -> Option<String> {
    match name {
        "SET" => Some("value".into()),
        "EMPTY" => Some(String::new()),
        "MULTI" => Some("a\nb".into()),
        "UNI" => Some("é😀".into()),
        "DOLLAR" => Some("${SET}".into()),
        "TOPIC" => Some("orders".into()),
        _ => None,
    }
}
