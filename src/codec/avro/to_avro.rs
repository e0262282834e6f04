//! jq values as Avro values of a schema, for encoding: each value checked against its node,
//! errors naming the field that does not fit.

use std::collections::HashMap;

use apache_avro::Decimal;
use apache_avro::schema::{DecimalSchema, Name, RecordSchema, Schema};
use apache_avro::types::Value;
use jaq_json::Val;

use super::error::AvroError;
use crate::codec::value::{fit, time};

/// Fits values to a schema with these named types.
pub(super) struct Fit<'a> {
    pub(super) named: &'a HashMap<Name, Schema>,
}

impl Fit<'_> {
    /// `val` as an Avro value of `schema`. On error `path` is left at the field that failed.
    pub(super) fn fit(
        &self,
        val: &Val,
        schema: &Schema,
        path: &mut String,
    ) -> Result<Value, AvroError> {
        Ok(match (schema, val) {
            (Schema::Null, Val::Null) => Value::Null,
            (Schema::Boolean, Val::Bool(b)) => Value::Boolean(*b),
            (Schema::Int, _) => Value::Int(fit::int(val)?),
            (Schema::Long, _) => Value::Long(fit::long(val)?),
            (Schema::Float, _) => Value::Float(fit::float(val)? as f32),
            (Schema::Double, _) => Value::Double(fit::float(val)?),
            (Schema::String, Val::TStr(s)) => Value::String(fit::utf8(s)?),
            (Schema::Bytes, _) => Value::Bytes(fit::bytes(val)?),
            (Schema::Uuid, Val::TStr(s)) => uuid(fit::utf8(s)?)?,
            (Schema::Fixed(f), _) => {
                let b = fit::bytes(val)?;
                if b.len() != f.size {
                    return Err(AvroError::FixedSize {
                        len: b.len(),
                        name: f.name.to_string(),
                        size: f.size,
                    });
                }
                Value::Fixed(f.size, b)
            }
            (Schema::Enum(e), Val::TStr(s)) => {
                let s = fit::utf8(s)?;
                match e.symbols.iter().position(|sym| *sym == s) {
                    Some(i) => Value::Enum(i as u32, s),
                    None => {
                        return Err(AvroError::NotSymbol {
                            symbol: s,
                            name: e.name.to_string(),
                            symbols: e.symbols.clone(),
                        });
                    }
                }
            }
            (Schema::Decimal(d), _) => decimal(val, d)?,
            (Schema::BigDecimal, _) => big_decimal(val)?,
            (Schema::Duration, Val::Obj(o)) => duration(o)?,
            (Schema::Array(a), Val::Arr(items)) => self.array(items, &a.items, path)?,
            (Schema::Map(m), Val::Obj(o)) => self.map(o, &m.types, path)?,
            (Schema::Record(r), Val::Obj(o)) => self.record(r, o, path)?,
            (Schema::Union(u), _) => self.union(val, u.variants(), path)?,
            (Schema::Ref { name }, _) => match self.named.get(name) {
                Some(named) => self.fit(val, named, path)?,
                None => return Err(AvroError::Undefined(name.to_string())),
            },
            _ => match temporal(val, schema)? {
                Some(value) => value,
                None => {
                    return Err(AvroError::Kind {
                        found: fit::kind(val),
                        expected: expected(schema),
                    });
                }
            },
        })
    }

    fn array(&self, items: &[Val], schema: &Schema, path: &mut String) -> Result<Value, AvroError> {
        let mark = path.len();
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            path.push_str(&format!("[{i}]"));
            out.push(self.fit(item, schema, path)?);
            path.truncate(mark);
        }
        Ok(Value::Array(out))
    }

    fn map(
        &self,
        o: &jaq_json::Map,
        schema: &Schema,
        path: &mut String,
    ) -> Result<Value, AvroError> {
        let mark = path.len();
        let mut out = HashMap::with_capacity(o.len());
        for (k, v) in o.iter() {
            let key = fit::key(k)?;
            path.push('.');
            path.push_str(&key);
            out.insert(key, self.fit(v, schema, path)?);
            path.truncate(mark);
        }
        Ok(Value::Map(out))
    }

    /// The first branch `val` fits.
    fn union(&self, val: &Val, branches: &[Schema], path: &mut String) -> Result<Value, AvroError> {
        let mut reasons = Vec::new();
        for (i, branch) in branches.iter().enumerate() {
            let mark = path.len();
            match self.fit(val, branch, path) {
                Ok(v) => return Ok(Value::Union(i as u32, Box::new(v))),
                Err(e) => reasons.push(e),
            }
            path.truncate(mark);
        }
        Err(AvroError::NoBranch {
            found: fit::kind(val),
            reasons,
        })
    }

    /// An object as a record: every field of the schema, in its order; fields the object lacks
    /// take their defaults; members the schema does not name are an error.
    fn record(
        &self,
        r: &RecordSchema,
        o: &jaq_json::Map,
        path: &mut String,
    ) -> Result<Value, AvroError> {
        for k in o.keys() {
            let name = fit::key(k)?;
            if !r.lookup.contains_key(&name) {
                return Err(AvroError::NoField {
                    record: r.name.to_string(),
                    field: name,
                });
            }
        }
        let mark = path.len();
        let mut fields = Vec::with_capacity(r.fields.len());
        for field in &r.fields {
            path.push('.');
            path.push_str(&field.name);
            let value = match o.get(&Val::utf8_str(field.name.clone().into_bytes())) {
                Some(v) => self.fit(v, &field.schema, path)?,
                None => match &field.default {
                    Some(default) => self.default_value(default, &field.schema)?,
                    None => return Err(AvroError::Missing),
                },
            };
            path.truncate(mark);
            fields.push((field.name.clone(), value));
        }
        Ok(Value::Record(fields))
    }

    /// A field's default (JSON in the schema) as a value of its schema (for a union, of the
    /// first branch, as the Avro specification says).
    fn default_value(
        &self,
        default: &serde_json::Value,
        schema: &Schema,
    ) -> Result<Value, AvroError> {
        let val: Val = serde_json::from_value(default.clone())
            .map_err(|e| AvroError::Default(e.to_string()))?;
        let schema = match schema {
            Schema::Union(u) => match u.variants().first() {
                Some(first) => {
                    return self
                        .fit(&val, first, &mut String::new())
                        .map(|v| Value::Union(0, Box::new(v)));
                }
                None => schema,
            },
            s => s,
        };
        self.fit(&val, schema, &mut String::new())
    }
}

