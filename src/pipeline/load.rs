//! Loading pipeline files: interpolation, parsing, schema errors and validation, all reported
//! at once.

use std::path::{Path, PathBuf};

use marked_yaml::{LoaderOptions, Node};

use super::{Pipeline, PipelineConfig};
use crate::config::{Diagnostic, Validator, vars, yaml};

/// Loads and validates one pipeline file, with `${VAR}` taken from the process environment.
pub fn load_file(path: &Path) -> Result<Pipeline, Vec<Diagnostic>> {
    load_file_listening(path).0
}

/// An address a pipeline's input listens on, and where its file sets it.
struct Listener {
    address: String,
    at: Diagnostic,
}

/// [`load_file`], and the address its input listens on, known even when the file has errors.
fn load_file_listening(path: &Path) -> (Result<Pipeline, Vec<Diagnostic>>, Option<Listener>) {
    match std::fs::read_to_string(path) {
        Ok(text) => load_listening(path, &text, &vars::ProcessEnv),
        Err(e) => {
            let error = Diagnostic {
                file: path.to_path_buf(),
                line: 1,
                column: 1,
                message: format!("cannot read file: {e}"),
            };
            (Err(vec![error]), None)
        }
    }
}

/// Loads and validates every file, returning every error of every file.
pub fn load_files(paths: &[PathBuf]) -> Result<Vec<Pipeline>, Vec<Diagnostic>> {
    let mut pipelines = Vec::new();
    let mut errors = Vec::new();
    let mut listeners: Vec<Listener> = Vec::new();
    for path in paths {
        let (loaded, listener) = load_file_listening(path);
        match loaded {
            Ok(p) => pipelines.push(p),
            Err(e) => errors.extend(e),
        }
        let Some(listener) = listener else { continue };
        let taken = listeners
            .iter()
            .find(|l| crate::source::http::same_listener(&l.address, &listener.address));
        if let Some(first) = taken {
            errors.push(Diagnostic {
                message: format!(
                    "address {} is already listened on by {} (http_server address {} at line {})",
                    listener.address,
                    first.at.file.display(),
                    first.address,
                    first.at.line
                ),
                ..listener.at.clone()
            });
        }
        listeners.push(listener);
    }
    let mut seen = std::collections::HashMap::new();
    for p in &pipelines {
        if let Some(first) = seen.insert(p.name.clone(), p.file.clone()) {
            let (line, column) = p.name_at.unwrap_or((1, 1));
            errors.push(Diagnostic {
                file: p.file.clone(),
                line,
                column,
                message: format!(
                    "pipeline name `{}` is also used by {}",
                    p.name,
                    first.display()
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(pipelines)
    } else {
        Err(errors)
    }
}

/// Loads and validates pipeline text; `path` names it in errors and gives the default name.
pub fn load_str(
    path: &Path,
    text: &str,
    env: &dyn vars::Lookup,
) -> Result<Pipeline, Vec<Diagnostic>> {
    load_listening(path, text, env).0
}

/// [`load_str`], and the address its input listens on.
fn load_listening(
    path: &Path,
    text: &str,
    env: &dyn vars::Lookup,
) -> (Result<Pipeline, Vec<Diagnostic>>, Option<Listener>) {
    let mut listener = None;
    let loaded = load_text(path, text, env, &mut listener);
    (loaded, listener)
}

fn load_text(
    path: &Path,
    text: &str,
    env: &dyn vars::Lookup,
    listener: &mut Option<Listener>,
) -> Result<Pipeline, Vec<Diagnostic>> {
    let file = path.to_path_buf();
    let at = |line, column, message| Diagnostic {
        file: file.clone(),
        line,
        column,
        message,
    };
    // A byte order mark is not shown by editors, and the YAML parser takes it for content.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let interpolated = vars::interpolate(text, env).map_err(|errs| {
        errs.into_iter()
            .map(|e| at(e.line, e.column, e.message))
            .collect::<Vec<_>>()
    })?;

    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    let root = match yaml::parse(&interpolated.text, options) {
        Ok(root) => root,
        Err(e) => {
            let (line, column, message) = match e {
                yaml::ParseError::Load(e) => load_error(&e),
                yaml::ParseError::At(line, column, message) => (line, column, message),
            };
            let (line, column) = interpolated.original_position(line, column);
            return Err(vec![at(line, column, message)]);
        }
    };

    let yaml::Deserialized {
        value: config,
        errors: tree_errors,
        tree,
    } = yaml::deserialize::<PipelineConfig>(root.clone());
    let mut errors: Vec<Diagnostic> = tree_errors
        .into_iter()
        .map(|e| {
            let (line, column) = interpolated.original_position(e.line, e.column);
            let message = if e.path.is_empty() {
                e.message
            } else {
                format!("{}: {}", e.path, e.message)
            };
            at(line, column, message)
        })
        .collect();

    let name = config
        .as_ref()
        .and_then(|c| c.name.clone())
        .unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "pipeline".into(), |s| s.to_string_lossy().into_owned())
        });

    if config.is_none() {
        let missing = missing_sections(&root, &errors, &interpolated);
        errors.extend(missing.into_iter().map(|(l, c, m)| at(l, c, m)));
    }
    if let Some(crate::source::InputConfig::HttpServer(http)) = config.as_ref().map(|c| &c.input) {
        let steps = ["input", "http_server", "address"].map(|k| yaml::Step::Key(k.into()));
        let (line, column) = yaml::node_start(yaml::find(&tree, &steps)).unwrap_or((1, 1));
        let (line, column) = interpolated.original_position(line, column);
        *listener = Some(Listener {
            address: http.address.clone(),
            at: at(line, column, String::new()),
        });
    }
    let name_at = tree
        .as_mapping()
        .and_then(|m| m.get("name"))
        .and_then(yaml::node_start)
        .map(|(line, column)| interpolated.original_position(line, column));
    let (found, components) = match &config {
        Some(config) => validate(&tree, &interpolated, path, |v| config.build(&name, v)),
        None => validate(&tree, &interpolated, path, |v| {
            super::check_sections(&tree, &name, v);
            None
        }),
    };
    errors.extend(found);
    errors.sort_by_key(|d| (d.line, d.column));
    match (config, components) {
        (Some(config), Some(components)) if errors.is_empty() => Ok(Pipeline {
            file,
            name,
            name_at,
            config,
            components,
        }),
        _ => Err(errors),
    }
}

