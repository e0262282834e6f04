//! A request body cut into the payloads of its events, without copying them: one JSON value, the
//! items of a JSON array, the lines of NDJSON, or (`codec: raw`) the whole body.

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::codec::Codec;

/// How a body holds its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON value (one event), or a JSON array of events.
    Json,
    /// One event per line.
    Ndjson,
    /// One event: the body as it is.
    Whole,
}

/// The format of a body of `content_type` under `codec`: NDJSON when the type says so; else JSON
/// under `codec: json` (whatever the type: `curl -d` says form data), the whole body under `raw`.
pub fn format(content_type: Option<&[u8]>, codec: Codec) -> Format {
    let essence = content_type
        .and_then(|v| std::str::from_utf8(v).ok())
        .map_or("", |v| v.split(';').next().unwrap_or("").trim());
    let is = |name: &str| essence.eq_ignore_ascii_case(name);
    if is("application/x-ndjson")
        || is("application/ndjson")
        || is("application/jsonl")
        || is("application/x-jsonlines")
    {
        Format::Ndjson
    } else if codec == Codec::Json {
        Format::Json
    } else {
        Format::Whole
    }
}

/// The payloads of the events in `body`. A JSON body that does not parse is an error naming its
/// line and column. NDJSON lines are not parsed here: under `codec: json` a line that is not
/// JSON fails on its own, like any bad event, and the others go on. Blank lines are skipped.
pub fn split(body: &Bytes, format: Format) -> Result<Vec<Bytes>, String> {
    match format {
        Format::Ndjson => Ok(lines(body)),
        Format::Json => json(body).map_err(|e| format!("the body is not JSON: {e}")),
        Format::Whole => Ok(vec![body.clone()]),
    }
}

fn lines(body: &Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len())) {
        let mut line = &body[start..end];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            out.push(body.slice_ref(line));
        }
        start = end + 1;
        if start > body.len() {
            break;
        }
    }
    out
}

fn json(body: &Bytes) -> Result<Vec<Bytes>, serde_json::Error> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let items: Vec<&RawValue> = serde_json::from_slice(body)?;
        return Ok(items
            .into_iter()
            .map(|raw| body.slice_ref(raw.get().as_bytes()))
            .collect());
    }
    let value: &RawValue = serde_json::from_slice(body)?;
    Ok(vec![body.slice_ref(value.get().as_bytes())])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_str(body: &'static str, format: Format) -> Result<Vec<String>, String> {
        let body = Bytes::from_static(body.as_bytes());
        let parts = split(&body, format)?;
        let range = body.as_ptr_range();
        for p in &parts {
            // Every payload is a slice of the body, not a copy.
            assert!(range.contains(&p.as_ptr()) || p.is_empty());
        }
        Ok(parts
            .iter()
            .map(|p| String::from_utf8(p.to_vec()).unwrap())
            .collect())
    }

    #[test]
    fn a_json_array_is_one_event_per_item_and_a_value_is_one_event() {
        assert_eq!(
            split_str(" [ {\"a\": 1} , 2,\"x\" ]\n", Format::Json).unwrap(),
            ["{\"a\": 1}", "2", "\"x\""]
        );
        assert_eq!(
            split_str("\n{\"a\": [1, 2]}  ", Format::Json).unwrap(),
            ["{\"a\": [1, 2]}"]
        );
        assert_eq!(split_str("[]", Format::Json).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn bad_json_names_its_line_and_column() {
        let e = split_str("[{\"a\": 1},\n {\"b\": }]", Format::Json).unwrap_err();
        assert!(e.contains("line 2 column 8"), "{e}");
        let e = split_str("", Format::Json).unwrap_err();
        assert!(e.contains("EOF"), "{e}");
        let e = split_str("{} {}", Format::Json).unwrap_err();
        assert!(e.contains("trailing characters at line 1 column 4"), "{e}");
    }

    #[test]
    fn ndjson_is_one_event_per_non_blank_line_whatever_it_holds() {
        assert_eq!(
            split_str("{\"a\":1}\r\n\n  \nnot json\n{\"b\":2}", Format::Ndjson).unwrap(),
            ["{\"a\":1}", "not json", "{\"b\":2}"]
        );
        assert_eq!(
            split_str("{\"a\":1}\n", Format::Ndjson).unwrap(),
            ["{\"a\":1}"]
        );
        assert_eq!(split_str("", Format::Ndjson).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_content_type_and_codec_choose_the_format() {
        assert_eq!(format(None, Codec::Json), Format::Json);
        let form = Some(&b"application/x-www-form-urlencoded"[..]);
        assert_eq!(format(form, Codec::Json), Format::Json);
        assert_eq!(format(form, Codec::Raw), Format::Whole);
        let ndjson = Some(&b"Application/X-NDJSON; charset=utf-8"[..]);
        assert_eq!(format(ndjson, Codec::Json), Format::Ndjson);
        assert_eq!(format(ndjson, Codec::Raw), Format::Ndjson);
        let body = Bytes::from_static(b"<a>\n</a>");
        assert_eq!(split(&body, Format::Whole).unwrap(), [body]);
    }
}
