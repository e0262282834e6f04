//! The `route` step: choose output topic/subject, key, partition, timestamp and headers per event.

use std::sync::Arc;

use bytes::Bytes;
use indexmap::IndexMap;
use jaq_json::Val;
use marked_yaml::Spanned;
use serde::Deserialize;

use super::program::Program;
use super::{Record, Transform, check_program, compile_or_describe};
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
    pub fn new(config: &RouteConfig) -> Result<Self, String> {
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
                .collect::<Result<_, String>>()?,
        })
    }
}

fn eval(p: &Program, record: &Record, source: &Position, what: &str) -> Result<Val, String> {
    p.first(record.value.clone(), &record.meta(source))
        .map_err(|e| format!("{what}: {}", e.0))?
        .ok_or_else(|| format!("{what}: the expression produced no value"))
}

fn text(v: &Val, what: &str) -> Result<Option<Bytes>, String> {
    match v {
        Val::Null => Ok(None),
        Val::TStr(s) | Val::BStr(s) => Ok(Some(Bytes::copy_from_slice(s))),
        Val::Num(_) | Val::Bool(_) => {
            let mut b = Vec::new();
            write_json(v, &mut b, 0).map_err(|e| format!("{what}: {e}"))?;
            Ok(Some(b.into()))
        }
        _ => Err(format!(
            "{what} must be a string, number, boolean or null, got {}",
            kind(v)
        )),
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

fn integer(v: &Val, what: &str) -> Result<Option<i64>, String> {
    match v {
        Val::Null => Ok(None),
        Val::Num(n) => match n.as_isize() {
            Some(i) => Ok(Some(i as i64)),
            None => Err(format!("{what} must be an integer, got {n}")),
        },
        _ => Err(format!("{what} must be an integer, got {}", kind(v))),
    }
}

impl Transform for Route {
    fn apply(
        &self,
        mut record: Record,
        source: &Position,
        out: &mut Vec<Record>,
    ) -> Result<(), String> {
        let destination = self
            .destination
            .as_ref()
            .map(|p| eval(p, &record, source, "destination"))
            .transpose()?;
        let key = self
            .key
            .as_ref()
            .map(|p| eval(p, &record, source, "key"))
            .transpose()?;
        let partition = self
            .partition
            .as_ref()
            .map(|p| eval(p, &record, source, "partition"))
            .transpose()?;
        let timestamp = self
            .timestamp
            .as_ref()
            .map(|p| eval(p, &record, source, "timestamp"))
            .transpose()?;
        let headers = self
            .headers
            .iter()
            .map(|(name, p)| Ok((name, eval(p, &record, source, &format!("header `{name}`"))?)))
            .collect::<Result<Vec<_>, String>>()?;

        if let Some(v) = destination {
            record.destination = match v {
                Val::Null => None,
                Val::TStr(s) => Some(Arc::from(String::from_utf8_lossy(&s).as_ref())),
                other => {
                    return Err(format!(
                        "destination must be a string, got {}",
                        kind(&other)
                    ));
                }
            };
        }
        if let Some(v) = key {
            record.key = text(&v, "key")?;
        }
        if let Some(v) = partition {
            record.partition = match integer(&v, "partition")? {
                None => None,
                Some(p) if (0..=i32::MAX as i64).contains(&p) => Some(p as i32),
                Some(p) => {
                    return Err(format!(
                        "partition must be between 0 and {}, got {p}",
                        i32::MAX
                    ));
                }
            };
        }
        if let Some(v) = timestamp {
            record.timestamp = match &v {
                Val::TStr(s) => {
                    let s = String::from_utf8_lossy(s);
                    let ts: jiff::Timestamp = s
                        .parse()
                        .map_err(|e| format!("timestamp `{s}` is not an RFC 3339 time: {e}"))?;
                    Some(ts.as_millisecond())
                }
                Val::Num(n) if n.as_isize().is_none() => {
                    let f: f64 = n
                        .to_string()
                        .parse()
                        .map_err(|_| format!("timestamp must be a number, got {n}"))?;
                    Some(f as i64)
                }
                other => integer(other, "timestamp")?,
            };
        }
        for (name, v) in headers {
            let value = text(&v, &format!("header `{name}`"))?;
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

    fn route(cfg: RouteConfig, json: &str) -> Result<Record, String> {
        let step = Route::new(&cfg)?;
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
                .contains("destination must be a string")
        );
        let mut c = cfg();
        c.partition = Some(spanned("-1"));
        assert!(
            route(c, "{}")
                .unwrap_err()
                .contains("partition must be between")
        );
        let mut c = cfg();
        c.key = Some(spanned("empty"));
        assert!(route(c, "{}").unwrap_err().contains("produced no value"));
    }
}