/// A value of a date, time or timestamp `schema`; None when `schema` is none of them.
fn temporal(val: &Val, schema: &Schema) -> Result<Option<Value>, AvroError> {
    Ok(Some(match schema {
        Schema::Date => Value::Date(time::date_from(val)?),
        Schema::TimeMillis => Value::TimeMillis(time::time_from(val, 3)? as i32),
        Schema::TimeMicros => Value::TimeMicros(time::time_from(val, 6)?),
        Schema::TimestampMillis => Value::TimestampMillis(time::timestamp_from(val, 3, true)?),
        Schema::TimestampMicros => Value::TimestampMicros(time::timestamp_from(val, 6, true)?),
        Schema::TimestampNanos => Value::TimestampNanos(time::timestamp_from(val, 9, true)?),
        Schema::LocalTimestampMillis => {
            Value::LocalTimestampMillis(time::timestamp_from(val, 3, false)?)
        }
        Schema::LocalTimestampMicros => {
            Value::LocalTimestampMicros(time::timestamp_from(val, 6, false)?)
        }
        Schema::LocalTimestampNanos => {
            Value::LocalTimestampNanos(time::timestamp_from(val, 9, false)?)
        }
        _ => return Ok(None),
    }))
}

/// Text as a UUID.
fn uuid(s: String) -> Result<Value, AvroError> {
    match s.parse() {
        Ok(uuid) => Ok(Value::Uuid(uuid)),
        Err(e) => Err(AvroError::NotUuid {
            reason: e.to_string(),
            text: s,
        }),
    }
}

/// A number as a decimal of the schema's scale and precision.
fn decimal(val: &Val, d: &DecimalSchema) -> Result<Value, AvroError> {
    let unscaled = fit::unscaled(val, d.scale, d.precision)?;
    Ok(Value::Decimal(Decimal::from(unscaled.to_signed_bytes_be())))
}

/// A number (or its text) as a big decimal.
fn big_decimal(val: &Val) -> Result<Value, AvroError> {
    let digits = fit::decimal_text(val)?;
    match digits.parse() {
        Ok(d) => Ok(Value::BigDecimal(d)),
        Err(e) => Err(AvroError::NotBigDecimal {
            reason: e.to_string(),
            text: digits,
        }),
    }
}

/// `{months, days, milliseconds}` as an Avro duration.
fn duration(o: &jaq_json::Map) -> Result<Value, AvroError> {
    let part = |name: &'static str| -> Result<u32, AvroError> {
        match o.get(&Val::utf8_str(name.to_string().into_bytes())) {
            None => Ok(0),
            Some(v) => {
                let n = fit::long(v)?;
                u32::try_from(n).map_err(|_| AvroError::DurationPart {
                    part: name,
                    value: n,
                })
            }
        }
    };
    for k in o.keys() {
        let name = fit::key(k)?;
        if !matches!(name.as_str(), "months" | "days" | "milliseconds") {
            return Err(AvroError::DurationMember(name));
        }
    }
    Ok(Value::Duration(apache_avro::Duration::new(
        apache_avro::Months::new(part("months")?),
        apache_avro::Days::new(part("days")?),
        apache_avro::Millis::new(part("milliseconds")?),
    )))
}

/// What a schema expects, for errors.
fn expected(schema: &Schema) -> String {
    match schema {
        Schema::Record(r) => format!("record {}", r.name),
        Schema::Enum(e) => format!("enum {}", e.name),
        Schema::Fixed(f) => format!("fixed {}", f.name),
        Schema::Ref { name } => name.to_string(),
        other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)).to_lowercase(),
    }
}
