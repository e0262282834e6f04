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
    let at = |line, column, message| diagnostic(path, line, column, message);
    let (interpolated, root) = read_tree(path, text, env)?;
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
    if let Some(config) = &config {
        *listener = listener_of(config, &tree, &interpolated, path);
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
            file: path.to_path_buf(),
            name,
            name_at,
            config,
            components,
        }),
        _ => Err(errors),
    }
}

fn diagnostic(path: &Path, line: usize, column: usize, message: String) -> Diagnostic {
    Diagnostic {
        file: path.to_path_buf(),
        line,
        column,
        message,
    }
}

/// The text with `${VAR}` replaced, and its YAML tree: or the errors of either, which leave
/// nothing else to check.
fn read_tree(
    path: &Path,
    text: &str,
    env: &dyn vars::Lookup,
) -> Result<(vars::Interpolated, Node), Vec<Diagnostic>> {
    // A byte order mark is not shown by editors, and the YAML parser takes it for content.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let interpolated = vars::interpolate(text, env).map_err(|errs| {
        errs.into_iter()
            .map(|e| diagnostic(path, e.line, e.column, e.message))
            .collect::<Vec<_>>()
    })?;
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    match yaml::parse(&interpolated.text, options) {
        Ok(root) => Ok((interpolated, root)),
        Err(e) => {
            let (line, column, message) = match e {
                yaml::ParseError::Load(e) => load_error(&e),
                yaml::ParseError::At(line, column, message) => (line, column, message),
            };
            let (line, column) = interpolated.original_position(line, column);
            Err(vec![diagnostic(path, line, column, message)])
        }
    }
}

/// The address an `http_server` input listens on, and where the file sets it.
fn listener_of(
    config: &PipelineConfig,
    tree: &Node,
    interpolated: &vars::Interpolated,
    path: &Path,
) -> Option<Listener> {
    let crate::source::InputConfig::HttpServer(http) = &config.input else {
        return None;
    };
    let steps = ["input", "http_server", "address"].map(|k| yaml::Step::Key(k.into()));
    let (line, column) = yaml::node_start(yaml::find(tree, &steps)).unwrap_or((1, 1));
    let (line, column) = interpolated.original_position(line, column);
    Some(Listener {
        address: http.address.clone(),
        at: diagnostic(path, line, column, String::new()),
    })
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
mod tests;
