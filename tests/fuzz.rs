//! Property tests in place of fuzz targets (cargo-fuzz needs a nightly toolchain): env
//! interpolation, pipeline-file loading, and event decoding through a jq transform chain.
//!
//! Each property runs a bounded number of cases (`PROPTEST_CASES` overrides it). The corpus under
//! `tests/corpus/` (tricky pipeline files and event payloads) is replayed through the same checks
//! on every run, and proptest keeps the inputs of past failures in `tests/fuzz.proptest-regressions`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;
use sluice::codec::{self, Codec};
use sluice::config::Diagnostic;
use sluice::config::vars::{Interpolated, interpolate};
use sluice::event::Position;
use sluice::pipeline::{Pipeline, load_str};
use sluice::transform::{Chain, Record};

/// Stack of the threads that run decode and transforms in the pipeline; the event properties
/// run on a thread with the same stack.
const WORKER_STACK: usize = sluice::transform::nesting::STACK;

/// `cases` unless `PROPTEST_CASES` says otherwise, as proptest's own default does.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
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

// ---------------------------------------------------------------------------------------------
// Env interpolation
// ---------------------------------------------------------------------------------------------

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

/// Checks what holds for any input: errors point at a `${` of the input; a result maps every
/// position back into the input, a copied character to itself and a substituted one to the `${`
/// it came from.
fn check_interpolation(input: &str) -> Result<Option<Interpolated>, TestCaseError> {
    match interpolate(input, &env) {
        Err(errors) => {
            prop_assert!(!errors.is_empty(), "an error without errors");
            for e in &errors {
                prop_assert!(!e.message.is_empty());
                let at = rest_at(input, e.line, e.column);
                prop_assert!(
                    at.is_some_and(|at| at.starts_with("${")),
                    "error {e:?} is not at a `${{` of {input:?}"
                );
            }
            prop_assert!(input.contains("${"), "{input:?} failed: {errors:?}");
            Ok(None)
        }
        Ok(got) => {
            if !input.contains('$') {
                prop_assert_eq!(&got.text, input);
            }
            if !input.contains("${") {
                prop_assert_eq!(&got.text, &input.replace("$$", "$"));
            }
            for (li, line) in lines(&got.text).into_iter().enumerate() {
                let chars: Vec<char> = line.chars().collect();
                for col in 1..=chars.len() + 1 {
                    let (l, c) = got.original_position(li + 1, col);
                    let at = rest_at(input, l, c);
                    prop_assert!(
                        at.is_some(),
                        "{}:{} maps to {l}:{c}, outside {input:?}",
                        li + 1,
                        col
                    );
                    let at = at.unwrap_or_default();
                    if let Some(&ch) = chars.get(col - 1) {
                        prop_assert!(
                            at.starts_with(ch) || at.starts_with("${"),
                            "{}:{} ({ch:?}) of {:?} maps to {l}:{c} ({:?}) of {input:?}",
                            li + 1,
                            col,
                            got.text,
                            at.chars().next()
                        );
                    }
                }
            }
            Ok(Some(got))
        }
    }
}

