//! Environment interpolation of pipeline files: `${VAR}`, `${VAR:-default}`, `${VAR:?message}`, `$$`.
//!
//! Interpolation runs on the raw text before YAML parsing, so the result keeps a map back to the
//! original text: errors found later in the interpolated text still point at the right line:column.

/// One error found while interpolating, at a 1-based line and column of the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarError {
    /// 1-based line of the `${` that failed.
    pub line: usize,
    /// 1-based column (in characters) of the `${` that failed.
    pub column: usize,
    /// What went wrong, naming the variable.
    pub message: String,
}

/// Interpolated text plus what is needed to map its positions back to the original.
#[derive(Debug, Clone)]
pub struct Interpolated {
    /// The text after substitution.
    pub text: String,
    /// Segments in order: (start in output, start in input, length in output, literal?), in chars.
    segments: Vec<Segment>,
    /// Char offsets of line starts in the original text.
    original_line_starts: Vec<usize>,
    /// Lines of the interpolated text as char offsets: where each starts, and where its line
    /// break (or the text) ends it.
    output_lines: Vec<(usize, usize)>,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    out_start: usize,
    in_start: usize,
    out_len: usize,
    literal: bool,
}

/// Lines as char offsets (start, end): `end` is where the line break starts, or the end of the
/// text. Line breaks are YAML's (`\n`, `\r\n`, a lone `\r`), so that lines agree with the positions
/// the YAML parser reports.
fn lines(text: &str) -> Vec<(usize, usize)> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut end = 0;
    let mut chars = text.chars().enumerate().peekable();
    while let Some((i, c)) = chars.next() {
        end = i + 1;
        let crlf = c == '\r' && matches!(chars.peek(), Some((_, '\n')));
        if crlf {
            chars.next();
            end = i + 2;
        }
        if crlf || c == '\n' || c == '\r' {
            lines.push((start, i));
            start = end;
        }
    }
    lines.push((start, end.max(start)));
    lines
}

fn line_starts(text: &str) -> Vec<usize> {
    lines(text).into_iter().map(|(start, _)| start).collect()
}

fn to_line_col(starts: &[usize], offset: usize) -> (usize, usize) {
    let line = starts.partition_point(|&s| s <= offset).max(1);
    (line, offset - starts[line - 1] + 1)
}

impl Interpolated {
    /// `text` as it is, with nothing substituted (a file `${VAR}` is not used in).
    pub fn verbatim(text: &str) -> Interpolated {
        Interpolated {
            text: text.to_string(),
            segments: vec![Segment {
                out_start: 0,
                in_start: 0,
                out_len: text.chars().count(),
                literal: true,
            }],
            original_line_starts: line_starts(text),
            output_lines: lines(text),
        }
    }

    /// Maps a 1-based line:column of the interpolated text to the original text. A position inside
    /// a substituted value maps to the `${` that produced it. A position past the end of its line
    /// or of the text (the YAML parser reports the end of input on the line after the last) is
    /// taken as the end of that line or of the text.
    pub fn original_position(&self, line: usize, column: usize) -> (usize, usize) {
        let text_end = self.output_lines.last().map_or(0, |&(_, end)| end);
        let out = match self.output_lines.get(line.saturating_sub(1)) {
            Some(&(start, end)) => (start + column.saturating_sub(1)).min(end),
            None => text_end,
        };
        let idx = self.segments.partition_point(|s| s.out_start <= out);
        let Some(seg) = idx.checked_sub(1).map(|i| self.segments[i]) else {
            return (1, 1);
        };
        let within = (out - seg.out_start).min(seg.out_len);
        let input = if seg.literal {
            seg.in_start + within
        } else {
            seg.in_start
        };
        to_line_col(&self.original_line_starts, input)
    }
}

/// Looks a variable up; `std::env::var` in production, a table in tests.
pub trait Lookup {
    /// The variable's value, or `None` when it is unset (or not valid Unicode).
    fn get(&self, name: &str) -> Option<String>;
}

/// Reads the process environment.
pub struct ProcessEnv;

