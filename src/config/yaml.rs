//! YAML to typed config with every error reported, each at its file:line:column.
//!
//! serde stops at the first error, so after each error the offending node is taken out of the tree
//! and deserialization runs again; errors that only follow from a removal are not reported.

use marked_yaml::spanned_serde::NodeDeserializer;
use marked_yaml::{LoaderOptions, Node, Span};
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

/// Upper bound on recovery rounds: a file with more mistakes than this is reported in part.
const MAX_ROUNDS: usize = 64;

/// Deepest indentation (in columns, counting the `- ` and `? ` that open nested collections on a
/// line) a pipeline file may have. The YAML parser recurses once per nesting level, with no limit
/// for block collections: a 10 kB line of `- - - ...` overflowed the stack and aborted.
const MAX_INDENT: usize = 256;

/// Stack of the thread the parser runs on. Nesting is bounded by [`MAX_INDENT`] (two levels per
/// column at most) plus 255 flow levels (the scanner's limit): about 800 levels, which take
/// about 2 MiB in a debug build.
const PARSE_STACK: usize = 16 * 1024 * 1024;

/// Why the YAML text gave no tree.
#[derive(Debug)]
pub enum ParseError {
    /// The YAML loader's own error (syntax, duplicate key, anchor, ...).
    Load(marked_yaml::LoadError),
    /// Refused before or failed while parsing, at a 1-based line and column of the text.
    At(usize, usize, String),
}

/// Parses a pipeline file's YAML, whatever the stack of the calling thread: nesting deeper than a
/// pipeline needs is refused first, and the parser runs on a thread with a known stack.
pub fn parse(text: &str, options: LoaderOptions) -> Result<Node, ParseError> {
    if let Some(line) = second_document(text) {
        return Err(ParseError::At(
            line,
            1,
            "a pipeline file holds one pipeline: a second YAML document starts here (put each \
             pipeline in a file of its own)"
                .into(),
        ));
    }
    if let Some(line) = too_deep(text) {
        return Err(ParseError::At(
            line,
            MAX_INDENT + 1,
            format!("nested too deeply: indented more than {MAX_INDENT} columns"),
        ));
    }
    let parsed = on_stack("yaml-parser", PARSE_STACK, move || {
        marked_yaml::parse_yaml_with_options(0, text, options)
    });
    match parsed {
        Ok(Ok(Ok(root))) => Ok(root),
        Ok(Ok(Err(e))) => Err(ParseError::Load(e)),
        // marked-yaml asserts on parser states it does not expect.
        Ok(Err(_panic)) => Err(ParseError::At(
            1,
            1,
            "the YAML parser failed on this file".into(),
        )),
        Err(e) => Err(ParseError::At(
            1,
            1,
            format!("cannot start the YAML parser: {e}"),
        )),
    }
}

/// Runs `work` on a thread of its own with a stack of `stack` bytes, whatever the calling
/// thread's, and waits for it: for recursive work whose depth is bounded but may be more than a
/// caller's stack takes. The outer error is the thread not starting, the inner one a panic.
pub(crate) fn on_stack<T: Send>(
    name: &str,
    stack: usize,
    work: impl FnOnce() -> T + Send,
) -> std::io::Result<std::thread::Result<T>> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name(name.into())
            .stack_size(stack)
            .spawn_scoped(scope, work)
            .map(|thread| thread.join())
    })
}

/// Lines as YAML counts them: broken at `\n`, `\r\n` or a lone `\r`.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .flat_map(|l| l.strip_suffix('\r').unwrap_or(l).split('\r'))
}

/// The 1-based line where a second YAML document starts, if any: a `---` after content or after
/// an earlier `---`, or content after a `...` document end. The parser would read the first
/// document only and ignore the rest. Document markers are only ever at the start of a line,
/// even inside quoted scalars, so reading lines is enough.
fn second_document(text: &str) -> Option<usize> {
    let marker = |line: &str, m: &str| {
        line.strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    };
    let mut started = false;
    let mut ended = false;
    for (i, line) in lines(text).enumerate() {
        let content = !line.trim().is_empty() && !line.trim_start().starts_with('#');
        if marker(line, "---") {
            if started {
                return Some(i + 1);
            }
            started = true;
            // Content may follow the marker on its line (`--- {input: ...}`).
            continue;
        }
        if marker(line, "...") {
            ended = true;
            continue;
        }
        if content && !line.starts_with('%') {
            if ended {
                return Some(i + 1);
            }
            started = true;
        }
    }
    None
}

