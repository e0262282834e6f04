//! The `route` step: choose output topic/subject, key, partition, timestamp and headers per event.

use std::sync::Arc;

use bytes::Bytes;
use indexmap::IndexMap;
use jaq_json::Val;
use marked_yaml::Spanned;
use serde::Deserialize;

use super::error::{CompileErrors, Field, RouteError, TransformError};
use super::program::Program;
use super::step::{Record, Transform, check_program, compile_or_describe};
use crate::codec::write_json;
use crate::config::Validator;
use crate::event::Position;

/// Each field is a jq expression evaluated on the event (payload as `.`, metadata as `$key`,
/// `$headers`, `$timestamp`, `$source`); its first output is used. All expressions see the event
/// as it was before this step. A `null` result clears the field.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Output topic (Kafka) or subject (NATS): must give a string.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub destination: Option<Spanned<String>>,
    /// Message key: a string, or a number (written as JSON text).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub key: Option<Spanned<String>>,
    /// Output partition (Kafka): a non-negative integer.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub partition: Option<Spanned<String>>,
    /// Event time: milliseconds since the epoch, or an RFC 3339 string.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub timestamp: Option<Spanned<String>>,
    /// Headers to set, by name: a string (numbers and booleans as JSON text); `null` removes the
    /// header.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, String>")]
    pub headers: IndexMap<String, Spanned<String>>,
    /// A name for this step in errors, dead-letter headers and metrics.
    #[serde(default)]
    pub name: Option<String>,
}

impl RouteConfig {
    fn programs(&self) -> impl Iterator<Item = &Spanned<String>> {
        [
            &self.destination,
            &self.key,
            &self.partition,
            &self.timestamp,
        ]
        .into_iter()
        .flatten()
        .chain(self.headers.values())
    }

    /// Compiles every expression, reporting errors at their place.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        if self.programs().next().is_none() {
            v.error_at(path, "route sets nothing: give at least one of destination, key, partition, timestamp, headers");
        }
        for p in self.programs() {
            check_program(p, v);
        }
    }
}

/// Compiled route step.
pub struct Route {
    destination: Option<Program>,
    key: Option<Program>,
    partition: Option<Program>,
    timestamp: Option<Program>,
    headers: Vec<(String, Program)>,
}

impl Route {
    /// Compiles every expression of the config.
    pub fn new(config: &RouteConfig) -> Result<Self, CompileErrors> {
        let compile =
            |p: &Option<Spanned<String>>| p.as_ref().map(|p| compile_or_describe(p)).transpose();
        Ok(Route {
            destination: compile(&config.destination)?,
            key: compile(&config.key)?,
            partition: compile(&config.partition)?,
            timestamp: compile(&config.timestamp)?,
            headers: config
                .headers
                .iter()
                .map(|(name, p)| Ok((name.clone(), compile_or_describe(p)?)))
                .collect::<Result<_, CompileErrors>>()?,
        })
    }

    /// Every expression's value on the event as it came in (before any field is set).
    fn evaluate<'a>(
        &'a self,
        record: &Record,
        source: &Position,
    ) -> Result<Values<'a>, RouteError> {
        let field = |p: &Option<Program>, field: Field| {
            p.as_ref()
                .map(|p| eval(p, record, source, || field))
                .transpose()
        };
        Ok(Values {
            destination: field(&self.destination, Field::Destination)?,
            key: field(&self.key, Field::Key)?,
            partition: field(&self.partition, Field::Partition)?,
            timestamp: field(&self.timestamp, Field::Timestamp)?,
            headers: self
                .headers
                .iter()
                .map(|(name, p)| Ok((name, eval(p, record, source, || header(name))?)))
                .collect::<Result<_, RouteError>>()?,
        })
    }
}

/// The values a route's expressions gave for one event; `None` for a field it does not set.
struct Values<'a> {
    destination: Option<Val>,
    key: Option<Val>,
    partition: Option<Val>,
    timestamp: Option<Val>,
    headers: Vec<(&'a String, Val)>,
}

fn header(name: &str) -> Field {
    Field::Header(name.to_string())
}

/// The first output of `p` on the record; `field` names it in errors (built only for one).
fn eval(
    p: &Program,
    record: &Record,
    source: &Position,
    field: impl FnOnce() -> Field,
) -> Result<Val, RouteError> {
    match p.first(record.value.clone(), &record.meta(source)) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(RouteError::NoValue { field: field() }),
        Err(source) => Err(RouteError::Failed {
            field: field(),
            source,
        }),
    }
}

/// A key or header value; `field` names it in errors (built only for one).
fn text(v: &Val, field: impl FnOnce() -> Field) -> Result<Option<Bytes>, RouteError> {
    match v {
        Val::Null => Ok(None),
        Val::TStr(s) | Val::BStr(s) => Ok(Some(Bytes::copy_from_slice(s))),
        Val::Num(_) | Val::Bool(_) => {
            let mut b = Vec::new();
            write_json(v, &mut b, 0).map_err(|source| RouteError::Unwritable {
                field: field(),
                source,
            })?;
            Ok(Some(b.into()))
        }
        _ => Err(RouteError::NotText {
            field: field(),
            got: kind(v),
        }),
    }
}

fn kind(v: &Val) -> &'static str {
    match v {
        Val::Null => "null",
        Val::Bool(_) => "boolean",
        Val::Num(_) => "number",
        Val::TStr(_) | Val::BStr(_) => "string",
        Val::Arr(_) => "array",
        Val::Obj(_) => "object",
    }
}

