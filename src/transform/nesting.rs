//! How deeply a jq program nests, estimated from its text before it is parsed.
//!
//! jaq parses, compiles and runs a program by recursion over its syntax tree, one stack frame or
//! more per level, with no limit of its own: 3,200 nested parentheses, or a chain of 5,000
//! `.a | .a | ...`, overflowed the stack and aborted the process. A chain of binary operators
//! nests as deeply as it is long, so the estimate counts, for every open bracket, string
//! interpolation or `if`/`def` block, one level plus one per operator met in it so far. It errs
//! on the deep side: it never counts less than the tree's depth.

/// Deepest nesting a jq program may have. Far above what hand-written programs use (a literal
/// array of 1,000 elements is 1,000 deep); the stacks of the threads that compile and run
/// programs are sized for it.
pub const MAX_DEPTH: usize = 1_000;

/// Stack of the threads that compile and run jq programs. A level of [`MAX_DEPTH`] takes up to
/// about 40 KiB of stack in a debug build when run (a `.[]` inside an array construction), a
/// tenth of that in a release build; memory is only used as deep as a program goes.
pub const STACK: usize = 64 * 1024 * 1024;

/// What opened a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// `(`, `[` or `{`, closed by this char.
    Bracket(u8),
    /// `\(` in a string: its `)` resumes the string.
    Interpolation,
    /// `if`, closed by `end`.
    If,
    /// `def name: body;`, closed by the `;` at its level.
    Def,
}

struct Level {
    open: Open,
    operators: usize,
}

/// The char offset at which `code` nests deeper than `max`, if it does.
pub fn too_deep(code: &str, max: usize) -> Option<usize> {
    let chars: Vec<char> = code.chars().collect();
    let mut levels: Vec<Level> = vec![Level {
        open: Open::Bracket(0),
        operators: 0,
    }];
    let mut depth = 1usize;
    let mut i = 0;
    // In a string (after its opening quote), and not in an interpolation of it.
    let mut in_string = false;
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            match c {
                '\\' if chars.get(i + 1) == Some(&'(') => {
                    in_string = false;
                    levels.push(Level {
                        open: Open::Interpolation,
                        operators: 0,
                    });
                    depth += 1;
                    i += 2;
                    if depth > max {
                        return Some(i - 2);
                    }
                    continue;
                }
                '\\' => i += 1,
                '"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        let start = i;
        let mut opened = None;
        let mut operator = false;
        match c {
            '"' => in_string = true,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '(' | '[' | '{' => {
                let close = match c {
                    '(' => b')',
                    '[' => b']',
                    _ => b'}',
                };
                opened = Some(Open::Bracket(close));
            }
            ')' | ']' | '}' => {
                // Close up to the matching bracket; blocks left open inside it end with it.
                while levels.len() > 1 {
                    let level = levels.pop().expect("more than one level");
                    depth -= 1 + level.operators;
                    match level.open {
                        Open::Interpolation if c == ')' => {
                            in_string = true;
                            break;
                        }
                        Open::Bracket(close) if close == c as u8 => break,
                        _ => {}
                    }
                }
            }
            ';' => {
                // Ends a `def` at this level (inside brackets it separates arguments).
                if let Some(top) = levels.last()
                    && top.open == Open::Def
                    && levels.len() > 1
                {
                    let level = levels.pop().expect("more than one level");
                    depth -= 1 + level.operators;
                }
                operator = true;
            }
            '|' | ',' | '+' | '-' | '*' | '/' | '%' | '<' | '>' | '=' | '!' | '?' => {
                operator = true;
                // Two-char operators (`//`, `|=`, `==`, `<=`, `?//`, ...) count once.
                while i + 1 < chars.len() && "|=/<>!?".contains(chars[i + 1]) {
                    i += 1;
                }
            }
            c if c.is_alphabetic() || c == '_' || c == '$' || c == '@' => {
                let mut end = i;
                while end + 1 < chars.len()
                    && (chars[end + 1].is_alphanumeric() || "_:".contains(chars[end + 1]))
                {
                    end += 1;
                }
                let word: String = chars[i..=end].iter().collect();
                i = end;
                match word.as_str() {
                    "if" => opened = Some(Open::If),
                    "def" => opened = Some(Open::Def),
                    "end" => {
                        while levels.len() > 1 {
                            let level = levels.pop().expect("more than one level");
                            depth -= 1 + level.operators;
                            if level.open == Open::If {
                                break;
                            }
                        }
                    }
                    "then" | "elif" | "else" | "and" | "or" | "as" | "try" | "catch" | "reduce"
                    | "foreach" | "label" => operator = true,
                    _ => {}
                }
            }
            _ => {}
        }
        if let Some(open) = opened {
            levels.push(Level { open, operators: 0 });
            depth += 1;
        }
        if operator && let Some(top) = levels.last_mut() {
            top.operators += 1;
            depth += 1;
        }
        if depth > max {
            return Some(start);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_and_operator_chains_count() {
        let depth = |code: &str| (1..100).find(|max| too_deep(code, *max).is_none());
        assert_eq!(depth("."), Some(1));
        assert_eq!(depth(".a.b.c.d"), Some(1), "paths do not nest");
        assert_eq!(depth("((.))"), Some(3));
        assert_eq!(depth(".a | .b | .c"), Some(3));
        assert_eq!(depth("[1, 2, 3]"), Some(4));
        assert_eq!(depth("{a: 1, b: 2}"), Some(3));
        assert_eq!(depth("if . then 1 else 2 end | ."), Some(4));
        assert_eq!(depth("\"a\\(1 + 2)b\" | ."), Some(3));
        assert_eq!(
            depth("\"(((\" # (((\n"),
            Some(1),
            "brackets in strings and comments"
        );
        assert_eq!(depth("def f: .; f"), Some(2));
        assert_eq!(depth(". // 1"), Some(2), "a two-char operator counts once");
    }

    #[test]
    fn points_at_where_the_limit_is_passed() {
        assert_eq!(too_deep("((((.))))", 3), Some(2));
        assert_eq!(too_deep(".a | .b | .c", 2), Some(8));
        assert_eq!(too_deep(&"(".repeat(5000), 1_000), Some(999));
        let chain = vec![".a"; 5000].join(" | ");
        assert!(too_deep(&chain, MAX_DEPTH).is_some());
        assert!(too_deep(&vec![".a"; 900].join(" | "), MAX_DEPTH).is_none());
    }
}
