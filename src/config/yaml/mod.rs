//! YAML to typed config with every error reported, each at its file:line:column.
//!
//! serde stops at the first error, so after each error the offending node is taken out of the tree
//! and deserialization runs again; errors that only follow from a removal are not reported.

mod text;
mod tree;

pub use text::position_in_scalar;
pub use tree::{Deserialized, Step, TreeError, deserialize, find, node_start, render, start};

use marked_yaml::{LoaderOptions, Node};
use text::lines;

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
