//! Finding test cases: the pipeline files to test, their `tests:` and the test files beside
//! them, read as written (`${VAR}` is not substituted in test cases), and where each part of a
//! case is written.

use std::path::{Path, PathBuf};

use marked_yaml::{LoaderOptions, Node};
use serde::Deserialize;

use crate::config::yaml::{self, Step};
use crate::config::{Diagnostic, Validator, vars};
use crate::pipeline::cases::{TestCase, TestFile};

pub(super) fn file_error(file: &Path, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: file.to_path_buf(),
        line: 1,
        column: 1,
        message: message.into(),
    }
}

pub(super) fn is_test_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.ends_with(".test.yaml") || name.ends_with(".test.yml")
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// The pipeline files to test: files given (a test file stands for its pipeline file), and the
/// YAML files under directories given, in name order.
pub(super) fn pipeline_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Vec<Diagnostic>> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            if let Err(e) = walk(path, &mut found) {
                errors.push(file_error(path, e.to_string()));
            }
        } else if is_test_file(path) {
            match pipeline_of(path) {
                Some(pipeline) => found.push(pipeline),
                None => errors.push(file_error(path, "no pipeline file beside this test file")),
            }
        } else if path.is_file() {
            found.push(path.clone());
        } else {
            errors.push(file_error(path, "no such file or directory"));
        }
    }
    // A file named twice (or by itself and by its test file) runs once, where first named.
    let mut seen = std::collections::HashSet::new();
    found.retain(|p| seen.insert(p.clone()));
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(errors)
    }
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, found)?;
        } else if is_yaml(&path) && !is_test_file(&path) {
            found.push(path);
        }
    }
    Ok(())
}

/// `NAME.yaml` (or `.yml`) for `NAME.test.yaml`.
fn pipeline_of(test_file: &Path) -> Option<PathBuf> {
    let name = test_file.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".test.yaml")
        .or_else(|| name.strip_suffix(".test.yml"))?;
    ["yaml", "yml"]
        .iter()
        .map(|ext| test_file.with_file_name(format!("{stem}.{ext}")))
        .find(|p| p.is_file())
}

/// `NAME.test.yaml` (or `.yml`) beside `NAME.yaml`, if there is one.
pub(super) fn test_file_of(pipeline: &Path) -> Option<PathBuf> {
    let stem = pipeline.file_stem()?.to_str()?;
    ["yaml", "yml"]
        .iter()
        .map(|ext| pipeline.with_file_name(format!("{stem}.test.{ext}")))
        .find(|p| p.is_file())
}

/// Where a test case comes from, and where its parts are written.
pub(super) struct Source {
    /// The file the case is written in.
    pub(super) file: PathBuf,
    /// That file's tree, for positions (the pipeline file's before `${VAR}` substitution, so its
    /// positions are the file's own).
    tree: Node,
    /// The case's index in the file's `tests`.
    index: usize,
    /// The case, as written.
    pub(super) case: TestCase,
}

impl Source {
    /// file:line:column of the part of the case at `path` (`output`, 2).
    pub(super) fn at(&self, path: &[Step]) -> String {
        let mut steps = vec![Step::Key("tests".into()), Step::Index(self.index)];
        steps.extend_from_slice(path);
        let (line, column) = yaml::node_start(yaml::find(&self.tree, &steps)).unwrap_or((1, 1));
        format!("{}:{line}:{column}", self.file.display())
    }
}

pub(super) fn parse(file: &Path, text: &str) -> Result<Node, Diagnostic> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    yaml::parse(text, options).map_err(|e| {
        let (line, column, message) = match e {
            yaml::ParseError::Load(e) => (1, 1, e.to_string()),
            yaml::ParseError::At(line, column, message) => (line, column, message),
        };
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            message,
        }
    })
}

/// The `tests:` of a pipeline file, read from its tree as written.
#[derive(Deserialize, schemars::JsonSchema)]
struct InFile {
    #[serde(default)]
    tests: Vec<TestCase>,
}