/// The first 1-based line whose block indentation is over [`MAX_INDENT`].
fn too_deep(text: &str) -> Option<usize> {
    lines(text)
        .position(|line| block_indent(line) > MAX_INDENT)
        .map(|i| i + 1)
}

/// Columns before a line's content: blanks, plus the `- `, `? ` and `: ` indicators and
/// `&anchor` / `!tag` properties that open a collection on the same line. A block collection
/// nested in another starts at a greater column, or the same one for a list under a key, so
/// nesting is at most twice this plus one. Blank and comment lines open nothing.
fn block_indent(line: &str) -> usize {
    let chars: Vec<char> = line.chars().take(MAX_INDENT + 2).collect();
    let blank = |at: usize| matches!(chars.get(at), None | Some(' ' | '\t'));
    let mut col = 0;
    let mut opened = false;
    while let Some(&c) = chars.get(col) {
        match c {
            ' ' | '\t' => col += 1,
            '-' | '?' | ':' if blank(col + 1) => {
                col += 1;
                opened = true;
            }
            '&' | '!' => {
                while !blank(col) {
                    col += 1;
                }
                opened = true;
            }
            _ => break,
        }
    }
    match chars.get(col) {
        None | Some('#') if !opened => 0,
        _ => col,
    }
}

/// The 1-based line and column in `text` of the char at `offset` in a scalar's value, given where
/// the scalar's span starts (an opening quote, a plain scalar's first char, a block scalar's `|` or
/// `>` or the first char of its content). The source and the value are walked together, skipping
/// what the value does not keep (indentation, folded line breaks, quotes, escapes), so the result
/// is exact for a jq program over several lines in any scalar style, and never outside `text`.
pub fn position_in_scalar(
    text: &str,
    line: usize,
    column: usize,
    value: &str,
    offset: usize,
) -> (usize, usize) {
    let Some(source) = from_position(text, line, column) else {
        return (line, column);
    };
    let mut src = Source {
        chars: source.chars().peekable(),
        line,
        column,
    };
    let first = source.chars().next();
    let style = match first {
        Some('|' | '>') if block_header(source) => {
            // Content starts on the next line.
            while src.peek().is_some_and(|c| c != '\n' && c != '\r') {
                src.next();
            }
            src.next();
            Style::Plain
        }
        Some('"') if !block_content(text, line, column) => {
            src.next();
            Style::Double
        }
        Some('\'') if !block_content(text, line, column) => {
            src.next();
            Style::Single
        }
        _ => Style::Plain,
    };
    // An error at the end of the program points just after its last char, not after trailing
    // line breaks.
    let offset = offset.min(value.trim_end().chars().count());
    for want in value.chars().take(offset) {
        if !src.consume(want, style) {
            break;
        }
    }
    if let Some(want) = value.chars().nth(offset)
        && !want.is_whitespace()
    {
        // Skip indentation and folded line breaks before the char itself.
        while src.peek().is_some_and(|c| c != want && is_space(c)) {
            src.next();
        }
    }
    (src.line, src.column)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Double,
    Single,
}

/// Source text being walked, with the line and column of its next char.
struct Source<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    column: usize,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

impl Source<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        match c {
            '\r' if self.peek() == Some('\n') => {}
            '\n' | '\r' => {
                self.line += 1;
                self.column = 1;
            }
            _ => self.column += 1,
        }
        Some(c)
    }

    /// Moves past the source of one value char; false when the source cannot explain it.
    fn consume(&mut self, want: char, style: Style) -> bool {
        while let Some(c) = self.peek() {
            match (c, style) {
                ('\\', Style::Double) => {
                    self.next();
                    let escaped = self.next();
                    let digits = match escaped {
                        Some('x') => 2,
                        Some('u') => 4,
                        Some('U') => 8,
                        // An escaped line break keeps nothing.
                        Some('\n' | '\r') => continue,
                        _ => 0,
                    };
                    for _ in 0..digits {
                        self.next();
                    }
                    return true;
                }
                ('\'', Style::Single) if want == '\'' => {
                    self.next();
                    self.next();
                    return true;
                }
                _ if c == want => {
                    self.next();
                    return true;
                }
                _ if is_space(c) => {
                    self.next();
                }
                // A space or line break of the value that folding made from source already passed.
                _ if is_space(want) => return true,
                _ => return false,
            }
        }
        false
    }
}

