//! Pipeline-file loading: any text, and the samples and corpus files mutated as fuzzers mutate
//! them, load or fail with diagnostics inside the text; blank lines before a file move every
//! diagnostic with it; the corpus loads or fails as its `# expect:` lines say.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use sluice::config::Diagnostic;
use sluice::pipeline::{Pipeline, load_str};

use super::{config, corpus, env, lines, rest_at};

pub(super) fn load(text: &str) -> Result<Pipeline, Vec<Diagnostic>> {
    load_str(Path::new("fuzz.yaml"), text, &env)
}

/// Loads `text` and checks what holds for any text: no panic, and a failure has at least one
/// diagnostic, each with a message and a line and column inside the text.
pub(super) fn check_load(text: &str) -> Result<Result<Pipeline, Vec<Diagnostic>>, TestCaseError> {
    let result = load(text);
    if let Err(diagnostics) = &result {
        prop_assert!(
            !diagnostics.is_empty(),
            "failed without a diagnostic: {text:?}"
        );
        for d in diagnostics {
            prop_assert!(!d.message.is_empty(), "{d:?}");
            prop_assert_eq!(d.file.as_path(), Path::new("fuzz.yaml"));
            prop_assert!(
                rest_at(text, d.line, d.column).is_some(),
                "{}:{} is outside the text: {} in {:?}",
                d.line,
                d.column,
                d.message,
                text
            );
        }
    }
    Ok(result)
}