/// Pieces of interpolation input, any mix of them: what the parser has to cope with.
fn interpolation_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("$".to_string()),
        Just("$$".to_string()),
        Just("${".to_string()),
        Just("}".to_string()),
        Just("{".to_string()),
        Just(":-".to_string()),
        Just(":?".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("${SET}".to_string()),
        Just("${MULTI}".to_string()),
        Just("${UNI}".to_string()),
        Just("${EMPTY}".to_string()),
        Just("${DOLLAR}".to_string()),
        Just("${MISSING}".to_string()),
        Just("${SET:-".to_string()),
        Just("${MISSING:-d}".to_string()),
        Just("${MISSING:?need it}".to_string()),
        Just("${EMPTY:?}".to_string()),
        Just("${MISSING:-${SET}}".to_string()),
        Just("${${SET}}".to_string()),
        Just("${1BAD}".to_string()),
        Just("${é}".to_string()),
        Just("$SET".to_string()),
        Just("é".to_string()),
        Just("日本".to_string()),
        Just("😀".to_string()),
        Just("\u{feff}".to_string()),
        Just("\0".to_string()),
        "[a-zA-Z_0-9 :-]{1,6}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// A piece of a well-formed template: its text, and what it becomes (`None`: an error at its
/// start).
fn template_piece() -> impl Strategy<Value = (String, Option<String>)> {
    let fixed =
        |input: &str, output: Option<&str>| Just((input.to_string(), output.map(String::from)));
    prop_oneof![
        4 => "[^$]{0,12}".prop_map(|s| (s.clone(), Some(s))),
        1 => fixed("$$", Some("$")),
        1 => fixed("${SET}", Some("value")),
        1 => fixed("${EMPTY}", Some("")),
        1 => fixed("${MULTI}", Some("a\nb")),
        1 => fixed("${UNI}", Some("é😀")),
        1 => fixed("${DOLLAR}", Some("${SET}")),
        1 => fixed("${EMPTY:-e}", Some("e")),
        1 => fixed("${SET:-d}", Some("value")),
        1 => fixed("${SET:?m}", Some("value")),
        1 => "[^}\n\r]{0,8}".prop_map(|d| (format!("${{MISSING:-{d}}}"), Some(d))),
        1 => fixed("${MISSING}", None),
        1 => fixed("${MISSING:?needed}", None),
        1 => fixed("${EMPTY:?}", None),
        1 => fixed("${1BAD}", None),
        1 => fixed("${A B}", None),
        1 => fixed("${}", None),
        1 => fixed("${UNTERMINATED\n", None),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn interpolation_of_any_text_never_panics(input in prop_oneof![any::<String>(), interpolation_soup()]) {
        check_interpolation(&input)?;
    }

    /// Templates made of known pieces expand to exactly the expected text, with every copied
    /// character mapped to its own place and every substitution to its `${`; or fail with one
    /// error per bad piece, each at that piece.
    #[test]
    fn templates_expand_as_specified(pieces in prop::collection::vec(template_piece(), 0..12)) {
        let mut input = String::new();
        let mut expected = String::new();
        // Char offsets: of each bad piece in the input; of each output char that is copied or
        // substituted, with the input char it comes from.
        let mut errors = Vec::new();
        let mut copied = Vec::new();
        let mut substituted = Vec::new();
        for (text, output) in &pieces {
            let (from, to) = (input.chars().count(), expected.chars().count());
            match output {
                None => errors.push(from),
                Some(out) if text.starts_with("${") => {
                    substituted.extend((0..out.chars().count()).map(|k| (to + k, from)));
                    expected.push_str(out);
                }
                Some(out) => {
                    copied.extend((0..out.chars().count()).map(|k| (to + k, from + k)));
                    expected.push_str(out);
                }
            }
            input.push_str(text);
        }
        let (in_pos, out_pos) = (positions(&input), positions(&expected));
        match check_interpolation(&input)? {
            Some(got) => {
                prop_assert!(errors.is_empty(), "{input:?} should fail at {errors:?}");
                prop_assert_eq!(&got.text, &expected);
                for (to, from) in copied.into_iter().chain(substituted) {
                    let (l, c) = out_pos[to];
                    prop_assert_eq!(
                        got.original_position(l, c), in_pos[from],
                        "output {}:{} of {:?}", l, c, got.text
                    );
                }
            }
            None => {
                let got: Vec<(usize, usize)> = interpolate(&input, &env)
                    .unwrap_err()
                    .iter()
                    .map(|e| (e.line, e.column))
                    .collect();
                let want: Vec<(usize, usize)> = errors.iter().map(|&i| in_pos[i]).collect();
                prop_assert_eq!(got, want, "{:?}", input);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pipeline-file loading
// ---------------------------------------------------------------------------------------------

fn load(text: &str) -> Result<Pipeline, Vec<Diagnostic>> {
    load_str(Path::new("fuzz.yaml"), text, &env)
}

/// Loads `text` and checks what holds for any text: no panic, and a failure has at least one
/// diagnostic, each with a message and a line and column inside the text.
fn check_load(text: &str) -> Result<Result<Pipeline, Vec<Diagnostic>>, TestCaseError> {
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

// ---------------------------------------------------------------------------------------------
// Event decoding and jq transforms
// ---------------------------------------------------------------------------------------------

/// A pipeline's transform stage as its worker threads run it.
struct Stage {
    name: &'static str,
    codec: Codec,
    chain: Chain,
}

/// The transforms of the stages, as pipeline files write them.
const STAGES: &[(&str, &str, &str)] = &[
    ("identity", "json", "- jq: '.'"),
    ("pick", "json", "- jq: '{id, v: .a.b}'"),
    ("items", "json", "- jq: '.items[]?'"),
    ("select", "json", "- jq: 'select(.x > 1)'"),
    ("tostring", "json", "- jq: 'tostring'"),
    ("count", "json", "- jq: '.count + 1'"),
    ("roundtrip", "json", "- jq: 'tojson | fromjson'"),
    ("paths", "json", "- jq: '[paths] | length'"),
    (
        "chain",
        "json",
        "- filter: '.x != null'\n  - jq: '{x, n: (.x | length)}'\n  - route:\n      key: '.x | tostring'\n      headers:\n        h: '.n'",
    ),
    ("raw-fromjson", "raw", "- jq: 'fromjson'"),
    ("raw-tonumber", "raw", "- jq: 'tonumber'"),
    (
        "raw-text",
        "raw",
        "- jq: '[length, .[1:3], ascii_downcase, explode] | tojson'",
    ),
    ("raw-base64", "raw", "- jq: '@base64d'"),
];

fn stages() -> Vec<Stage> {
    STAGES
        .iter()
        .map(|(name, codec, transforms)| {
            let text = format!(
                "input:\n  stdin: {{codec: {codec}}}\ntransforms:\n  {transforms}\noutput:\n  stdout: {{}}\nerrors: drop\n"
            );
            let pipeline = load(&text).unwrap_or_else(|d| panic!("{name}: {d:#?}"));
            let config = pipeline.config;
            Stage {
                name,
                codec: config.input.codec().plain(),
                chain: Chain::build(&config.transforms, config.settings.max_fanout).unwrap(),
            }
        })
        .collect()
}

/// Decode, chain, encode: what `pipeline::worker::Worker::one` does with an event. Either
/// every output payload or the failing step and its reason.
fn run(stage: &Stage, payload: &[u8]) -> Result<Vec<Vec<u8>>, (String, String)> {
    let value = codec::decode(stage.codec, &Bytes::copy_from_slice(payload))
        .map_err(|e| ("decode".to_string(), e.to_string()))?;
    let record = Record {
        value,
        key: Some(Bytes::from_static(b"key")),
        headers: vec![("h".into(), Bytes::from_static(b"v"))],
        timestamp: Some(1_700_000_000_000),
        destination: None,
        partition: None,
    };
    let position = Position::Generated { seq: 7 };
    let mut records = Vec::new();
    stage
        .chain
        .run(record, &position, &mut records)
        .map_err(|e| (e.step.to_string(), e.reason))?;
    records
        .into_iter()
        .map(|r| {
            let mut out = Vec::new();
            codec::encode(stage.codec, &r.value, &mut out)
                .map_err(|e| ("encode".to_string(), e.to_string()))?;
            Ok(out)
        })
        .collect()
}

fn json(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}

/// Equal JSON values; floats compare by value (so `1.0` and `1e0` are the same).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or_default(),
                y.as_f64().unwrap_or_default(),
            );
            x == y
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// Outputs (parsed as JSON) are `expected`, or both are a failure.
fn check_outputs(
    stage: &Stage,
    payload: &[u8],
    got: &Option<Vec<Option<Value>>>,
    expected: Option<Vec<Value>>,
) -> Result<(), TestCaseError> {
    let same = match (got, &expected) {
        (None, None) => true,
        (Some(got), Some(expected)) => {
            got.len() == expected.len()
                && got
                    .iter()
                    .zip(expected)
                    .all(|(g, e)| g.as_ref().is_some_and(|g| same_json(g, e)))
        }
        _ => false,
    };
    prop_assert!(
        same,
        "{}: {} gave {:?}, expected {:?}",
        stage.name,
        String::from_utf8_lossy(payload),
        got,
        expected
    );
    Ok(())
}

/// The jq type order: null < false < true < numbers < strings < arrays < objects.
fn greater_than_one(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null | Value::Bool(_)) => false,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f > 1.0),
        Some(_) => true,
    }
}

/// Runs `payload` through every stage and checks the outcome: any input gives outputs or a
/// reason; JSON output is strict JSON; and where the result is known from the input alone, the
/// result is that.
fn check_event(stages: &[Stage], payload: &[u8]) -> Result<(), TestCaseError> {
    let input = json(payload);
    for stage in stages {
        let result = run(stage, payload);
        let outputs = match &result {
            Err((step, reason)) => {
                prop_assert!(
                    !step.is_empty() && !reason.is_empty(),
                    "{}: empty failure {result:?}",
                    stage.name
                );
                if stage.codec == Codec::Json && step == "decode" {
                    prop_assert!(
                        input.is_none(),
                        "{}: valid JSON refused: {reason}",
                        stage.name
                    );
                }
                None
            }
            Ok(outputs) => {
                if stage.codec == Codec::Json {
                    prop_assert!(input.is_some(), "{}: invalid JSON accepted", stage.name);
                    for out in outputs {
                        prop_assert!(
                            json(out).is_some(),
                            "{}: output is not JSON: {:?}",
                            stage.name,
                            String::from_utf8_lossy(out)
                        );
                    }
                }
                Some(outputs.iter().map(|o| json(o)).collect::<Vec<_>>())
            }
        };
        let Some(input) = &input else { continue };
        let object = input.as_object();
        match stage.name {
            "identity" | "roundtrip" => {
                check_outputs(stage, payload, &outputs, Some(vec![input.clone()]))?;
            }
            "pick" => {
                if let Some(o) = object {
                    let v = match o.get("a") {
                        None | Some(Value::Null) => Some(Value::Null),
                        Some(Value::Object(a)) => Some(a.get("b").cloned().unwrap_or(Value::Null)),
                        Some(_) => None,
                    };
                    let id = o.get("id").cloned().unwrap_or(Value::Null);
                    let expected = v.map(|v| vec![serde_json::json!({"id": id, "v": v})]);
                    check_outputs(stage, payload, &outputs, expected)?;
                }
            }
            "items" => {
                if let Some(o) = object {
                    let (mut got, mut expected) = (outputs.clone(), Vec::new());
                    match o.get("items") {
                        // One input may not fan out to more than settings.max_fanout events.
                        Some(Value::Array(items)) if items.len() > 10_000 => {
                            let reason = result.as_ref().err().map(|(_, r)| r.as_str());
                            prop_assert!(
                                reason.is_some_and(|r| r.contains("max_fanout")),
                                "{} items gave {:?}",
                                items.len(),
                                reason
                            );
                            continue;
                        }
                        Some(Value::Array(items)) => expected.clone_from(items),
                        Some(Value::Object(items)) => {
                            // This test's objects keep no key order: compare the values sorted.
                            expected = items.values().cloned().collect();
                            expected.sort_by_key(Value::to_string);
                            if let Some(got) = &mut got {
                                got.sort_by_key(|v| v.as_ref().map(Value::to_string));
                            }
                        }
                        _ => {}
                    }
                    check_outputs(stage, payload, &got, Some(expected))?;
                }
            }
            "select" => {
                if let Some(o) = object {
                    let keep = greater_than_one(o.get("x"));
                    let expected = if keep {
                        vec![input.clone()]
                    } else {
                        Vec::new()
                    };
                    check_outputs(stage, payload, &outputs, Some(expected))?;
                }
            }
            "tostring" => {
                let outputs = outputs.unwrap_or_default();
                prop_assert_eq!(outputs.len(), 1);
                let Some(Value::String(s)) = &outputs[0] else {
                    return Err(TestCaseError::fail(format!(
                        "tostring gave {:?}",
                        outputs[0]
                    )));
                };
                match input {
                    Value::String(i) => prop_assert_eq!(s, i),
                    other => {
                        let back = serde_json::from_str::<Value>(s).ok();
                        prop_assert!(
                            back.as_ref().is_some_and(|b| same_json(b, other)),
                            "tostring of {other} gave {s}"
                        );
                    }
                }
            }
            "count" => {
                if let Some(o) = object {
                    let count = o.get("count").unwrap_or(&Value::Null);
                    let fails = !matches!(count, Value::Null | Value::Number(_));
                    prop_assert_eq!(result.is_err(), fails, "{:?}", result);
                    let outputs = outputs.unwrap_or_default();
                    if !fails {
                        prop_assert_eq!(outputs.len(), 1);
                        let got = outputs[0].as_ref();
                        let int = |v: &Value| {
                            v.as_i64()
                                .map(i128::from)
                                .or_else(|| v.as_u64().map(i128::from))
                        };
                        let sum_ok = match (count, got) {
                            (Value::Null, Some(got)) => int(got) == Some(1),
                            // Integers add exactly, or as floats beyond 64 bits.
                            (Value::Number(n), Some(got)) => match (int(count), int(got)) {
                                (Some(c), Some(g)) => g == c + 1,
                                (Some(c), None) => got.as_f64() == Some((c + 1) as f64),
                                _ => n.as_f64().zip(got.as_f64()).is_some_and(|(n, g)| {
                                    same_json(&Value::from(n + 1.0), &Value::from(g))
                                }),
                            },
                            _ => false,
                        };
                        prop_assert!(sum_ok, "{} + 1 gave {:?}", count, got);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3i64..4).prop_map(Value::from),
        any::<f64>().prop_filter_map("not finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        any::<String>().prop_map(Value::String),
        "[a-z]{0,3}".prop_map(Value::String),
    ]
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["id", "a", "b", "x", "items", "count", ""])
            .prop_map(String::from),
        any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Corruption {
    Truncate(Index),
    Delete(Index),
    Insert(Index, u8),
    Flip(Index, u8),
}

fn corruption() -> impl Strategy<Value = Corruption> {
    let byte = prop_oneof![
        prop::sample::select(b"{}[],:\"\\ \n\0\xff\xc3".to_vec()),
        any::<u8>(),
    ];
    prop_oneof![
        any::<Index>().prop_map(Corruption::Truncate),
        any::<Index>().prop_map(Corruption::Delete),
        (any::<Index>(), byte).prop_map(|(i, b)| Corruption::Insert(i, b)),
        (any::<Index>(), 1u8..=255).prop_map(|(i, b)| Corruption::Flip(i, b)),
    ]
}

fn corrupt(mut bytes: Vec<u8>, corruptions: &[Corruption]) -> Vec<u8> {
    for c in corruptions {
        match c {
            Corruption::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), *b),
            _ if bytes.is_empty() => {}
            Corruption::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            Corruption::Delete(i) => {
                bytes.remove(i.index(bytes.len()));
            }
            Corruption::Flip(i, b) => {
                let at = i.index(bytes.len());
                bytes[at] ^= b;
            }
        }
    }
    bytes
}

/// Objects more often than anything else: they are what the programs look into.
fn json_payload() -> impl Strategy<Value = Vec<u8>> {
    let object = prop::collection::vec((json_key(), json_value()), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()));
    (
        prop_oneof![3 => object, 1 => json_value()],
        any::<bool>(),
        prop::collection::vec(corruption(), 0..3),
    )
        .prop_map(|(value, pretty, corruptions)| {
            let text = if pretty {
                serde_json::to_vec_pretty(&value)
            } else {
                serde_json::to_vec(&value)
            };
            corrupt(text.unwrap(), &corruptions)
        })
}

fn json_soup() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"",
            "\"a\"",
            "\"x\"",
            "\"items\"",
            "\\",
            "\\u",
            "\\ud800",
            "\\udc00",
            "\\u0000",
            "0",
            "-",
            "1",
            "1e999",
            "-1e999",
            "1.5e-400",
            "123456789012345678901234567890",
            "NaN",
            "Infinity",
            "true",
            "false",
            "null",
            " ",
            "\n",
            "\t",
            "\u{feff}",
            "\0",
            "é",
            "\u{2028}",
        ])
        .prop_map(|t| t.as_bytes().to_vec()),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

thread_local! {
    static STAGE_SET: Vec<Stage> = stages();
}

proptest! {
    #![proptest_config(config(1024))]

    fn events_never_panic(payload in prop_oneof![
        2 => json_payload(),
        1 => json_soup(),
        1 => any::<Vec<u8>>(),
    ]) {
        STAGE_SET.with(|stages| check_event(stages, &payload))?;
    }
}

/// Runs `f` on a thread with the stack of the pipeline's transform workers.
fn on_worker_stack(f: impl FnOnce() + Send + 'static) {
    let worker = std::thread::Builder::new()
        .name("fuzz-worker".into())
        .stack_size(WORKER_STACK)
        .spawn(f)
        .unwrap();
    if let Err(panic) = worker.join() {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn events_through_transforms() {
    on_worker_stack(events_never_panic);
}

/// Every payload under `tests/corpus/events/` goes through every stage with the same checks.
#[test]
fn event_corpus() {
    on_worker_stack(|| {
        let stages = stages();
        let mut problems = Vec::new();
        for (path, payload) in corpus("tests/corpus/events") {
            if let Err(e) = check_event(&stages, &payload) {
                problems.push(format!("{}: {e}", path.display()));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    });
}

/// A float written with its shortest digits comes out as the same number. Without serde_json's
/// `float_roundtrip` feature, `-3.573772973450967e227` was parsed one unit in the last place off
/// and written as `-3.5737729734509666e227`.
#[test]
fn floats_keep_their_value() {
    let stages = stages();
    let identity = stages.iter().find(|s| s.name == "identity").unwrap();
    for text in [
        "-3.573772973450967e227",
        "2.2250738585072014e-308",
        "0.1",
        "1e300",
    ] {
        let out = run(identity, text.as_bytes()).unwrap();
        let out = String::from_utf8(out[0].clone()).unwrap();
        let want: f64 = text.parse().unwrap();
        let got: f64 = out.parse().unwrap();
        assert_eq!(got.to_bits(), want.to_bits(), "{text} came out as {out}");
    }
}

/// Pieces that nest a jq program one level more each, as (before, after) the inner program:
/// brackets, blocks, string interpolation, and operators that chain.
const NESTINGS: &[(&str, &str)] = &[
    ("(", ")"),
    ("[", "]"),
    ("{a: ", "}"),
    ("if . then ", " else 1 end"),
    ("\"s\\(", ")\""),
    (".a | ", ""),
    ("1, ", ""),
    ("1 + ", ""),
    ("try ", ""),
    ("-", ""),
    (". as $x | ", ""),
    ("reduce .[] as $x (", "; .)"),
    ("[.[] | ", "]"),
    ("def f: ", "; f"),
    (". // ", ""),
];

/// A jq program nested `pieces` deep, innermost last.
fn nested_program(pieces: &[usize]) -> String {
    let mut program = String::new();
    for &i in pieces {
        program.push_str(NESTINGS[i].0);
    }
    program.push('.');
    for &i in pieces.iter().rev() {
        program.push_str(NESTINGS[i].1);
    }
    program
}

proptest! {
    #![proptest_config(config(96))]

    /// Any nesting of any depth (up to five times the limit) loads or fails with a diagnostic
    /// inside the text, never overflowing a stack; a program that loads runs on an event on a
    /// worker's stack without overflowing it either.
    #[test]
    fn deeply_nested_jq_loads_or_fails_with_a_position_and_runs_if_it_loads(
        pieces in prop::collection::vec(0..NESTINGS.len(), 1..5_000),
        same in any::<bool>(),
    ) {
        // Half the cases nest one piece only, the shape a generated program has.
        let pieces: Vec<usize> = if same { vec![pieces[0]; pieces.len()] } else { pieces };
        let program = nested_program(&pieces);
        let text = format!(
            "input:\n  stdin: {{}}\ntransforms:\n  - jq: |\n      {program}\noutput:\n  stdout: {{}}\nerrors: drop\n"
        );
        let loaded = check_load(&text)?;
        if pieces.len() > 5 * sluice::transform::nesting::MAX_DEPTH {
            prop_assert!(loaded.is_err(), "{} levels loaded", pieces.len());
        }
        if let Ok(pipeline) = loaded {
            let ran = std::thread::Builder::new()
                .stack_size(WORKER_STACK)
                .spawn(move || {
                    let config = pipeline.config;
                    let stage = Stage {
                        name: "nested",
                        codec: config.input.codec().plain(),
                        chain: Chain::build(&config.transforms, config.settings.max_fanout).unwrap(),
                    };
                    // Success or a jq error: either way, no abort.
                    let _ = run(&stage, br#"{"a": [1, {"a": 2}]}"#);
                })
                .unwrap()
                .join();
            prop_assert!(ran.is_ok(), "running the program panicked");
        }
    }
}

#[test]
fn the_jq_programs_reported_to_abort_check_are_refused_with_a_position() {
    for (program, column) in [
        (
            format!("{}.{}", "(".repeat(3_200), ")".repeat(3_200)),
            1_009,
        ),
        (
            format!("{}.{}", "[".repeat(3_200), "]".repeat(3_200)),
            1_009,
        ),
        (vec![".a"; 5_000].join(" | "), 5_008),
    ] {
        let text = format!(
            "input:\n  stdin: {{}}\ntransforms:\n  - jq: '{program}'\noutput:\n  stdout: {{}}\nerrors: drop\n"
        );
        let errors = load(&text).expect_err("refused");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            (errors[0].line, errors[0].column),
            (4, column),
            "{errors:?}"
        );
        assert!(
            errors[0]
                .message
                .starts_with("jq program nested too deeply"),
            "{errors:?}"
        );
    }
}