impl Lookup for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Substitutes every `${...}` in `input`. Returns every error at once.
pub fn interpolate(input: &str, env: &dyn Lookup) -> Result<Interpolated, Vec<VarError>> {
    let chars: Vec<char> = input.chars().collect();
    let original_line_starts = line_starts(input);
    let mut out = Output::new(&chars);
    let mut errors = Vec::new();
    let mut literal_from = 0usize;
    let mut i = 0usize;
    while i < chars.len() {
        if chars[i] != '$' {
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                // `$$` is a literal `$`.
                out.literal(literal_from, i + 1);
                i += 2;
                literal_from = i;
            }
            Some('{') => {
                let at = |message| {
                    let (line, column) = to_line_col(&original_line_starts, i);
                    VarError {
                        line,
                        column,
                        message,
                    }
                };
                match closing_brace(&chars, i) {
                    Ok(close) => {
                        out.literal(literal_from, i);
                        let body: String = chars[i + 2..close].iter().collect();
                        match resolve(&body, env) {
                            Ok(value) => out.substituted(i, &value),
                            Err(message) => errors.push(at(message)),
                        }
                        i = close + 1;
                        literal_from = i;
                    }
                    Err(resume) => {
                        errors.push(at("unterminated `${`".into()));
                        i = resume;
                    }
                }
            }
            _ => i += 1,
        }
    }
    out.literal(literal_from, chars.len());
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(out.finish(original_line_starts))
}

/// The index of the `}` closing the `${` at `start`; else, for an unterminated one, where to
/// read on: just after the `${`, or at the line break that ends it (a `${` never spans lines).
fn closing_brace(chars: &[char], start: usize) -> Result<usize, usize> {
    match chars[start + 2..]
        .iter()
        .position(|&c| matches!(c, '}' | '\n' | '\r'))
    {
        Some(n) if chars[start + 2 + n] == '}' => Ok(start + 2 + n),
        Some(n) => Err(start + 2 + n),
        None => Err(start + 2),
    }
}

/// The interpolated text as it is written, with the segments that map it back to the input.
struct Output<'a> {
    /// The input text.
    chars: &'a [char],
    text: String,
    /// Chars written so far.
    len: usize,
    segments: Vec<Segment>,
}

