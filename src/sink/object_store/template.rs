//! The folder of an event: text with strftime fields of the event's time (UTC) and `{{ jq }}`
//! expressions on the event, as query engines read partitioned data (`dt=2026-11-29/hour=07`).

use jaq_json::Val;

use crate::codec::json::JsonError;
use crate::codec::{Codec, decode};
use crate::event::Event;
use crate::transform::program::{Meta, Program, RunError, compile};

/// A `path` template that cannot be read: the output is not built.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A `{{` that no `}}` closes, in the template.
    #[error("`{{{{` without `}}}}` in {0:?}")]
    Unclosed(String),
    /// An expression that is not jq, and why.
    #[error("jq expression `{code}`: {}", reasons.join("; "))]
    Jq {
        /// The expression.
        code: String,
        /// What the compiler said.
        reasons: Vec<String>,
    },
    /// Text with a strftime field jiff does not know.
    #[error("strftime fields in {text:?}: {error}")]
    Strftime {
        /// The text.
        text: String,
        /// What jiff said.
        error: jiff::Error,
    },
}

/// Why an event has no folder. The output refuses the event for it: it follows the error
/// policy.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The template cannot be read (checked when the output was built, so not expected).
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Writing the event's time failed.
    #[error(transparent)]
    Time(#[from] std::fmt::Error),
    /// The template has an expression and the payload is not JSON.
    #[error("path: the payload is not JSON ({0})")]
    NotJson(JsonError),
    /// An expression failed on the event.
    #[error("path: {0}")]
    Jq(RunError),
    /// An expression gave nothing for the event.
    #[error("path: an expression gave no value")]
    NoValue,
}

/// Renders the template `source` (checked with [`PathTemplate::parse`] when the output was
/// built) for `event` into `out`. jq programs cannot move between threads, so each thread keeps
/// its own parse of each template.
pub fn render(
    source: &str,
    event: &Event,
    now_ms: i64,
    out: &mut String,
) -> Result<(), RenderError> {
    thread_local! {
        static PARSED: std::cell::RefCell<std::collections::HashMap<String, PathTemplate>> =
            Default::default();
    }
    PARSED.with_borrow_mut(|parsed| match parsed.get(source) {
        Some(template) => template.render(event, now_ms, out),
        None => {
            let template = PathTemplate::parse(source)?;
            let rendered = template.render(event, now_ms, out);
            parsed.insert(source.to_string(), template);
            rendered
        }
    })
}

/// A parsed `path` template.
#[derive(Debug, Default)]
pub struct PathTemplate {
    parts: Vec<Part>,
    /// Whether any text part has a strftime field (else the time is not looked at).
    timed: bool,
}

#[derive(Debug)]
enum Part {
    /// Text, with strftime fields when `timed`.
    Text { text: String, timed: bool },
    /// A jq expression; its first output is the text.
    Jq(Program),
}

impl PathTemplate {
    /// Parses `template`; the error says what is wrong.
    pub fn parse(template: &str) -> Result<PathTemplate, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = template.trim_matches('/');
        while !rest.is_empty() {
            let (text, after) = match rest.find("{{") {
                Some(i) => (&rest[..i], Some(&rest[i + 2..])),
                None => (rest, None),
            };
            if !text.is_empty() {
                parts.push(text_part(text)?);
            }
            let Some(after) = after else { break };
            let end = after
                .find("}}")
                .ok_or_else(|| TemplateError::Unclosed(template.to_string()))?;
            let code = after[..end].trim();
            let program = compile(code).map_err(|errors| TemplateError::Jq {
                code: code.to_string(),
                reasons: errors.into_iter().map(|e| e.message).collect(),
            })?;
            parts.push(Part::Jq(program));
            rest = &after[end + 2..];
        }
        let timed = parts
            .iter()
            .any(|p| matches!(p, Part::Text { timed: true, .. }));
        Ok(PathTemplate { parts, timed })
    }

    /// Whether the folder depends on the event's payload (a jq expression).
    pub fn reads_payload(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Jq(_)))
    }

    /// The folder of `event`, written into `out`; the error says why it has none (the payload is
    /// not JSON, an expression failed or gave nothing).
    pub fn render(&self, event: &Event, now_ms: i64, out: &mut String) -> Result<(), RenderError> {
        use std::fmt::Write;
        out.clear();
        let time = match self.timed {
            true => Some(timestamp(event.timestamp.unwrap_or(now_ms))),
            false => None,
        };
        let mut payload: Option<Val> = None;
        for part in &self.parts {
            match (part, &time) {
                (Part::Text { text, timed: true }, Some(t)) => {
                    write!(out, "{}", t.strftime(text))?;
                }
                (Part::Text { text, .. }, _) => out.push_str(text),
                (Part::Jq(program), _) => {
                    let input = match &payload {
                        Some(v) => v.clone(),
                        None => {
                            let v = decode(Codec::Json, &event.payload)
                                .map_err(RenderError::NotJson)?;
                            payload.insert(v).clone()
                        }
                    };
                    let meta = Meta {
                        key: event.key.as_deref(),
                        headers: &event.headers,
                        timestamp: event.timestamp,
                        source: &event.position,
                    };
                    let value = program
                        .first(input, &meta)
                        .map_err(RenderError::Jq)?
                        .ok_or(RenderError::NoValue)?;
                    push_value(out, &value);
                }
            }
        }
        Ok(())
    }
}

