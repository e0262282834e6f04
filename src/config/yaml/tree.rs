//! The tree of a parsed file: paths into it, positions of its nodes, and deserializing it with
//! every error found (serde stops at the first; after each, the failing node is removed and
//! deserialization runs again).

use marked_yaml::spanned_serde::NodeDeserializer;
use marked_yaml::{Node, Span};
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

/// Upper bound on recovery rounds: a file with more mistakes than this is reported in part.
const MAX_ROUNDS: usize = 64;

/// An error inside the YAML tree: the interpolated text's 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeError {
    /// 1-based line in the interpolated text, when known.
    pub line: usize,
    /// 1-based column in the interpolated text, when known.
    pub column: usize,
    /// Dotted path to the failing value, like `transforms[1].jq`.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// One step into the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

fn steps(path: &serde_path_to_error::Path) -> Vec<Step> {
    path.iter()
        .filter_map(|seg| match seg {
            Segment::Seq { index } => Some(Step::Index(*index)),
            Segment::Map { key } if key.starts_with("$___::") => None,
            Segment::Map { key } => Some(Step::Key(key.clone())),
            Segment::Enum { variant } => Some(Step::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect()
}

/// Renders a path the way a user reads it: `transforms[1].jq.program`.
pub fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Follows `path` as far as the tree allows; returns the deepest node reached.
pub fn find<'a>(root: &'a Node, path: &[Step]) -> &'a Node {
    let mut node = root;
    for step in path {
        let next = match (step, node) {
            (Step::Key(k), Node::Mapping(m)) => m.get(k.as_str()),
            (Step::Index(i), Node::Sequence(s)) => s.get(*i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    node
}

/// The 1-based (line, column) where a span starts, if it has one.
pub fn start(span: &Span) -> Option<(usize, usize)> {
    span.start().map(|m| (m.line(), m.column()))
}

/// Where a node starts for a reader. The span of a block mapping starts at the `:` after its
/// first key (where the parser knew it was a mapping): point at that key instead.
pub fn node_start(node: &Node) -> Option<(usize, usize)> {
    let span = start(node.span());
    let first_key = node.as_mapping().and_then(|m| m.keys().next());
    match (first_key.and_then(|k| start(k.span())), span) {
        (Some(key), Some(span)) => Some(key.min(span)),
        (key, span) => key.or(span),
    }
}

fn key_span<'a>(map: &'a Node, key: &str) -> Option<&'a Span> {
    map.as_mapping()?
        .keys()
        .find(|k| k.as_str() == key)
        .map(|k| k.span())
}

/// Removes the node at `path` (a sequence element is taken out, shifting later ones); returns
/// whether anything was removed.
fn remove(root: &mut Node, path: &[Step]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = root;
    for step in parents {
        let next = match (step, node) {
            (Step::Key(k), Node::Mapping(m)) => m.get_mut(k.as_str()),
            (Step::Index(i), Node::Sequence(s)) => s.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    match (last, node) {
        (Step::Key(k), Node::Mapping(m)) => m.remove(k.as_str()).is_some(),
        (Step::Index(i), Node::Sequence(s)) if *i < s.len() => {
            s.remove(*i);
            true
        }
        _ => false,
    }
}

/// The outcome of [`deserialize`].
pub struct Deserialized<T> {
    /// The value, when the tree (repaired by removing what failed) deserializes.
    pub value: Option<T>,
    /// Every error found.
    pub errors: Vec<TreeError>,
    /// The tree the value came from: its paths agree with the value's.
    pub tree: Node,
}

/// Deserializes `root` into `T`, collecting every error it can find. After each error the failing
/// node is removed and deserialization runs again; errors that only follow from a removal (a
/// "missing field" for a removed key, an emptied parent) are not reported but remove the parent
/// in turn, so that mistakes further on are still found.
pub fn deserialize<T: DeserializeOwned>(mut root: Node) -> Deserialized<T> {
    let mut errors: Vec<TreeError> = Vec::new();
    // Paths removed so far, as numbered when removed.
    let mut removed: Vec<Vec<Step>> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let result: Result<T, _> = serde_path_to_error::deserialize(NodeDeserializer::new(&root));
        let err = match result {
            Ok(value) => {
                return Deserialized {
                    value: Some(value),
                    errors,
                    tree: root,
                };
            }
            Err(err) => err,
        };
        let path = steps(err.path());
        let inner = err.into_inner();
        let message = inner.to_string();

        let missing = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
            .map(str::to_string);
        let derived = removed.iter().any(|r| {
            r.starts_with(&path)
                || missing.as_ref().is_some_and(|f| {
                    r.len() == path.len() + 1
                        && r.starts_with(&path)
                        && r[path.len()] == Step::Key(f.clone())
                })
        });

        let mut target = path.clone();
        let mut siblings = Vec::new();
        if !derived {
            let (error, to_remove, others) = describe(&root, &path, &inner, &message, &removed);
            target = to_remove;
            siblings = others;
            if errors.contains(&error) {
                break;
            }
            errors.push(error);
        }
        if target.is_empty() || !remove(&mut root, &target) {
            break;
        }
        let parent = target[..target.len() - 1].to_vec();
        removed.push(target);
        for (step, error) in siblings {
            let mut at = parent.clone();
            at.push(step);
            if remove(&mut root, &at) {
                errors.push(error);
                removed.push(at);
            }
        }
    }
    Deserialized {
        value: None,
        errors,
        tree: root,
    }
}

/// The error `inner` (its text `message`) found at `path`, as reported: where it points, the
/// path in the file's own numbering, and a message in the file's terms. Returns it with the
/// node to remove before the next round, and the other unknown keys of the same mapping with
/// their errors: reported and removed in the same round, since a file with thousands of them
/// would otherwise take a round each.
fn describe(
    root: &Node,
    path: &[Step],
    inner: &marked_yaml::spanned_serde::Error,
    message: &str,
    removed: &[Vec<Step>],
) -> (TreeError, Vec<Step>, Vec<(Step, TreeError)>) {
    let mut target = path.to_vec();
    let mut siblings = Vec::new();
    let mut span = inner.start_mark().map(|m| (m.line(), m.column()));
    let failed = find(root, path);
    if span.is_some() && span == start(failed.span()) {
        span = node_start(failed);
    }
    let mut text = tidy(message);
    match inner {
        marked_yaml::spanned_serde::Error::UnknownFieldError(field, expected, _) => {
            // Point at the key itself, and remove that key.
            if target.last() == Some(&Step::Key(field.clone())) {
                target.pop();
            }
            span = key_span(find(root, &target), field)
                .and_then(start)
                .or(span);
            if !expected.is_empty() {
                siblings = other_unknown_keys(root, &target, field, expected, &text, removed);
            }
            target.push(Step::Key(field.clone()));
        }
        marked_yaml::spanned_serde::Error::IntegerParseFailure(..) => {
            text = format!("expected a whole number, found `{}`", scalar_at(root, path));
        }
        marked_yaml::spanned_serde::Error::FloatParseFailure(..) => {
            text = format!("expected a number, found `{}`", scalar_at(root, path));
        }
        marked_yaml::spanned_serde::Error::NotBoolean(_) => text = "expected true or false".into(),
        _ => {
            // An unknown kind of input/output/step: point at the key naming it.
            if let Some(kind) = message
                .strip_prefix("unknown variant `")
                .and_then(|m| m.split('`').next())
            {
                span = key_span(find(root, path), kind).and_then(start).or(span);
            }
        }
    }
    if span.is_none() {
        span = node_start(find(root, &target)).or_else(|| node_start(find(root, path)));
    }
    let (line, column) = span.unwrap_or((1, 1));
    let error = TreeError {
        line,
        column,
        path: render(&original_numbering(&target, removed)),
        message: text,
    };
    (error, target, siblings)
}

/// The other keys of the mapping at `target` that `expected` does not name either, each with
/// the error `message` about unknown `field` says of it, so one run reports every unknown key.
fn other_unknown_keys(
    root: &Node,
    target: &[Step],
    field: &str,
    expected: &[&str],
    message: &str,
    removed: &[Vec<Step>],
) -> Vec<(Step, TreeError)> {
    let Node::Mapping(map) = find(root, target) else {
        return Vec::new();
    };
    let mut unknown = Vec::new();
    for key in map.keys() {
        let name = key.as_str();
        if name == field || expected.contains(&name) {
            continue;
        }
        let mut at = target.to_vec();
        at.push(Step::Key(name.to_string()));
        let (line, column) = start(key.span()).unwrap_or((1, 1));
        let error = TreeError {
            line,
            column,
            path: render(&original_numbering(&at, removed)),
            message: message.replacen(&format!("`{field}`"), &format!("`{name}`"), 1),
        };
        unknown.push((Step::Key(name.to_string()), error));
    }
    unknown
}

/// The text of the scalar at `path`; empty when it is not a scalar.
fn scalar_at(root: &Node, path: &[Step]) -> String {
    find(root, path)
        .as_scalar()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

/// Maps sequence indices of a path back to the numbering of the file, undoing the shifts that
/// removing sequence elements caused.
fn original_numbering(path: &[Step], removed: &[Vec<Step>]) -> Vec<Step> {
    let mut path = path.to_vec();
    for r in removed.iter().rev() {
        let Some((Step::Index(gone), seq)) = r.split_last() else {
            continue;
        };
        if path.len() > seq.len()
            && path.starts_with(seq)
            && let Step::Index(i) = &mut path[seq.len()]
            && *i >= *gone
        {
            *i += 1;
        }
    }
    path
}

/// serde's messages name Rust types; say it in the file's terms.
fn tidy(message: &str) -> String {
    message
        .replace("Unknown field", "unknown field")
        .replace("unknown variant", "unknown kind")
        .replace("a sequence", "a list")
        .replace("struct ", "")
        .replace("enum ", "one of ")
}