fn integer(v: &Val, field: Field) -> Result<Option<i64>, RouteError> {
    let got = match v {
        Val::Null => return Ok(None),
        Val::Num(n) => match n.as_isize() {
            Some(i) => return Ok(Some(i as i64)),
            None => n.to_string(),
        },
        _ => kind(v).to_string(),
    };
    Err(RouteError::NotInteger { field, got })
}

fn destination(v: Val) -> Result<Option<Arc<str>>, RouteError> {
    match v {
        Val::Null => Ok(None),
        Val::TStr(s) => Ok(Some(Arc::from(String::from_utf8_lossy(&s).as_ref()))),
        other => Err(RouteError::NotString { got: kind(&other) }),
    }
}

fn partition(v: &Val) -> Result<Option<i32>, RouteError> {
    match integer(v, Field::Partition)? {
        None => Ok(None),
        Some(p) if (0..=i32::MAX as i64).contains(&p) => Ok(Some(p as i32)),
        Some(got) => Err(RouteError::PartitionRange { got }),
    }
}

/// Milliseconds since the epoch from an RFC 3339 string, an integer, or a number jq holds as a
/// float (cut to whole milliseconds).
fn timestamp(v: &Val) -> Result<Option<i64>, RouteError> {
    match v {
        Val::TStr(s) => {
            let text = String::from_utf8_lossy(s);
            match text.parse::<jiff::Timestamp>() {
                Ok(ts) => Ok(Some(ts.as_millisecond())),
                Err(e) => Err(RouteError::NotTime {
                    reason: e.to_string(),
                    text: text.into_owned(),
                }),
            }
        }
        Val::Num(n) if n.as_isize().is_none() => match n.to_string().parse::<f64>() {
            Ok(f) => Ok(Some(f as i64)),
            Err(_) => Err(RouteError::NotNumber { got: n.to_string() }),
        },
        other => integer(other, Field::Timestamp),
    }
}

impl Transform for Route {
    fn apply(
        &self,
        mut record: Record,
        source: &Position,
        out: &mut Vec<Record>,
    ) -> Result<(), TransformError> {
        let values = self.evaluate(&record, source)?;
        if let Some(v) = values.destination {
            record.destination = destination(v)?;
        }
        if let Some(v) = values.key {
            record.key = text(&v, || Field::Key)?;
        }
        if let Some(v) = values.partition {
            record.partition = partition(&v)?;
        }
        if let Some(v) = values.timestamp {
            record.timestamp = timestamp(&v)?;
        }
        for (name, v) in values.headers {
            let value = text(&v, || header(name))?;
            record.headers.retain(|(n, _)| n != name);
            if let Some(value) = value {
                record.headers.push((name.clone(), value));
            }
        }
        out.push(record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::json_record;

    fn spanned(s: &str) -> Spanned<String> {
        Spanned::new(marked_yaml::Span::new_blank(), s.to_string())
    }

    fn route(cfg: RouteConfig, json: &str) -> Result<Record, TransformError> {
        let step = Route::new(&cfg).unwrap();
        let rec = Record {
            key: Some(Bytes::from_static(b"old")),
            headers: vec![
                ("keep".into(), Bytes::from_static(b"1")),
                ("drop".into(), Bytes::from_static(b"2")),
            ],
            ..json_record(json)
        };
        let mut out = Vec::new();
        step.apply(rec, &Position::Generated { seq: 0 }, &mut out)?;
        Ok(out.pop().unwrap())
    }

    fn cfg() -> RouteConfig {
        RouteConfig {
            destination: None,
            key: None,
            partition: None,
            timestamp: None,
            headers: IndexMap::new(),
            name: None,
        }
    }

    #[test]
    fn sets_every_field_from_content() {
        let mut c = cfg();
        c.destination = Some(spanned(r#""orders." + .region"#));
        c.key = Some(spanned(".customer"));
        c.partition = Some(spanned(".shard"));
        c.timestamp = Some(spanned(".at"));
        c.headers.insert("x-type".into(), spanned(".type"));
        c.headers.insert("drop".into(), spanned("null"));
        c.headers.insert("x-old-key".into(), spanned("$key"));
        let r = route(
            c,
            r#"{"region":"eu","customer":42,"shard":3,"at":"2024-01-02T03:04:05Z","type":"order"}"#,
        )
        .unwrap();
        assert_eq!(r.destination.as_deref(), Some("orders.eu"));
        assert_eq!(r.key.as_deref(), Some(&b"42"[..]));
        assert_eq!(r.partition, Some(3));
        assert_eq!(r.timestamp, Some(1704164645000));
        let headers: Vec<(&str, &[u8])> = r
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), &v[..]))
            .collect();
        assert_eq!(
            headers,
            vec![
                ("keep", &b"1"[..]),
                ("x-type", b"order"),
                ("x-old-key", b"old")
            ]
        );
    }

    #[test]
    fn wrong_types_are_errors() {
        let mut c = cfg();
        c.destination = Some(spanned(".n"));
        assert!(
            route(c, r#"{"n":1}"#)
                .unwrap_err()
                .to_string()
                .contains("destination must be a string")
        );
        let mut c = cfg();
        c.partition = Some(spanned("-1"));
        assert!(
            route(c, "{}")
                .unwrap_err()
                .to_string()
                .contains("partition must be between")
        );
        let mut c = cfg();
        c.key = Some(spanned("empty"));
        let err = route(c, "{}").unwrap_err().to_string();
        assert!(err.contains("produced no value"), "{err}");
    }
}