/// Pipeline files that load: the samples under `pipelines/` (not their test files) and `ok-*` of
/// the corpus.
fn valid_pipelines() -> Vec<(PathBuf, String)> {
    let mut files = corpus("pipelines");
    files.retain(|(p, _)| !file_name(p).ends_with(".test.yaml"));
    files.extend(
        corpus("tests/corpus/pipelines")
            .into_iter()
            .filter(|(p, _)| file_name(p).starts_with("ok-")),
    );
    files
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "yaml"))
        .map(|(p, bytes)| (p, String::from_utf8(bytes).unwrap()))
        .collect()
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// What fuzzers do to a file: characters and lines deleted, duplicated, inserted.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteChar(Index),
    DuplicateChar(Index),
    InsertChar(Index, char),
    DeleteLine(Index),
    DuplicateLine(Index),
    InsertLine(Index, String),
    SwapLines(Index, Index),
    Indent(Index, usize),
    Dedent(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting_char = prop_oneof![
        prop::sample::select(vec![
            ' ', '\t', '\n', '\r', ':', '-', '{', '}', '[', ']', '"', '\'', '$', '#', '&', '*',
            '!', '|', '>', ',', '?', '%', '@', '`', '\\', '\0', '\u{feff}', 'é', '😀',
        ]),
        any::<char>(),
    ];
    let interesting_line = prop_oneof![
        prop::sample::select(vec![
            "",
            "  colour: blue",
            "  - jq: .",
            "  - jq: '.a | {b'",
            "  - filter: |",
            "      .x >",
            "  - route: {}",
            "settings:",
            "  batch_size: 99999999999999999999999",
            "  workers: -1",
            "  max_fanout: 1e400",
            "  shutdown_timeout: 1e400s",
            "  channel_batches: 0",
            "errors: {output: {stdout: {}}}",
            "input: ${",
            "    url: ${UNSET}",
            "    brokers: ${MISSING:?brokers}",
            "\tcodec: json",
            "a: &x 1",
            "b: *x",
            "c: !!str 1",
            "---",
            "...",
            "? complex",
            "- item",
            "# comment",
            "%YAML 1.2",
        ])
        .prop_map(String::from),
        "[ -~]{0,20}",
    ];
    prop_oneof![
        any::<Index>().prop_map(Mutation::DeleteChar),
        any::<Index>().prop_map(Mutation::DuplicateChar),
        (any::<Index>(), interesting_char).prop_map(|(i, c)| Mutation::InsertChar(i, c)),
        any::<Index>().prop_map(Mutation::DeleteLine),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        (any::<Index>(), interesting_line).prop_map(|(i, l)| Mutation::InsertLine(i, l)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<Index>(), 1usize..4).prop_map(|(i, n)| Mutation::Indent(i, n)),
        any::<Index>().prop_map(Mutation::Dedent),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for m in mutations {
        let mut lines: Vec<String> = chars
            .iter()
            .collect::<String>()
            .split('\n')
            .map(String::from)
            .collect();
        match m {
            Mutation::DeleteChar(i) if !chars.is_empty() => {
                chars.remove(i.index(chars.len()));
            }
            Mutation::DuplicateChar(i) if !chars.is_empty() => {
                let at = i.index(chars.len());
                chars.insert(at, chars[at]);
            }
            Mutation::InsertChar(i, c) => chars.insert(i.index(chars.len() + 1), *c),
            Mutation::DeleteLine(i) => {
                lines.remove(i.index(lines.len()));
                chars = lines.join("\n").chars().collect();
            }
            Mutation::DuplicateLine(i) => {
                let at = i.index(lines.len());
                lines.insert(at, lines[at].clone());
                chars = lines.join("\n").chars().collect();
            }
            Mutation::InsertLine(i, line) => {
                lines.insert(i.index(lines.len() + 1), line.clone());
                chars = lines.join("\n").chars().collect();
            }
            Mutation::SwapLines(a, b) => {
                let (a, b) = (a.index(lines.len()), b.index(lines.len()));
                lines.swap(a, b);
                chars = lines.join("\n").chars().collect();
            }
            Mutation::Indent(i, n) => {
                let at = i.index(lines.len());
                lines[at].insert_str(0, &" ".repeat(*n));
                chars = lines.join("\n").chars().collect();
            }
            Mutation::Dedent(i) => {
                let at = i.index(lines.len());
                if let Some(rest) = lines[at].strip_prefix("  ") {
                    lines[at] = rest.to_string();
                }
                chars = lines.join("\n").chars().collect();
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

fn yaml_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "input:",
            "output:",
            "errors:",
            "transforms:",
            "settings:",
            "name:",
            "stdin:",
            "stdout:",
            "file:",
            "generate:",
            "kafka:",
            "nats:",
            "jetstream:",
            "template:",
            "program:",
            "jq:",
            "filter:",
            "route:",
            "drop",
            "stop",
            "codec:",
            "json",
            "raw",
            "path:",
            "batch_size:",
            "workers:",
            "shutdown_timeout:",
            "5s",
            "\n",
            "\n  ",
            "\n    ",
            "\r\n",
            "\r",
            "\t",
            " ",
            "- ",
            ": ",
            "{",
            "}",
            "[",
            "]",
            ",",
            "'",
            "\"",
            "|",
            ">",
            "|-",
            "#",
            "&a",
            "*a",
            "!t",
            "!!str",
            "?",
            "---",
            "...",
            "~",
            "null",
            "${SET}",
            "${",
            "${MISSING}",
            "$$",
            ".",
            ".a | {b",
            "99999999999999999999",
            "-1",
            "1e400",
            "é",
            "😀",
            "\u{feff}",
            "\0",
            "\\",
            "\\u",
            "%YAML 1.2\n",
        ])
        .prop_map(String::from),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn loading_any_text_never_panics(text in prop_oneof![any::<String>(), yaml_soup()]) {
        let _ = check_load(&text)?;
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn loading_mutated_pipelines_never_panics_and_points_inside(
        seed in prop::sample::select(valid_pipelines()),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let text = mutate(&seed.1, &mutations);
        let _ = check_load(&text)?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Blank lines before a file move every diagnostic down by as many lines and change nothing
    /// else.
    #[test]
    fn diagnostics_move_with_the_text(
        // Lines before a byte order mark or a `%YAML` directive change what the file means.
        seed in prop::sample::select(
            valid_pipelines()
                .into_iter()
                .filter(|(_, text)| !text.starts_with(['\u{feff}', '%']))
                .collect::<Vec<_>>()
        ),
        mutations in prop::collection::vec(mutation(), 0..4),
        blank in 1usize..4,
    ) {
        let text = mutate(&seed.1, &mutations);
        prop_assume!(!text.starts_with('\u{feff}') && !text.starts_with("%"));
        let moved = format!("{}{text}", "\n".repeat(blank));
        let before = check_load(&text)?;
        let after = check_load(&moved)?;
        match (before, after) {
            (Ok(_), Ok(_)) => {}
            (Err(before), Err(after)) => {
                let shifted: Vec<(usize, usize, String)> = before
                    .into_iter()
                    .map(|d| (d.line + blank, d.column, d.message))
                    .collect();
                let after: Vec<(usize, usize, String)> =
                    after.into_iter().map(|d| (d.line, d.column, d.message)).collect();
                prop_assert_eq!(after, shifted, "{:?}", text);
            }
            (before, after) => prop_assert!(
                false,
                "{text:?}: {:?} but after blank lines {:?}",
                before.map(|_| ()),
                after.map(|_| ())
            ),
        }
    }
}

/// Every valid sample and corpus file loads, and every `bad-*` corpus file fails with the
/// diagnostics its `# expect: LINE:COLUMN message` comments name.
#[test]
fn pipeline_corpus() {
    let mut problems = Vec::new();
    for (path, _) in valid_pipelines() {
        let text = std::fs::read_to_string(&path).unwrap();
        if let Err(d) = load(&text) {
            problems.push(format!("{} should load: {d:#?}", path.display()));
        }
    }
    for (path, bytes) in corpus("tests/corpus/pipelines") {
        let name = file_name(&path);
        let text = String::from_utf8_lossy(&bytes);
        let result = check_load(&text).map_err(|e| format!("{}: {e}", path.display()));
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        if name.starts_with("ok-") {
            continue;
        }
        assert!(
            name.starts_with("bad-"),
            "{name}: corpus files are ok-* or bad-*"
        );
        let expected: Vec<&str> = lines(&text)
            .into_iter()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expected.is_empty() || text.is_empty(),
            "{name}: no `# expect:` line"
        );
        let Err(diagnostics) = result else {
            problems.push(format!("{name} should fail"));
            continue;
        };
        let shown: Vec<String> = diagnostics
            .iter()
            .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
            .collect();
        for e in expected {
            let (at, message) = e.split_once(' ').unwrap_or((e, ""));
            if !shown
                .iter()
                .any(|s| s.starts_with(&format!("{at} ")) && s.contains(message))
            {
                problems.push(format!("{name}: no `{e}` in {shown:#?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
