//! Env interpolation: any text interpolates or fails at a `${`, and well-formed templates expand
//! to exactly the expected text with every position mapped back.

use proptest::prelude::*;
use sluice::config::vars::{Interpolated, interpolate};

use super::{config, env, lines, positions, rest_at};

/// Checks what holds for any input: errors point at a `${` of the input; a result maps every
/// position back into the input, a copied character to itself and a substituted one to the `${`
/// it came from.
fn check_interpolation(input: &str) -> Result<Option<Interpolated>, TestCaseError> {
    match interpolate(input, &env) {
        Err(errors) => {
            prop_assert!(!errors.is_empty(), "an error without errors");
            for e in &errors {
                prop_assert!(!e.message.is_empty());
                let at = rest_at(input, e.line, e.column);
                prop_assert!(
                    at.is_some_and(|at| at.starts_with("${")),
                    "error {e:?} is not at a `${{` of {input:?}"
                );
            }
            prop_assert!(input.contains("${"), "{input:?} failed: {errors:?}");
            Ok(None)
        }
        Ok(got) => {
            if !input.contains('$') {
                prop_assert_eq!(&got.text, input);
            }
            if !input.contains("${") {
                prop_assert_eq!(&got.text, &input.replace("$$", "$"));
            }
            for (li, line) in lines(&got.text).into_iter().enumerate() {
                let chars: Vec<char> = line.chars().collect();
                for col in 1..=chars.len() + 1 {
                    let (l, c) = got.original_position(li + 1, col);
                    let at = rest_at(input, l, c);
                    prop_assert!(
                        at.is_some(),
                        "{}:{} maps to {l}:{c}, outside {input:?}",
                        li + 1,
                        col
                    );
                    let at = at.unwrap_or_default();
                    if let Some(&ch) = chars.get(col - 1) {
                        prop_assert!(
                            at.starts_with(ch) || at.starts_with("${"),
                            "{}:{} ({ch:?}) of {:?} maps to {l}:{c} ({:?}) of {input:?}",
                            li + 1,
                            col,
                            got.text,
                            at.chars().next()
                        );
                    }
                }
            }
            Ok(Some(got))
        }
    }
}

/// Pieces of interpolation input, any mix of them: what the parser has to cope with.
fn interpolation_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("$".to_string()),
        Just("$$".to_string()),
        Just("${".to_string()),
        Just("}".to_string()),
        Just("{".to_string()),
        Just(":-".to_string()),
        Just(":?".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("${SET}".to_string()),
        Just("${MULTI}".to_string()),
        Just("${UNI}".to_string()),
        Just("${EMPTY}".to_string()),
        Just("${DOLLAR}".to_string()),
        Just("${MISSING}".to_string()),
        Just("${SET:-".to_string()),
        Just("${MISSING:-d}".to_string()),
        Just("${MISSING:?need it}".to_string()),
        Just("${EMPTY:?}".to_string()),
        Just("${MISSING:-${SET}}".to_string()),
        Just("${${SET}}".to_string()),
        Just("${1BAD}".to_string()),
        Just("${é}".to_string()),
        Just("$SET".to_string()),
        Just("é".to_string()),
        Just("日本".to_string()),
        Just("😀".to_string()),
        Just("\u{feff}".to_string()),
        Just("\0".to_string()),
        "[a-zA-Z_0-9 :-]{1,6}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// A piece of a well-formed template: its text, and what it becomes (`None`: an error at its
/// start).
fn template_piece() -> impl Strategy<Value = (String, Option<String>)> {
    let fixed =
        |input: &str, output: Option<&str>| Just((input.to_string(), output.map(String::from)));
    prop_oneof![
        4 => "[^$]{0,12}".prop_map(|s| (s.clone(), Some(s))),
        1 => fixed("$$", Some("$")),
        1 => fixed("${SET}", Some("value")),
        1 => fixed("${EMPTY}", Some("")),
        1 => fixed("${MULTI}", Some("a\nb")),
        1 => fixed("${UNI}", Some("é😀")),
        1 => fixed("${DOLLAR}", Some("${SET}")),
        1 => fixed("${EMPTY:-e}", Some("e")),
        1 => fixed("${SET:-d}", Some("value")),
        1 => fixed("${SET:?m}", Some("value")),
        1 => "[^}\n\r]{0,8}".prop_map(|d| (format!("${{MISSING:-{d}}}"), Some(d))),
        1 => fixed("${MISSING}", None),
        1 => fixed("${MISSING:?needed}", None),
        1 => fixed("${EMPTY:?}", None),
        1 => fixed("${1BAD}", None),
        1 => fixed("${A B}", None),
        1 => fixed("${}", None),
        1 => fixed("${UNTERMINATED\n", None),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn interpolation_of_any_text_never_panics(input in prop_oneof![any::<String>(), interpolation_soup()]) {
        check_interpolation(&input)?;
    }

    /// Templates made of known pieces expand to exactly the expected text, with every copied
    /// character mapped to its own place and every substitution to its `${`; or fail with one
    /// error per bad piece, each at that piece.
    #[test]
    fn templates_expand_as_specified(pieces in prop::collection::vec(template_piece(), 0..12)) {
        let mut input = String::new();
        let mut expected = String::new();
        // Char offsets: of each bad piece in the input; of each output char that is copied or
        // substituted, with the input char it comes from.
        let mut errors = Vec::new();
        let mut copied = Vec::new();
        let mut substituted = Vec::new();
        for (text, output) in &pieces {
            let (from, to) = (input.chars().count(), expected.chars().count());
            match output {
                None => errors.push(from),
                Some(out) if text.starts_with("${") => {
                    substituted.extend((0..out.chars().count()).map(|k| (to + k, from)));
                    expected.push_str(out);
                }
                Some(out) => {
                    copied.extend((0..out.chars().count()).map(|k| (to + k, from + k)));
                    expected.push_str(out);
                }
            }
            input.push_str(text);
        }
        let (in_pos, out_pos) = (positions(&input), positions(&expected));
        match check_interpolation(&input)? {
            Some(got) => {
                prop_assert!(errors.is_empty(), "{input:?} should fail at {errors:?}");
                prop_assert_eq!(&got.text, &expected);
                for (to, from) in copied.into_iter().chain(substituted) {
                    let (l, c) = out_pos[to];
                    prop_assert_eq!(
                        got.original_position(l, c), in_pos[from],
                        "output {}:{} of {:?}", l, c, got.text
                    );
                }
            }
            None => {
                let got: Vec<(usize, usize)> = interpolate(&input, &env)
                    .unwrap_err()
                    .iter()
                    .map(|e| (e.line, e.column))
                    .collect();
                let want: Vec<(usize, usize)> = errors.iter().map(|&i| in_pos[i]).collect();
                prop_assert_eq!(got, want, "{:?}", input);
            }
        }
    }
}