fn text_part(text: &str) -> Result<Part, TemplateError> {
    let timed = text.contains('%');
    if timed {
        // Every field must be one jiff knows: checked once, on a sample time.
        jiff::fmt::strtime::format(text, jiff::Timestamp::UNIX_EPOCH).map_err(|error| {
            TemplateError::Strftime {
                text: text.to_string(),
                error,
            }
        })?;
    }
    Ok(Part::Text {
        text: text.to_string(),
        timed,
    })
}

fn timestamp(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// A value as folder text: a string as it is, anything else as JSON; `/` becomes `_` so that a
/// value is one folder level.
fn push_value(out: &mut String, value: &Val) {
    let text = match value {
        Val::TStr(s) => String::from_utf8_lossy(s).into_owned(),
        other => other.to_string(),
    };
    out.extend(text.chars().map(|c| if c == '/' { '_' } else { c }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Ack;
    use crate::event::Position;

    fn event(payload: &'static str, timestamp: Option<i64>) -> Event {
        let mut e = Event::new(
            bytes::Bytes::from_static(payload.as_bytes()),
            Position::Generated { seq: 0 },
            Ack::untracked(),
        );
        e.timestamp = timestamp;
        e
    }

    fn render(template: &str, e: &Event) -> Result<String, RenderError> {
        let mut out = String::new();
        PathTemplate::parse(template)?.render(e, 0, &mut out)?;
        Ok(out)
    }

    #[test]
    fn time_fields_and_jq_expressions_make_the_folder() {
        // 2026-11-29T07:05:09Z
        let e = event(r#"{"service":"check/out","n":3}"#, Some(1_795_935_909_000));
        let folder = render("/dt=%Y-%m-%d/hour=%H/service={{ .service }}/n={{.n}}/", &e);
        assert_eq!(
            folder.unwrap(),
            "dt=2026-11-29/hour=07/service=check_out/n=3"
        );
        assert_eq!(render("plain", &e).unwrap(), "plain");
        assert_eq!(render("", &e).unwrap(), "");
    }

    #[test]
    fn an_event_without_a_time_takes_the_time_it_is_written() {
        let e = event("{}", None);
        let mut out = String::new();
        let t = PathTemplate::parse("%Y").unwrap();
        t.render(&e, 1_795_935_909_000, &mut out).unwrap();
        assert_eq!(out, "2026");
    }

    #[test]
    fn bad_templates_and_bad_events_say_why() {
        let bad = |template: &str| PathTemplate::parse(template).unwrap_err().to_string();
        assert!(bad("{{ .a").contains("without"));
        assert!(bad("{{ .a | }}").contains("jq expression"));
        assert!(bad("dt=%").contains("strftime"));
        let why = |template: &str, payload| {
            let e = event(payload, Some(0));
            render(template, &e).unwrap_err().to_string()
        };
        assert!(why("{{ .a }}", "not json").contains("not JSON"));
        assert!(why("{{ empty }}", "{}").contains("no value"));
    }
}
