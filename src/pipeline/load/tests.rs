//! Loading pipeline files: what is reported, and where.

use super::*;
use crate::pipeline::ErrorPolicy;

fn load(text: &str) -> Result<Pipeline, Vec<Diagnostic>> {
    let env = |name: &str| (name == "TOPIC").then(|| "orders".to_string());
    load_str(Path::new("p.yaml"), text, &env)
}

fn messages(errs: &[Diagnostic]) -> Vec<String> {
    errs.iter()
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
        .collect()
}

#[test]
fn minimal_pipeline_loads_with_defaults() {
    let p = load("input:\n  stdin: {}\noutput:\n  stdout: {}\nerrors: drop\n").unwrap();
    assert_eq!(p.name, "p");
    assert!(p.config.transforms.is_empty());
    assert!(matches!(p.config.errors, ErrorPolicy::Drop));
    assert_eq!(p.config.settings.batch_size, 500);
}

#[test]
fn unknown_key_and_bad_jq_are_both_reported() {
    let text = "\
name: two-mistakes
input:
  stdin:
    codec: json
    colour: blue
transforms:
  - jq: '.a | {b: .c'
output:
  stdout: {}
errors: drop
";
    let errs = load(text).unwrap_err();
    let got = messages(&errs);
    assert_eq!(errs.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("5:5: input.stdin.colour: unknown field `colour`"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("7:21: jq syntax error: expected closing brace"),
        "{got:?}"
    );
    assert!(got[1].contains("jq"), "{got:?}");
}

#[test]
fn several_errors_in_one_component_and_across_components() {
    let text = "\
input:
  generate:
    count: many
    templat: '{}'
transforms:
  - jq: .
  - nosuch: .
  - filter:
      condition: 'true'
      extra: 1
output:
  stdout:
    format: fancy
errors: sideways
settings:
  batch_size: 0
";
    let errs = load(text).unwrap_err();
    let got = messages(&errs);
    let expect = [
        "3:12: input.generate.count",
        "4:5: input.generate.templat: unknown field",
        "7:5: transforms[1]: unknown kind `nosuch`",
        "10:7: transforms[2].filter.extra: unknown field",
        "13:13: output.stdout.format: unknown kind `fancy`",
        "14:9: errors: unknown kind `sideways`",
    ];
    for e in expect {
        assert!(
            got.iter().any(|g| g.starts_with(e)),
            "missing {e:?} in {got:#?}"
        );
    }
}

#[test]
fn a_missing_required_key_hides_no_other_error() {
    // No `errors`, no `file.path`: the file does not read as a whole, and yet the broken
    // program, the missing TLS file and the bad setting are reported too.
    let text = "\
input:
  kafka:
    brokers: b:9092
    topics: [t]
    group_id: g
    tls: {ca_file: /nonexistent/ca.pem}
transforms:
  - jq: '.a | '
output:
  file: {}
settings:
  batch_size: 0
";
    let errs = load(text).unwrap_err();
    let got = messages(&errs);
    let expect = [
        "1:1: missing field `errors`",
        "6:20: /nonexistent/ca.pem",
        "8:14: jq syntax error",
        "10:9: output.file: missing field `path`",
        "12:15: batch_size",
    ];
    for e in expect {
        assert!(
            got.iter().any(|g| g.starts_with(e)),
            "missing {e:?} in {got:#?}"
        );
    }
    assert_eq!(got.len(), expect.len(), "{got:#?}");
}

#[test]
fn env_errors_point_at_the_variable() {
    let text = "input:\n  kafka:\n    brokers: ${BROKERS}\n    topics: [\"${TOPIC}\"]\n    group_id: ${GROUP:?set GROUP}\noutput:\n  stdout: {}\nerrors: drop\n";
    let errs = load(text).unwrap_err();
    let got = messages(&errs);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("3:14: environment variable `BROKERS` is not set"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("5:15: environment variable `GROUP` is required: set GROUP"),
        "{got:?}"
    );
}

#[test]
fn positions_after_substitution_are_original() {
    let text = "input:\n  kafka: {brokers: \"${TOPIC}-very-long-value:9092\", topics: [a], group_id: g, nope: 1}\noutput:\n  stdout: {}\nerrors: drop\n";
    let errs = load(text).unwrap_err();
    let got = messages(&errs);
    assert_eq!(got.len(), 1, "{got:?}");
    // `nope` is at column 75 of the original line, whatever ${TOPIC} expanded to.
    let col = text.lines().nth(1).unwrap().find("nope").unwrap() + 1;
    assert!(
        got[0].starts_with(&format!("2:{col}: input.kafka.nope")),
        "{got:?}"
    );
}

#[test]
fn jq_errors_in_block_scalars_point_into_the_block() {
    let text = "input:\n  stdin: {}\ntransforms:\n  - jq: |\n      {a: .a,\n       b: (.b | ]}\noutput:\n  stdout: {}\nerrors: drop\n";
    let errs = load(text).unwrap_err();
    let got = messages(&errs);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("6:"), "{got:?}");
}

#[test]
fn yaml_syntax_error_has_position() {
    let errs = load("input:\n  stdin: {\noutput: x\n").unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(errs[0].message.starts_with("invalid YAML"), "{:?}", errs);
}

#[test]
fn the_in_flight_budget_must_hold_the_largest_event() {
    let p = load_str(
            Path::new("s.yaml"),
            "input: {stdin: {}}\noutput: {stdout: {}}\nerrors: drop\nsettings: {max_event_bytes: 100, max_in_flight_bytes: 10}\n",
            &|_: &str| None,
        )
        .unwrap_err();
    assert!(
        p.iter()
            .any(|d| d.message.contains("max_in_flight_bytes must be at least")),
        "{p:?}"
    );
}

#[test]
fn the_default_budget_holds_what_the_outputs_gather_and_the_largest_event() {
    let budget = |rest: &str| {
        let text = format!("input: {{stdin: {{}}}}\n{rest}");
        load_str(Path::new("b.yaml"), &text, &|_: &str| None)
            .unwrap()
            .config
            .in_flight_budget()
    };
    const MIB: usize = 1024 * 1024;
    assert_eq!(budget("output: {stdout: {}}\nerrors: drop\n"), 32 * MIB);
    let store = "output: {object_store: {url: 'file:///tmp/x', path: p}}\nerrors: drop\n";
    assert_eq!(budget(store), 64 * MIB);
    let small = "output: {object_store: {url: 'file:///tmp/x', path: p, batch: {max_bytes: 1MiB}}}\nerrors: drop\n";
    assert_eq!(budget(small), 32 * MIB);
    let dead_letter = "output: {stdout: {}}\nerrors: {output: {object_store: {url: 'file:///tmp/x', path: p, batch: {max_bytes: 100MiB}}}}\n";
    assert_eq!(budget(dead_letter), 100 * MIB);
    let large = "output: {stdout: {}}\nerrors: drop\nsettings: {max_event_bytes: 40MiB}\n";
    assert_eq!(budget(large), 40 * MIB);
    let set = "output: {object_store: {url: 'file:///tmp/x', path: p}}\nerrors: drop\nsettings: {max_in_flight_bytes: 8MiB}\n";
    assert_eq!(budget(set), 8 * MIB);
}
