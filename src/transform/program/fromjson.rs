//! jq's `fromjson`, guarded against text nested deeper than a worker's stack can parse.

/// jaq's `fromjson` (also behind `tonumber` and `toboolean`), refusing text nested deeper than
/// the codec writes before parsing it: jaq's parser recurses once per level, and a string of
/// 100,000 `[` from an event overflowed the worker's 64 MiB stack and aborted the process.
pub(super) fn fromjson() -> jaq_core::native::Fun<jaq_core::data::JustLut<jaq_json::Val>> {
    use jaq_core::native::{bome, run, v};
    run(("fromjson", v(0), |cv| {
        let text = match cv.1.try_as_utf8_bytes_owned() {
            Ok(text) => text,
            Err(e) => return bome(Err(e)),
        };
        if nests_deeper(&text, crate::codec::MAX_DEPTH) {
            let depth = crate::codec::MAX_DEPTH;
            return bome(Err(jaq_core::Error::str(format_args!(
                "cannot parse as JSON: nested deeper than {depth} levels"
            ))));
        }
        let parsed = jaq_json::bytes_valrs(text, |text| {
            Box::new(jaq_json::read::parse_many(text).map(|r| {
                r.map_err(|e| jaq_core::Error::str(format_args!("cannot parse as JSON: {e}")))
            }))
        });
        Box::new(parsed.map(|r| r.map_err(jaq_core::Exn::from)))
    }))
}

/// Whether JSON text (as jaq reads it: `#` comments, `b"..."` byte strings) nests arrays and
/// objects deeper than `max`. Errs on the deep side: brackets in strings and comments never count
/// towards nesting, anything else that looks like a bracket does.
fn nests_deeper(text: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut bytes = text.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'"' => {
                // To the closing quote, skipping escaped chars.
                while let Some(&c) = bytes.next() {
                    match c {
                        b'\\' => {
                            bytes.next();
                        }
                        b'"' => break,
                        _ => {}
                    }
                }
            }
            b'#' => {
                for &c in bytes.by_ref() {
                    if c == b'\n' {
                        break;
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_and_comments() {
        assert!(!nests_deeper(b"[[1]]", 2));
        assert!(nests_deeper(b"[[[1]]]", 2));
        assert!(nests_deeper(b"[{\"a\":[1]}]", 2));
        assert!(!nests_deeper(br#"["[[[[", "\"[[[["]"#, 1));
        assert!(!nests_deeper(b"# [[[[\n[1]", 1));
        // A quote in a comment does not hide the brackets after it.
        assert!(nests_deeper(b"# \"\n[[[1]]]", 2));
        // Closing brackets never make room for more.
        assert!(nests_deeper(b"]]]]][[[", 2));
    }
}
