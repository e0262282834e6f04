//! Checking an event that came out against what a test case expects of it.

use bytes::Bytes;
use serde_json::Value;

use crate::codec::{self, Codec};
use crate::event::{Event, Position};
use crate::pipeline::cases::Expected;
use crate::transform::program::{self, Meta};

/// One way an event differs from what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Which field, and how (`payload differs`).
    pub what: String,
    /// What was expected, as shown to the user (pretty JSON, or text).
    pub expected: String,
    /// What came out, shown the same way.
    pub actual: String,
}

/// An event as a test sees it: what the output (or the error policy) received.
pub struct Seen<'a> {
    /// The event.
    pub event: &'a Event,
    /// For a dead letter: the failed step, as the `sluice-error-step` header says it.
    pub step: Option<String>,
    /// For a dead letter: the failure reason.
    pub reason: Option<String>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The payload as JSON, or None when it is not JSON.
fn json(payload: &[u8]) -> Option<Value> {
    serde_json::from_slice(payload).ok()
}

/// JSON as shown in a report: pretty, keys in their order.
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// The payload as shown in a report: pretty JSON, or its text.
pub fn shown(payload: &[u8]) -> String {
    json(payload).map_or_else(|| text(payload), |v| pretty(&v))
}

/// Equal JSON, numbers compared by value (`1` equals `1.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Whether `actual` contains `expected`: an object every key of it (with contained values), an
/// array each of its items (each contained by some item), anything else an equal value.
pub fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|w| contains(w, v))),
        (Value::Array(a), Value::Array(e)) => e
            .iter()
            .all(|item| a.iter().any(|have| contains(have, item))),
        _ => json_eq(actual, expected),
    }
}

/// Every way `seen` differs from `expected`; empty when it matches.
pub fn check(expected: &Expected, seen: &Seen<'_>) -> Vec<Mismatch> {
    let event = seen.event;
    let mut found = Vec::new();
    let mut differs = |what: &str, expected: String, actual: String| {
        found.push(Mismatch {
            what: what.to_string(),
            expected,
            actual,
        })
    };
    let actual_json = json(&event.payload);
    if let Some(want) = &expected.payload
        && !actual_json.as_ref().is_some_and(|have| json_eq(have, want))
    {
        differs("payload differs", pretty(want), shown(&event.payload));
    }
    if let Some(want) = &expected.payload_contains
        && !actual_json
            .as_ref()
            .is_some_and(|have| contains(have, want))
    {
        differs(
            "payload does not contain what was expected",
            pretty(want),
            shown(&event.payload),
        );
    }
    if let Some(want) = &expected.payload_text
        && want.as_bytes() != &event.payload[..]
    {
        differs("payload text differs", want.clone(), text(&event.payload));
    }
    check_metadata(expected, seen, &mut differs);
    if let Some(code) = &expected.assert
        && let Err(result) = holds(code, event)
    {
        differs(
            &format!("assert `{code}` does not hold"),
            "true".to_string(),
            result.to_string(),
        );
    }
    found
}

/// The key, headers, routing fields and timestamp, and a dead letter's step and reason.
fn check_metadata(
    expected: &Expected,
    seen: &Seen<'_>,
    differs: &mut impl FnMut(&str, String, String),
) {
    let event = seen.event;
    let key = event.key.as_deref().map(text);
    if let Some(want) = &expected.key
        && key.as_deref() != Some(want.as_str())
    {
        differs("key differs", want.clone(), shown_option(key));
    }
    for (name, want) in &expected.headers {
        let have = event
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| text(v));
        if have.as_deref() != Some(want.as_str()) {
            differs(
                &format!("header {name} differs"),
                want.clone(),
                shown_option(have),
            );
        }
    }
    if let Some(want) = &expected.destination
        && event.destination.as_deref() != Some(want.as_str())
    {
        let have = event.destination.as_deref().map(str::to_string);
        differs("destination differs", want.clone(), shown_option(have));
    }
    if let Some(want) = expected.partition
        && event.partition != Some(want)
    {
        let have = event.partition.map(|p| p.to_string());
        differs("partition differs", want.to_string(), shown_option(have));
    }
    if let Some(want) = expected.timestamp
        && event.timestamp != Some(want)
    {
        let have = event.timestamp.map(|t| t.to_string());
        differs("timestamp differs", want.to_string(), shown_option(have));
    }
    if let Some(want) = &expected.step
        && seen.step.as_deref() != Some(want.as_str())
    {
        differs(
            "step differs",
            want.clone(),
            shown_option(seen.step.clone()),
        );
    }
    if let Some(want) = &expected.reason_contains
        && !seen
            .reason
            .as_deref()
            .is_some_and(|r| r.contains(want.as_str()))
    {
        differs(
            "reason does not contain what was expected",
            want.clone(),
            shown_option(seen.reason.clone()),
        );
    }
}