impl<'a> Output<'a> {
    fn new(chars: &'a [char]) -> Output<'a> {
        Output {
            chars,
            text: String::with_capacity(chars.len()),
            len: 0,
            segments: Vec::new(),
        }
    }

    /// Copies the input's chars `from..to` as they are.
    fn literal(&mut self, from: usize, to: usize) {
        if to > from {
            self.segments.push(Segment {
                out_start: self.len,
                in_start: from,
                out_len: to - from,
                literal: true,
            });
            self.text.extend(&self.chars[from..to]);
            self.len += to - from;
        }
    }

    /// Writes `value`, substituted for the `${` at input char `at`.
    fn substituted(&mut self, at: usize, value: &str) {
        let n = value.chars().count();
        self.segments.push(Segment {
            out_start: self.len,
            in_start: at,
            out_len: n,
            literal: false,
        });
        self.text.push_str(value);
        self.len += n;
    }

    /// The text written, mapping back to an input whose lines start at `original_line_starts`.
    fn finish(self, original_line_starts: Vec<usize>) -> Interpolated {
        let output_lines = lines(&self.text);
        Interpolated {
            text: self.text,
            segments: self.segments,
            original_line_starts,
            output_lines,
        }
    }
}

fn resolve(body: &str, env: &dyn Lookup) -> Result<String, String> {
    let (name, op, arg) = match body.find(":-").or_else(|| body.find(":?")) {
        Some(at) => (&body[..at], &body[at..at + 2], Some(&body[at + 2..])),
        None => (body, "", None),
    };
    if !valid_name(name) {
        return Err(format!(
            "invalid environment variable name `{name}` in `${{{body}}}`"
        ));
    }
    let value = env.get(name);
    match (op, arg) {
        (":-", Some(default)) => Ok(value.filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())),
        (":?", Some(message)) => match value.filter(|v| !v.is_empty()) {
            Some(v) => Ok(v),
            None if message.is_empty() => Err(format!("environment variable `{name}` is required")),
            None => Err(format!("environment variable `{name}` is required: {message}")),
        },
        _ => value.ok_or_else(|| format!("environment variable `{name}` is not set (use `${{{name}:-default}}` for a default)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "BROKERS" => Some("b1:9092,b2:9092".into()),
            "EMPTY" => Some(String::new()),
            "MULTI" => Some("a\nb".into()),
            _ => None,
        }
    }

    #[test]
    fn table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("plain text", Ok("plain text")),
            ("${BROKERS}", Ok("b1:9092,b2:9092")),
            ("x=${BROKERS}!", Ok("x=b1:9092,b2:9092!")),
            ("${MISSING:-local:9092}", Ok("local:9092")),
            ("${EMPTY:-fallback}", Ok("fallback")),
            ("${BROKERS:-fallback}", Ok("b1:9092,b2:9092")),
            ("${EMPTY}", Ok("")),
            ("${BROKERS:?set it}", Ok("b1:9092,b2:9092")),
            ("cost: $$5", Ok("cost: $5")),
            ("$${BROKERS}", Ok("${BROKERS}")),
            ("jq: '$key // .id'", Ok("jq: '$key // .id'")),
            (
                "${MISSING}",
                Err("environment variable `MISSING` is not set"),
            ),
            (
                "${MISSING:?brokers are needed}",
                Err("environment variable `MISSING` is required: brokers are needed"),
            ),
            (
                "${EMPTY:?}",
                Err("environment variable `EMPTY` is required"),
            ),
            ("${1BAD}", Err("invalid environment variable name `1BAD`")),
            ("${BROKERS", Err("unterminated `${`")),
        ];
        for (input, expected) in cases {
            let got = interpolate(input, &env);
            match (expected, got) {
                (Ok(want), Ok(got)) => assert_eq!(&got.text, want, "input {input:?}"),
                (Err(want), Err(errs)) => {
                    assert_eq!(errs.len(), 1, "input {input:?}: {errs:?}");
                    assert!(
                        errs[0].message.starts_with(want),
                        "input {input:?}: got {:?}",
                        errs[0].message
                    );
                }
                (want, got) => panic!("input {input:?}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn reports_every_error_with_position() {
        let text = "a: ${ONE}\nb:\n  c: x ${TWO:?needed}\n";
        let errs = interpolate(text, &env).unwrap_err();
        assert_eq!(
            errs.iter().map(|e| (e.line, e.column)).collect::<Vec<_>>(),
            vec![(1, 4), (3, 8)]
        );
        assert!(errs[0].message.contains("`ONE`"));
        assert!(errs[1].message.contains("`TWO`") && errs[1].message.contains("needed"));
    }

    #[test]
    fn maps_positions_back() {
        let text = "a: ${BROKERS} tail\nm: ${MULTI} z\nlast: 1\n";
        let got = interpolate(text, &env).unwrap();
        assert_eq!(got.text, "a: b1:9092,b2:9092 tail\nm: a\nb z\nlast: 1\n");
        // "tail" on line 1 moved right by the substitution.
        assert_eq!(got.original_position(1, 20), (1, 15));
        // inside the substituted value: points at `${`.
        assert_eq!(got.original_position(1, 8), (1, 4));
        // the substituted newline added a line: output line 4 is original line 3.
        assert_eq!(got.original_position(4, 1), (3, 1));
        assert_eq!(got.original_position(3, 3), (2, 13));
    }

    #[test]
    fn lines_break_where_yaml_breaks_them() {
        // `\r\n` is one break, a lone `\r` is one too.
        let text = "a: ${BROKERS}\rb: ${MISSING}\r\nc: 1\n";
        let errs = interpolate(text, &env).unwrap_err();
        assert_eq!((errs[0].line, errs[0].column), (2, 4));
        let got = interpolate("a: ${BROKERS}\rb: x\r\nc: y", &env).unwrap();
        assert_eq!(got.original_position(2, 4), (2, 4));
        assert_eq!(got.original_position(3, 1), (3, 1));
        // An unterminated `${` ends at a line break of any kind.
        let errs = interpolate("a: ${BROKERS\rb: }", &env).unwrap_err();
        assert_eq!(errs[0].message, "unterminated `${`");
    }

    #[test]
    fn positions_past_the_end_stay_in_the_text() {
        let got = interpolate("a: ${BROKERS}\nb: 2", &env).unwrap();
        // Past the end of a line: the end of that line.
        assert_eq!(got.original_position(2, 99), (2, 5));
        // Past the last line (the YAML parser's end of input): the end of the text.
        assert_eq!(got.original_position(3, 1), (2, 5));
        assert_eq!(got.original_position(7, 7), (2, 5));
        // Past the end of a line that ends in a substitution: the end of the original line.
        assert_eq!(got.original_position(1, 99), (1, 14));
        let empty = interpolate("", &env).unwrap();
        assert_eq!(empty.original_position(2, 1), (1, 1));
    }

    proptest! {
        #[test]
        fn text_without_dollar_is_unchanged(s in "[^$]{0,200}") {
            let got = interpolate(&s, &env).unwrap();
            prop_assert_eq!(&got.text, &s);
            for (li, (start, end)) in lines(&s).into_iter().enumerate() {
                for col in 1..=end - start {
                    prop_assert_eq!(got.original_position(li + 1, col), (li + 1, col));
                }
            }
        }

        #[test]
        fn literal_positions_survive_substitution(prefix in "[a-z ]{0,20}", suffix in "[a-z ]{1,20}") {
            let text = format!("{prefix}${{BROKERS}}{suffix}");
            let got = interpolate(&text, &env).unwrap();
            let value_len = "b1:9092,b2:9092".len();
            let p = prefix.chars().count();
            for k in 0..suffix.chars().count() {
                prop_assert_eq!(got.original_position(1, p + value_len + 1 + k), (1, p + "${BROKERS}".len() + 1 + k));
            }
        }
    }
}
