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
    let mut scan = Scan {
        chars: code.chars().collect(),
        levels: vec![Level {
            open: Open::Bracket(0),
            operators: 0,
        }],
        depth: 1,
        i: 0,
        in_string: false,
    };
    while scan.i < scan.chars.len() {
        if scan.in_string {
            if scan.string_char() && scan.depth > max {
                return Some(scan.i - 2);
            }
            continue;
        }
        let start = scan.i;
        scan.code_char();
        if scan.depth > max {
            return Some(start);
        }
        scan.i += 1;
    }
    None
}

/// A scan through a program, tracking what is open and how deep it nests.
struct Scan {
    chars: Vec<char>,
    levels: Vec<Level>,
    depth: usize,
    i: usize,
    /// In a string (after its opening quote), and not in an interpolation of it.
    in_string: bool,
}

impl Scan {
    /// One step inside a string; true when it opened an interpolation (`\(`).
    fn string_char(&mut self) -> bool {
        match self.chars[self.i] {
            '\\' if self.chars.get(self.i + 1) == Some(&'(') => {
                self.in_string = false;
                self.open(Open::Interpolation);
                self.i += 2;
                return true;
            }
            '\\' => self.i += 1,
            '"' => self.in_string = false,
            _ => {}
        }
        self.i += 1;
        false
    }

    /// One token outside strings, starting at `self.i` and leaving it on the token's last char.
    fn code_char(&mut self) {
        let c = self.chars[self.i];
        let mut operator = false;
        match c {
            '"' => self.in_string = true,
            '#' => {
                while self.i < self.chars.len() && self.chars[self.i] != '\n' {
                    self.i += 1;
                }
            }
            '(' => self.open(Open::Bracket(b')')),
            '[' => self.open(Open::Bracket(b']')),
            '{' => self.open(Open::Bracket(b'}')),
            ')' | ']' | '}' => self.close(c),
            ';' => {
                // Ends a `def` at this level (inside brackets it separates arguments).
                if self.levels.len() > 1 && self.levels.last().is_some_and(|t| t.open == Open::Def)
                {
                    self.pop();
                }
                operator = true;
            }
            '|' | ',' | '+' | '-' | '*' | '/' | '%' | '<' | '>' | '=' | '!' | '?' => {
                operator = true;
                // Two-char operators (`//`, `|=`, `==`, `<=`, `?//`, ...) count once.
                while self.i + 1 < self.chars.len() && "|=/<>!?".contains(self.chars[self.i + 1]) {
                    self.i += 1;
                }
            }
            c if c.is_alphabetic() || c == '_' || c == '$' || c == '@' => operator = self.word(),
            _ => {}
        }
        if operator && let Some(top) = self.levels.last_mut() {
            top.operators += 1;
            self.depth += 1;
        }
    }

    /// A word: a keyword opens or ends a block, or counts as an operator (returns true).
    fn word(&mut self) -> bool {
        let mut end = self.i;
        while end + 1 < self.chars.len()
            && (self.chars[end + 1].is_alphanumeric() || "_:".contains(self.chars[end + 1]))
        {
            end += 1;
        }
        let word: String = self.chars[self.i..=end].iter().collect();
        self.i = end;
        match word.as_str() {
            "if" => self.open(Open::If),
            "def" => self.open(Open::Def),
            "end" => {
                while self.levels.len() > 1 {
                    if self.pop().open == Open::If {
                        break;
                    }
                }
            }
            "then" | "elif" | "else" | "and" | "or" | "as" | "try" | "catch" | "reduce"
            | "foreach" | "label" => return true,
            _ => {}
        }
        false
    }

    fn open(&mut self, open: Open) {
        self.levels.push(Level { open, operators: 0 });
        self.depth += 1;
    }

    fn pop(&mut self) -> Level {
        let level = self.levels.pop().expect("more than one level");
        self.depth -= 1 + level.operators;
        level
    }

    /// Closes up to the matching bracket; blocks left open inside it end with it.
    fn close(&mut self, c: char) {
        while self.levels.len() > 1 {
            match self.pop().open {
                Open::Interpolation if c == ')' => {
                    self.in_string = true;
                    break;
                }
                Open::Bracket(close) if close == c as u8 => break,
                _ => {}
            }
        }
    }
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