/// Sections missing from a file serde could not read. serde stops at the first missing field,
/// and nothing can be removed to get past it: the others are reported where it reported that
/// one, as (line, column, message).
fn missing_sections(
    root: &Node,
    errors: &[Diagnostic],
    interpolated: &vars::Interpolated,
) -> Vec<(usize, usize, String)> {
    let (line, column) = match errors
        .iter()
        .find(|e| e.message.starts_with("missing field `"))
    {
        Some(e) => (e.line, e.column),
        None => {
            yaml::node_start(root).map_or((1, 1), |(l, c)| interpolated.original_position(l, c))
        }
    };
    ["input", "output", "errors"]
        .into_iter()
        .filter(|key| root.as_mapping().is_some_and(|m| m.get(*key).is_none()))
        .map(|key| format!("missing field `{key}`"))
        .filter(|missing| !errors.iter().any(|e| e.message.contains(missing)))
        .map(|missing| (line, column, missing))
        .collect()
}

/// What only the whole configuration can tell: every component's own checks, made by `check`
/// building its input and outputs (without connecting).
fn validate<T>(
    tree: &Node,
    interpolated: &vars::Interpolated,
    path: &Path,
    check: impl FnOnce(&mut Validator<'_>) -> Option<T> + Send,
) -> (Vec<Diagnostic>, Option<T>)
where
    T: Send,
{
    let mut v = Validator::new(tree, interpolated, path);
    let at = |message: String| Diagnostic {
        file: path.to_path_buf(),
        line: 1,
        column: 1,
        message,
    };
    // Validating compiles every jq program, which recurses as deeply as the program nests (up
    // to `nesting::MAX_DEPTH`): on a thread with a stack known to be enough, whatever the
    // caller's.
    let built = yaml::on_stack("validate", crate::transform::nesting::STACK, || {
        let components = check(&mut v);
        (v.errors, components)
    });
    match built {
        Ok(Ok(built)) => built,
        Ok(Err(_panic)) => (vec![at("validating the file failed".into())], None),
        Err(e) => (vec![at(format!("cannot start validating: {e}"))], None),
    }
}

/// Settings that work together, but not as a reader of the file may expect: `sluice check`
/// prints them without failing.
pub fn warnings(pipeline: &Pipeline) -> Vec<String> {
    use crate::sink::OutputConfig;
    use crate::source::InputConfig;
    let config = &pipeline.config;
    let mut found = Vec::new();
    if let (InputConfig::Jetstream(input), OutputConfig::ObjectStore(output)) =
        (&config.input, &config.output)
    {
        found.extend(input.gathering_advice("input.jetstream", output.batch.max_events));
    }
    found
}

fn load_error(e: &marked_yaml::LoadError) -> (usize, usize, String) {
    use marked_yaml::LoadError::*;
    let mark = match e {
        TopLevelMustBeMapping(m)
        | TopLevelMustBeSequence(m)
        | UnexpectedAnchor(m)
        | MappingKeyMustBeScalar(m)
        | UnexpectedTag(m)
        | ScanError(m, _) => Some(*m),
        DuplicateKey(inner) => inner.key.span().start().copied(),
    };
    let message = match e {
        TopLevelMustBeMapping(_) => {
            "a pipeline file must be a mapping (input:, transforms:, output:, errors:)".into()
        }
        UnexpectedAnchor(_) => {
            "YAML anchors and aliases are not supported in pipeline files".into()
        }
        UnexpectedTag(_) => "YAML tags are not supported in pipeline files".into(),
        MappingKeyMustBeScalar(_) => "mapping keys must be plain strings".into(),
        DuplicateKey(inner) => format!("duplicate key `{}`", inner.key.as_str()),
        // `info()`: the full message repeats the position, in the interpolated text.
        ScanError(_, s) => format!("invalid YAML: {}", s.info()),
        other => other.to_string(),
    };
    let (line, column) = mark.map_or((1, 1), |m| (m.line().max(1), m.column().max(1)));
    (line, column, message)
}

#[cfg(test)]
mod tests {
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
}
