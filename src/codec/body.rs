//! A request body cut into the payloads of its events, without copying them: one JSON value, the
//! items of a JSON array, the lines of NDJSON, or (`codec: raw`) the whole body.

use std::cell::Cell;

use bytes::Bytes;
use serde::Deserializer;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
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

/// Why a body was not cut into events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// A JSON body that does not parse.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// More events than a request may hold.
    #[error("the body holds more than max_events_per_request ({0}) events")]
    TooMany(usize),
}

/// The payloads of the events in `body`, at most `max_events` of them. A JSON body that does not
/// parse is an error naming its line and column. NDJSON lines are not parsed here: under
/// `codec: json` a line that is not JSON fails on its own, like any bad event, and the others go
/// on. Blank lines are skipped. A body of more than `max_events` events is refused before their
/// payloads are gathered.
pub fn split(body: &Bytes, format: Format, max_events: usize) -> Result<Vec<Bytes>, SplitError> {
    match format {
        Format::Ndjson => lines(body, max_events),
        Format::Json => json(body, max_events),
        Format::Whole => Ok(vec![body.clone()]),
    }
}

fn lines(body: &Bytes, max_events: usize) -> Result<Vec<Bytes>, SplitError> {
    let mut out = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len())) {
        let mut line = &body[start..end];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            if out.len() == max_events {
                return Err(SplitError::TooMany(max_events));
            }
            out.push(body.slice_ref(line));
        }
        start = end + 1;
        if start > body.len() {
            break;
        }
    }
    Ok(out)
}

fn json(body: &Bytes, max_events: usize) -> Result<Vec<Bytes>, SplitError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let over = Cell::new(false);
        let mut de = serde_json::Deserializer::from_slice(body);
        let seed = Items {
            body,
            max_events,
            over: &over,
        };
        let items = seed.deserialize(&mut de).and_then(|items| {
            de.end()?;
            Ok(items)
        });
        return match items {
            Err(_) if over.get() => Err(SplitError::TooMany(max_events)),
            other => other.map_err(|e| SplitError::NotJson(e.to_string())),
        };
    }
    let value: &RawValue =
        serde_json::from_slice(body).map_err(|e| SplitError::NotJson(e.to_string()))?;
    if max_events == 0 {
        return Err(SplitError::TooMany(max_events));
    }
    Ok(vec![body.slice_ref(value.get().as_bytes())])
}

/// The items of a JSON array as slices of the body, stopping at the first one past
/// `max_events` (and saying so in `over`) rather than gathering them all.
struct Items<'a> {
    body: &'a Bytes,
    max_events: usize,
    over: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = Vec<Bytes>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Items<'_> {
    type Value = Vec<Bytes>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if out.len() == self.max_events {
                self.over.set(true);
                return Err(serde::de::Error::custom("too many events"));
            }
            out.push(self.body.slice_ref(item.get().as_bytes()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_str(body: &'static str, format: Format) -> Result<Vec<String>, SplitError> {
        let body = Bytes::from_static(body.as_bytes());
        let parts = split(&body, format, 10)?;
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
        let e = split_str("[{\"a\": 1},\n {\"b\": }]", Format::Json)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2 column 8"), "{e}");
        let e = split_str("", Format::Json).unwrap_err().to_string();
        assert!(e.contains("EOF"), "{e}");
        let e = split_str("{} {}", Format::Json).unwrap_err().to_string();
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
    fn a_body_of_more_events_than_the_limit_is_refused() {
        let body = Bytes::from_static(b"1\n\n2\n3\n");
        assert_eq!(split(&body, Format::Ndjson, 3).unwrap().len(), 3);
        assert_eq!(split(&body, Format::Ndjson, 2), Err(SplitError::TooMany(2)));
        let body = Bytes::from_static(b"[1, 2, 3]");
        assert_eq!(split(&body, Format::Json, 3).unwrap().len(), 3);
        assert_eq!(split(&body, Format::Json, 2), Err(SplitError::TooMany(2)));
        // Refused at the first item past the limit, whatever comes after it.
        let body = Bytes::from_static(b"[1, 2, 3, oops");
        assert_eq!(split(&body, Format::Json, 2), Err(SplitError::TooMany(2)));
        let body = Bytes::from_static(b"[1, 2, oops");
        assert!(matches!(
            split(&body, Format::Json, 5),
            Err(SplitError::NotJson(_))
        ));
        let body = Bytes::from_static(b"[1] x");
        assert!(matches!(
            split(&body, Format::Json, 5),
            Err(SplitError::NotJson(e)) if e.contains("trailing characters")
        ));
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
        assert_eq!(split(&body, Format::Whole, 1).unwrap(), [body]);
    }
}
