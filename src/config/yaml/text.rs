//! Positions in YAML text: its lines as YAML breaks them, and where each char of a scalar's value
//! is in the source, so errors inside a jq program point at the mistake.

/// Lines as YAML counts them: broken at `\n`, `\r\n` or a lone `\r`.
pub(super) fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .flat_map(|l| l.strip_suffix('\r').unwrap_or(l).split('\r'))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