/// The cases in the pipeline file whose tree (as written) is `tree`.
pub(super) fn in_file_cases(file: &Path, tree: &Node) -> Result<Vec<Source>, Vec<Diagnostic>> {
    let read = yaml::deserialize::<InFile>(tree.clone());
    let errors: Vec<Diagnostic> = read
        .errors
        .into_iter()
        .map(|e| Diagnostic {
            file: file.to_path_buf(),
            line: e.line,
            column: e.column,
            message: format!("{}: {}", e.path, e.message),
        })
        .collect();
    match read.value {
        Some(cases) if errors.is_empty() => Ok(sources(file, &read.tree, cases.tests)),
        _ => Err(errors),
    }
}

fn sources(file: &Path, tree: &Node, cases: Vec<TestCase>) -> Vec<Source> {
    cases
        .into_iter()
        .enumerate()
        .map(|(index, mut case)| {
            typed_json(&mut case, tree, index);
            Source {
                file: file.to_path_buf(),
                tree: tree.clone(),
                index,
                case,
            }
        })
        .collect()
}

/// YAML scalars reach JSON fields as text: `n: 1` would be the string "1". The JSON values of a
/// case (payloads) are read again from the tree, with plain scalars typed as YAML types them
/// (null, booleans, numbers) and quoted ones kept as strings.
fn typed_json(case: &mut TestCase, tree: &Node, index: usize) {
    let at = |path: &[Step]| {
        let mut steps = vec![Step::Key("tests".into()), Step::Index(index)];
        steps.extend_from_slice(path);
        json_of(yaml::find(tree, &steps))
    };
    let key = |k: &str| Step::Key(k.into());
    for (i, event) in case.input.iter_mut().enumerate() {
        if event.payload.is_some() {
            event.payload = Some(at(&[key("input"), Step::Index(i), key("payload")]));
        }
    }
    for list in ["output", "dead_letters"] {
        let expected = match list {
            "output" => case.output.iter_mut().flatten(),
            _ => case.dead_letters.iter_mut().flatten(),
        };
        for (i, e) in expected.enumerate() {
            for (field, value) in [
                ("payload", &mut e.payload),
                ("payload_contains", &mut e.payload_contains),
            ] {
                if value.is_some() {
                    *value = Some(at(&[key(list), Step::Index(i), key(field)]));
                }
            }
        }
    }
}

/// A YAML node as JSON: plain scalars typed (null, booleans, integers, finite floats), quoted
/// ones strings.
pub(super) fn json_of(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Node::Mapping(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().to_string(), json_of(v)))
                .collect(),
        ),
        Node::Sequence(s) => Value::Array(s.iter().map(json_of).collect()),
        Node::Scalar(s) => {
            let text = s.as_str();
            if !s.may_coerce() {
                return Value::String(text.to_string());
            }
            match text {
                "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
                "true" | "True" | "TRUE" => return Value::Bool(true),
                "false" | "False" | "FALSE" => return Value::Bool(false),
                _ => {}
            }
            if let Ok(n) = text.parse::<i64>() {
                return Value::from(n);
            }
            if let Ok(n) = text.parse::<u64>() {
                return Value::from(n);
            }
            let numeric = text
                .trim_start_matches(['-', '+'])
                .starts_with(|c: char| c.is_ascii_digit() || c == '.');
            match text.parse::<f64>() {
                Ok(f) if numeric && f.is_finite() => Value::from(f),
                _ => Value::String(text.to_string()),
            }
        }
    }
}

/// The cases of a test file.
pub(super) fn test_file_cases(test_file: &Path) -> Result<Vec<Source>, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(test_file)
        .map_err(|e| vec![file_error(test_file, e.to_string())])?;
    let tree = parse(test_file, &text).map_err(|d| vec![d])?;
    let read = yaml::deserialize::<TestFile>(tree);
    let at = |line, column, message| Diagnostic {
        file: test_file.to_path_buf(),
        line,
        column,
        message,
    };
    let mut errors: Vec<Diagnostic> = read
        .errors
        .into_iter()
        .map(|e| at(e.line, e.column, format!("{}: {}", e.path, e.message)))
        .collect();
    let Some(cases) = read.value else {
        return Err(errors);
    };
    let interpolated = vars::Interpolated::verbatim(&text);
    let mut v = Validator::new(&read.tree, &interpolated, test_file);
    for (i, case) in cases.tests.iter().enumerate() {
        case.validate(&format!("tests.{i}"), &mut v);
    }
    errors.extend(v.errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(sources(test_file, &read.tree, cases.tests))
}