/// `text` from a 1-based line and column on (YAML line breaks, columns in chars).
fn from_position(text: &str, line: usize, column: usize) -> Option<&str> {
    let mut rest = text;
    for _ in 1..line {
        let end = rest.find(['\n', '\r'])?;
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
    let at = rest
        .char_indices()
        .map(|(i, _)| i)
        .chain([rest.len()])
        .nth(column.checked_sub(1)?)?;
    Some(&rest[at..])
}

/// Whether `source` starts with a block scalar header: `|` or `>`, optional chomping and
/// indentation indicators, then only blanks or a comment to the end of the line.
fn block_header(source: &str) -> bool {
    let rest =
        source[1..].trim_start_matches(['+', '-', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    let line = rest.split(['\n', '\r']).next().unwrap_or("");
    let line = line.trim_start_matches([' ', '\t']);
    line.is_empty() || (line.starts_with('#') && rest.starts_with([' ', '\t']))
}

/// Whether a span at `line`:`column` is the content of a block scalar: the first char of its line,
/// after a line ending in a block scalar header (blank lines between).
fn block_content(text: &str, line: usize, column: usize) -> bool {
    let all: Vec<&str> = lines(text).take(line).collect();
    let Some(this) = all.get(line.wrapping_sub(1)) else {
        return false;
    };
    if this.chars().take_while(|c| *c == ' ').count() + 1 != column {
        return false;
    }
    let Some(before) = all[..line - 1].iter().rev().find(|l| !l.trim().is_empty()) else {
        return false;
    };
    // The last `|` or `>` of the line, if what follows makes it a header.
    before
        .char_indices()
        .filter(|(i, c)| {
            matches!(c, '|' | '>')
                && (*i == 0 || before[..*i].ends_with([' ', '\t']))
                && block_header(&before[*i..])
        })
        .count()
        > 0
}

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
        // Other unknown keys of the same mapping, reported and removed in the same round: a
        // file with thousands of them would otherwise take a round each.
        let mut siblings: Vec<(Step, TreeError)> = Vec::new();
        if !derived {
            let mut span = inner.start_mark().map(|m| (m.line(), m.column()));
            let failed = find(&root, &path);
            if span.is_some() && span == start(failed.span()) {
                span = node_start(failed);
            }
            let mut text = tidy(&message);
            match &inner {
                marked_yaml::spanned_serde::Error::UnknownFieldError(field, expected, _) => {
                    // Point at the key itself, and remove that key.
                    if target.last() == Some(&Step::Key(field.clone())) {
                        target.pop();
                    }
                    span = key_span(find(&root, &target), field)
                        .and_then(start)
                        .or(span);
                    if let (Node::Mapping(map), false) = (find(&root, &target), expected.is_empty())
                    {
                        for key in map.keys() {
                            let name = key.as_str();
                            if name == field || expected.contains(&name) {
                                continue;
                            }
                            let mut at = target.clone();
                            at.push(Step::Key(name.to_string()));
                            let (line, column) = start(key.span()).unwrap_or((1, 1));
                            let error = TreeError {
                                line,
                                column,
                                path: render(&original_numbering(&at, &removed)),
                                message: text.replacen(
                                    &format!("`{field}`"),
                                    &format!("`{name}`"),
                                    1,
                                ),
                            };
                            siblings.push((Step::Key(name.to_string()), error));
                        }
                    }
                    target.push(Step::Key(field.clone()));
                }
                marked_yaml::spanned_serde::Error::IntegerParseFailure(..) => {
                    let found = find(&root, &path)
                        .as_scalar()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default();
                    text = format!("expected a whole number, found `{found}`");
                }
                marked_yaml::spanned_serde::Error::FloatParseFailure(..) => {
                    let found = find(&root, &path)
                        .as_scalar()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default();
                    text = format!("expected a number, found `{found}`");
                }
                marked_yaml::spanned_serde::Error::NotBoolean(_) => {
                    text = "expected true or false".into()
                }
                _ => {
                    // An unknown kind of input/output/step: point at the key naming it.
                    if let Some(kind) = message
                        .strip_prefix("unknown variant `")
                        .and_then(|m| m.split('`').next())
                    {
                        span = key_span(find(&root, &path), kind).and_then(start).or(span);
                    }
                }
            }
            if span.is_none() {
                span = node_start(find(&root, &target)).or_else(|| node_start(find(&root, &path)));
            }
            let (line, column) = span.unwrap_or((1, 1));
            let error = TreeError {
                line,
                column,
                path: render(&original_numbering(&target, &removed)),
                message: text,
            };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::load_str;
    use std::path::Path;

    fn load_errors(text: &str) -> Vec<String> {
        let env = |_: &str| None;
        match load_str(Path::new("p.yaml"), text, &env) {
            Ok(_) => Vec::new(),
            Err(errs) => errs
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect(),
        }
    }

    #[test]
    fn a_second_document_is_an_error_at_its_start() {
        let one = "input: {stdin: {}}\noutput: {stdout: {}}\nerrors: drop\n";
        assert_eq!(load_errors(one), Vec::<String>::new());
        assert_eq!(
            load_errors(&format!("%YAML 1.2\n---\n{one}...\n# done\n")),
            Vec::<String>::new()
        );
        assert_eq!(
            load_errors(&format!("# a pipeline\n--- # first\n{one}")),
            Vec::<String>::new()
        );
        let second = |text: &str| {
            let errs = load_errors(text);
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(
                errs[0].contains("a second YAML document starts here"),
                "{errs:?}"
            );
            errs[0].split(':').next().unwrap().parse::<usize>().unwrap()
        };
        assert_eq!(second(&format!("{one}---\n{one}")), 4);
        assert_eq!(second(&format!("---\n{one}---\n")), 5);
        assert_eq!(second(&format!("{one}...\n{one}")), 5);
        assert_eq!(second("--- {input: {stdin: {}}}\n--- {}\n"), 2);
        // Not a marker: indented, or followed by other text.
        let jq = "input: {stdin: {}}\ntransforms:\n  - jq: |\n      \"a\"\n      ---\noutput: {stdout: {}}\nerrors: drop\n";
        assert!(
            !load_errors(jq)
                .iter()
                .any(|e| e.contains("second YAML document"))
        );
        assert!(
            load_errors("name: ---x\ninput: {stdin: {}}\noutput: {stdout: {}}\nerrors: drop\n")
                .is_empty()
        );
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        // 5,000 nested lists in 10 kB: the parser's recursion overflowed the main thread's stack.
        let text = format!(
            "input:\n{}x\noutput:\n  stdout: {{}}\nerrors: drop\n",
            "- ".repeat(5000)
        );
        let errs = load_errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("2:257: nested too deeply"), "{errs:?}");

        let mut text = "input:\n".to_string();
        for i in 1..=300 {
            text.push_str(&format!("{}-\n", " ".repeat(i)));
        }
        let errs = load_errors(&text);
        assert!(
            errs[0].starts_with("257:257: nested too deeply"),
            "{errs:?}"
        );
    }

    #[test]
    fn nesting_up_to_the_limit_parses_on_any_thread() {
        // As deep as the limit lets through, block and flow together, on a small stack: the
        // parser runs on its own thread.
        let mut text = "input:\n".to_string();
        for i in 0..250 {
            text.push_str(&format!("{}- \n", " ".repeat(i)));
        }
        text.push_str(&format!(
            "{}- {}{}\n",
            " ".repeat(250),
            "[".repeat(255),
            "]".repeat(255)
        ));
        let parsed = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || parse(&text, LoaderOptions::default()).map(|_| ()))
            .unwrap()
            .join()
            .unwrap();
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    #[test]
    fn block_indent_counts_indicators_not_content() {
        assert_eq!(block_indent("    key: value"), 4);
        assert_eq!(block_indent("  - - - x"), 8);
        assert_eq!(block_indent("- &a !t - x"), 10);
        assert_eq!(block_indent("- - -"), 5);
        assert_eq!(block_indent("        "), 0);
        assert_eq!(block_indent("      # comment"), 0);
        assert_eq!(block_indent("---"), 0);
        assert_eq!(block_indent("  -x"), 2);
    }

    #[test]
    fn scalar_positions_in_every_style() {
        type Position = (usize, usize);
        // (text, span start, value, offset, expected position)
        let cases: &[(&str, Position, &str, usize, Position)] = &[
            ("a: .b | ]\n", (1, 4), ".b | ]", 5, (1, 9)),
            ("a: '.b | ]'\n", (1, 4), ".b | ]", 5, (1, 10)),
            ("a: 'it''s ]'\n", (1, 4), "it's ]", 5, (1, 11)),
            ("a: \"\\u00e9 | ]\"\n", (1, 4), "é | ]", 4, (1, 14)),
            ("a: \"x \\\n  y ]\"\n", (1, 4), "x y ]", 4, (2, 5)),
            // End of program: just after its last char (here the closing quote).
            ("a: '.b =='\n", (1, 4), ".b ==", 5, (1, 10)),
            // Folded plain and quoted scalars: the value has a space where the source breaks.
            ("a: .b\n  | {c .d}\n", (1, 4), ".b | {c .d}", 8, (2, 8)),
            ("a: \".b\n   | ]\"\n", (1, 4), ".b | ]", 5, (2, 6)),
            // Block scalars, with the span at the header or at the content.
            (
                "a: |\n  {b: .b,\n   c: ]}\n",
                (1, 4),
                "{b: .b,\n c: ]}\n",
                12,
                (3, 7),
            ),
            (
                "a: |\n  {b: .b,\n   c: ]}\n",
                (2, 3),
                "{b: .b,\n c: ]}\n",
                12,
                (3, 7),
            ),
            ("a: |2\n    x |\n    ]\n", (2, 3), "  x |\n  ]\n", 8, (3, 5)),
            ("a: >-\n  .b\n  | ]\n", (2, 3), ".b | ]", 5, (3, 5)),
            ("a: |\r\n  .b |\r\n  ]\r\n", (2, 3), ".b |\n]\n", 5, (3, 3)),
            ("a: |\r  .b |\r  ]\r", (2, 3), ".b |\n]\n", 5, (3, 3)),
            ("a: |\n  .b |\n\n", (2, 3), ".b |\n", 99, (2, 7)),
            // Block content starting with a quote is not a quoted scalar.
            ("a: |\n  \"x\" + ]\n", (2, 3), "\"x\" + ]\n", 6, (2, 9)),
        ];
        for &(text, (line, column), value, offset, want) in cases {
            assert_eq!(
                position_in_scalar(text, line, column, value, offset),
                want,
                "{text:?} offset {offset}"
            );
        }
    }

    #[test]
    fn jq_errors_point_at_the_mistake_in_any_scalar_style() {
        let text = "\
input:
  stdin: {}
transforms:
  - jq: |
      {a: .a,
       b: (.b | ]}
  - jq: .a
      | {b .c}
  - jq:
      program: >
        .a
        | (.b +
        ]
output:
  stdout: {}
errors: drop
";
        let errs = load_errors(text);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].starts_with("6:17: jq syntax error"), "{errs:?}");
        assert!(errs[1].starts_with("8:12: jq syntax error"), "{errs:?}");
        assert!(errs[2].starts_with("13:9: jq syntax error"), "{errs:?}");
    }

    #[test]
    fn positions_follow_yaml_lines_and_stay_in_the_file() {
        // Lone carriage returns break lines for the YAML parser, so for diagnostics too.
        let errs = load_errors("input:\r  stdin: {}\routput:\r  stdout: {}\rerrors: sideways\r");
        assert!(errs[0].starts_with("5:9: errors: unknown kind"), "{errs:?}");
        // The parser reports the end of input on a line after the last one.
        let errs = load_errors("#🫎");
        assert!(
            errs[0].starts_with("1:3: missing field `input`"),
            "{errs:?}"
        );
        // The position is said once, in the file's terms.
        let errs = load_errors("input:\n  stdin: {\noutput: x\n");
        assert_eq!(errs.len(), 1);
        assert!(!errs[0].contains("byte"), "{errs:?}");
    }

    #[test]
    fn mapping_errors_point_at_the_first_key() {
        let errs = load_errors("name: only-a-name\n");
        assert!(
            errs[0].starts_with("1:1: missing field `input`"),
            "{errs:?}"
        );
        let errs = load_errors(
            "input:\n  stdin: {}\ntransforms:\n  - jq: .\n    nmae: typo\noutput:\n  stdout: {}\nerrors: drop\n",
        );
        assert!(errs[0].starts_with("4:5: transforms[0]"), "{errs:?}");
    }

    #[test]
    fn a_byte_order_mark_is_not_content() {
        let errs =
            load_errors("\u{feff}input:\n  stdin: {}\noutput:\n  stdout: {}\nerrors: nope\n");
        assert!(errs[0].starts_with("5:9: errors: unknown kind"), "{errs:?}");
    }
}