fn shown_option(value: Option<String>) -> String {
    value.unwrap_or_else(|| "(none)".to_string())
}

/// What an `assert` program gave instead of `true`, shown as the actual value.
#[derive(Debug, thiserror::Error)]
enum NotTrue {
    /// The program does not compile: its messages.
    #[error("{}", .0.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; "))]
    Compile(Vec<program::CompileError>),
    /// The payload could not be read.
    #[error(transparent)]
    Payload(#[from] codec::json::JsonError),
    /// Another value, as jq shows it.
    #[error("{0}")]
    Value(jaq_json::Val),
    /// No value at all.
    #[error("no value")]
    NoValue,
    /// The program failed.
    #[error("error: {0}")]
    Failed(#[from] program::RunError),
}

/// Runs the jq program `code` on the event's payload (JSON, or else its text); Err with what it
/// gave instead of `true`.
fn holds(code: &str, event: &Event) -> Result<(), NotTrue> {
    let program = program::compile(code).map_err(NotTrue::Compile)?;
    let payload = Bytes::clone(&event.payload);
    let input =
        codec::decode(Codec::Json, &payload).or_else(|_| codec::decode(Codec::Raw, &payload))?;
    let meta = Meta {
        key: event.key.as_deref(),
        headers: &event.headers,
        timestamp: event.timestamp,
        source: &event.position,
    };
    match program.first(input, &meta) {
        Ok(Some(v)) if v == jaq_json::Val::from(true) => Ok(()),
        Ok(Some(v)) => Err(NotTrue::Value(v)),
        Ok(None) => Err(NotTrue::NoValue),
        Err(e) => Err(NotTrue::Failed(e)),
    }
}

/// A line-by-line diff of `expected` and `actual`: `-` lines expected only, `+` lines produced
/// only, coloured when `color`.
pub fn diff(expected: &str, actual: &str, color: bool) -> String {
    let mut out = String::new();
    let (red, green, reset) = if color {
        ("\x1b[31m", "\x1b[32m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    for change in similar::TextDiff::from_lines(expected, actual).iter_all_changes() {
        let line = change.value().trim_end_matches('\n');
        match change.tag() {
            similar::ChangeTag::Delete => out.push_str(&format!("{red}- {line}{reset}\n")),
            similar::ChangeTag::Insert => out.push_str(&format!("{green}+ {line}{reset}\n")),
            similar::ChangeTag::Equal => out.push_str(&format!("  {line}\n")),
        }
    }
    out
}

/// A `Position` for a test event: where the case says it was read, or its line in the test.
pub fn position(source: Option<&crate::pipeline::cases::TestSource>, index: usize) -> Position {
    use crate::pipeline::cases::TestSource;
    match source {
        None => Position::Line {
            source: "test".into(),
            line: index as u64 + 1,
        },
        Some(TestSource::Kafka {
            topic,
            partition,
            offset,
        }) => Position::Kafka {
            topic: topic.as_str().into(),
            partition: *partition,
            offset: *offset,
        },
        Some(TestSource::Nats { subject }) => Position::Nats {
            subject: subject.as_str().into(),
            stream: None,
        },
        Some(TestSource::Jetstream {
            stream,
            subject,
            sequence,
        }) => Position::Nats {
            subject: subject.as_str().into(),
            stream: Some((stream.as_str().into(), *sequence)),
        },
        Some(TestSource::File { path, line }) => Position::Line {
            source: path.as_str().into(),
            line: *line,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value_and_containment_allows_more() {
        assert!(json_eq(
            &json!({"a": 1, "b": [2.0]}),
            &json!({"b": [2], "a": 1.0})
        ));
        assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        let have = json!({"a": 1, "b": {"c": [1, 2, {"d": 3, "e": 4}]}});
        assert!(contains(&have, &json!({"b": {"c": [{"d": 3}, 1]}})));
        assert!(!contains(&have, &json!({"b": {"c": [5]}})));
        assert!(!contains(&have, &json!({"z": null})));
    }

    #[test]
    fn a_diff_marks_what_was_expected_and_what_came_out() {
        let d = diff("{\n  \"a\": 1\n}\n", "{\n  \"a\": 2\n}\n", false);
        assert_eq!(d, "  {\n-   \"a\": 1\n+   \"a\": 2\n  }\n");
    }
}
