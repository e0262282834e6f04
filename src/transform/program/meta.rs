//! The metadata of an event as the variables of a jq program (`$key`, `$headers`, `$timestamp`,
//! `$source`), built only for the variables a program mentions.

use jaq_json::Val;

use crate::event::{Headers, Position};

/// Event metadata a program can read through its variables.
pub struct Meta<'a> {
    /// The event's key.
    pub key: Option<&'a [u8]>,
    /// The event's headers.
    pub headers: &'a Headers,
    /// The event's timestamp in milliseconds.
    pub timestamp: Option<i64>,
    /// Where the input was read.
    pub source: &'a Position,
}

fn bytes_val(b: &[u8]) -> Val {
    match std::str::from_utf8(b) {
        Ok(_) => Val::utf8_str(bytes::Bytes::copy_from_slice(b)),
        Err(_) => Val::byte_str(bytes::Bytes::copy_from_slice(b)),
    }
}

fn str_val(s: &str) -> Val {
    Val::from(s.to_string())
}

fn obj(fields: impl IntoIterator<Item = (&'static str, Val)>) -> Val {
    Val::obj(fields.into_iter().map(|(k, v)| (str_val(k), v)).collect())
}

fn int_val(i: i64) -> Val {
    Val::Num(jaq_json::Num::from_integral(i))
}

impl Meta<'_> {
    /// The values of the variables, in the order of `GLOBALS`; those not in `uses` are null.
    pub(super) fn values(&self, uses: &[bool; 4]) -> [Val; 4] {
        let key = || self.key.map_or(Val::Null, bytes_val);
        let headers = || {
            Val::obj(
                self.headers
                    .iter()
                    .map(|(n, v)| (str_val(n), bytes_val(v)))
                    .collect(),
            )
        };
        let timestamp = || self.timestamp.map_or(Val::Null, int_val);
        let source = || match self.source {
            Position::Generated { seq } => {
                obj([("kind", str_val("generate")), ("seq", int_val(*seq as i64))])
            }
            Position::Line { source, line } => obj([
                ("kind", str_val("line")),
                ("file", str_val(source)),
                ("line", int_val(*line as i64)),
            ]),
            Position::Kafka {
                topic,
                partition,
                offset,
            } => obj([
                ("kind", str_val("kafka")),
                ("topic", str_val(topic)),
                ("partition", int_val(*partition as i64)),
                ("offset", int_val(*offset)),
            ]),
            Position::Nats { subject, stream } => {
                let mut fields = vec![("kind", str_val("nats")), ("subject", str_val(subject))];
                if let Some((stream, seq)) = stream {
                    fields[0].1 = str_val("jetstream");
                    fields.push(("stream", str_val(stream)));
                    fields.push(("sequence", int_val(*seq as i64)));
                }
                obj(fields)
            }
            Position::Request {
                source,
                request,
                index,
            } => obj([
                ("kind", str_val(source)),
                ("request", str_val(request)),
                ("index", int_val(i64::from(*index))),
            ]),
        };
        let pick = |i: usize, f: &dyn Fn() -> Val| if uses[i] { f() } else { Val::Null };
        [
            pick(0, &key),
            pick(1, &headers),
            pick(2, &timestamp),
            pick(3, &source),
        ]
    }
}
