//! apache-avro's values as jq values (what [`super::AvroSchema::decode`] reads through
//! apache-avro, when the body is not read straight into jq values).

use std::collections::HashMap;

use apache_avro::schema::{Name, RecordSchema, Schema};
use apache_avro::types::Value;
use jaq_json::{Num, Val};
use num_bigint::BigInt;

use crate::codec::value::{fit, time};

/// Values of a schema with these named types.
pub(super) struct ToVal<'a> {
    pub(super) named: &'a HashMap<Name, Schema>,
}

impl ToVal<'_> {
    /// An Avro value of `schema` as a jq value.
    pub(super) fn val(&self, value: Value, schema: &Schema) -> Val {
        let schema = match schema {
            Schema::Ref { name } => self.named.get(name).unwrap_or(schema),
            s => s,
        };
        match value {
            Value::Null => Val::Null,
            Value::Boolean(b) => Val::Bool(b),
            Value::Int(i) => Val::Num(Num::Int(i as isize)),
            Value::Long(i) => Val::Num(Num::from_integral(i)),
            Value::Float(f) => fit::float_val(f as f64),
            Value::Double(f) => fit::float_val(f),
            Value::Bytes(b) | Value::Fixed(_, b) => fit::base64_val(&b),
            Value::String(s) | Value::Enum(_, s) => text(s),
            Value::Union(i, v) => match schema {
                Schema::Union(u) => match u.variants().get(i as usize) {
                    Some(branch) => self.val(*v, branch),
                    None => self.val(*v, &Schema::Null),
                },
                _ => self.val(*v, schema),
            },
            Value::Array(items) => {
                let item = match schema {
                    Schema::Array(a) => &*a.items,
                    s => s,
                };
                items.into_iter().map(|v| self.val(v, item)).collect()
            }
            Value::Map(m) => self.map(m, schema),
            Value::Record(fields) => self.record(fields, schema),
            Value::Date(days) => time::date(days),
            Value::TimeMillis(ms) => time::time(ms as i64, 3),
            Value::TimeMicros(us) => time::time(us, 6),
            Value::TimestampMillis(t) => time::timestamp(t, 3, true),
            Value::TimestampMicros(t) => time::timestamp(t, 6, true),
            Value::TimestampNanos(t) => time::timestamp(t, 9, true),
            Value::LocalTimestampMillis(t) => time::timestamp(t, 3, false),
            Value::LocalTimestampMicros(t) => time::timestamp(t, 6, false),
            Value::LocalTimestampNanos(t) => time::timestamp(t, 9, false),
            Value::Decimal(d) => {
                let scale = match schema {
                    Schema::Decimal(d) => d.scale,
                    _ => 0,
                };
                fit::decimal_val(&BigInt::from(d), scale)
            }
            Value::BigDecimal(d) => Val::Num(Num::Dec(std::rc::Rc::new(d.to_string()))),
            Value::Duration(d) => duration(&d),
            Value::Uuid(u) => text(u.to_string()),
        }
    }

    fn map(&self, m: HashMap<String, Value>, schema: &Schema) -> Val {
        let types = match schema {
            Schema::Map(m) => &*m.types,
            s => s,
        };
        let mut obj = jaq_json::Map::with_capacity_and_hasher(m.len(), Default::default());
        for (k, v) in m {
            obj.insert(text(k), self.val(v, types));
        }
        Val::obj(obj)
    }

    fn record(&self, fields: Vec<(String, Value)>, schema: &Schema) -> Val {
        let record: Option<&RecordSchema> = match schema {
            Schema::Record(r) => Some(r),
            _ => None,
        };
        let mut obj = jaq_json::Map::with_capacity_and_hasher(fields.len(), Default::default());
        for (i, (k, v)) in fields.into_iter().enumerate() {
            let field = record
                .and_then(|r| r.fields.get(i))
                .map_or(&Schema::Null, |f| &f.schema);
            obj.insert(text(k), self.val(v, field));
        }
        Val::obj(obj)
    }
}

/// A duration as `{months, days, milliseconds}`.
fn duration(d: &apache_avro::Duration) -> Val {
    let mut obj = jaq_json::Map::with_capacity_and_hasher(3, Default::default());
    let parts = [
        ("months", u32::from(d.months())),
        ("days", u32::from(d.days())),
        ("milliseconds", u32::from(d.millis())),
    ];
    for (name, n) in parts {
        obj.insert(Val::utf8_str(name), Val::Num(Num::Int(n as isize)));
    }
    Val::obj(obj)
}

fn text(s: String) -> Val {
    Val::utf8_str(s.into_bytes())
}
