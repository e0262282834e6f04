//! Avro bodies as jq values and back. Records and maps are objects, arrays arrays, a union is
//! its branch's value (untagged), an enum its symbol, `bytes` and `fixed` base64 text, decimals
//! exact numbers, dates, times and timestamps ISO 8601 text, durations `{months, days,
//! milliseconds}`, and non-finite floats the text `NaN`, `Infinity` or `-Infinity`. Encoding
//! takes the same values back, and also numbers for dates, times and timestamps (in the
//! schema's unit) and byte strings for `bytes` and `fixed`.

use std::collections::HashMap;

use apache_avro::Decimal;
use apache_avro::schema::{DecimalSchema, Name, RecordSchema, Schema};
use apache_avro::types::Value;
use jaq_json::{Num, Val};

use num_bigint::BigInt;

use super::{fit, time};

/// A parsed Avro schema, with the schemas it references and its named types.
#[derive(Debug)]
pub struct AvroSchema {
    schema: Schema,
    references: Vec<Schema>,
    named: HashMap<Name, Schema>,
}

impl AvroSchema {
    /// Parses the schema `text`, which may name types of the `references` (schema texts).
    pub fn parse(text: &str, references: &[&str]) -> Result<AvroSchema, String> {
        let (schema, references) = if references.is_empty() {
            (Schema::parse_str(text), Vec::new())
        } else {
            match Schema::parse_str_with_list(text, references) {
                Ok((schema, refs)) => (Ok(schema), refs),
                Err(e) => (Err(e), Vec::new()),
            }
        };
        let schema = schema.map_err(|e| format!("not a valid Avro schema: {e}"))?;
        let mut named = HashMap::new();
        for s in references.iter().chain([&schema]) {
            collect_named(s, &mut named);
        }
        Ok(AvroSchema {
            schema,
            references,
            named,
        })
    }

    /// The schema as the registry and other tools compare it (Parsing Canonical Form).
    pub fn canonical(&self) -> String {
        self.schema.canonical_form()
    }

    /// Decodes one datum written with this schema, read as `reader` when given (schema
    /// evolution: fields the reader adds get their defaults, fields it lacks are skipped).
    pub fn decode(&self, body: &[u8], reader: Option<&AvroSchema>) -> Result<Val, String> {
        let mut input = Exhausted {
            rest: body,
            hit_end: false,
        };
        let value = if self.references.is_empty() && reader.is_none_or(|r| r.references.is_empty())
        {
            apache_avro::from_avro_datum(&self.schema, &mut input, reader.map(|r| &r.schema))
        } else {
            apache_avro::from_avro_datum_reader_schemata(
                &self.schema,
                self.references.iter().collect(),
                &mut input,
                reader.map(|r| &r.schema),
                reader.map_or_else(Vec::new, |r| r.references.iter().collect()),
            )
        }
        .map_err(|e| format!("Avro body does not match its schema: {e}"))?;
        // apache-avro reads a string, boolean or union index cut off by the end of the body as
        // null; a whole body is never read past its end.
        if input.hit_end {
            return Err(format!(
                "Avro body of {} bytes ends inside the value its schema describes",
                body.len()
            ));
        }
        if !input.rest.is_empty() {
            return Err(format!(
                "{} bytes left over after the Avro body",
                input.rest.len()
            ));
        }
        let shape = reader.unwrap_or(self);
        Ok(shape.to_val(value, &shape.schema))
    }

    /// Encodes `val` with this schema, appending to `out`. A value that does not fit is
    /// refused with the path of the field that does not.
    pub fn encode(&self, val: &Val, out: &mut Vec<u8>) -> Result<(), String> {
        let mut path = String::new();
        let value = self.fit(val, &self.schema, &mut path).map_err(|e| {
            if path.is_empty() {
                e
            } else {
                format!("field {path}: {e}")
            }
        })?;
        let bytes = if self.references.is_empty() {
            apache_avro::to_avro_datum(&self.schema, value)
        } else {
            apache_avro::to_avro_datum_schemata(
                &self.schema,
                self.references.iter().collect(),
                value,
            )
        }
        .map_err(|e| format!("does not fit the Avro schema: {e}"))?;
        out.extend_from_slice(&bytes);
        Ok(())
    }

    /// `val` as an Avro value of `schema`. On error `path` is left at the field that failed.
    fn fit(&self, val: &Val, schema: &Schema, path: &mut String) -> Result<Value, String> {
        Ok(match (schema, val) {
            (Schema::Null, Val::Null) => Value::Null,
            (Schema::Boolean, Val::Bool(b)) => Value::Boolean(*b),
            (Schema::Int, _) => Value::Int(fit::int(val)?),
            (Schema::Long, _) => Value::Long(fit::long(val)?),
            (Schema::Float, _) => Value::Float(fit::float(val)? as f32),
            (Schema::Double, _) => Value::Double(fit::float(val)?),
            (Schema::String, Val::TStr(s)) => Value::String(fit::utf8(s)?),
            (Schema::Bytes, _) => Value::Bytes(fit::bytes(val)?),
            (Schema::Uuid, Val::TStr(s)) => {
                let s = fit::utf8(s)?;
                let uuid = s.parse().map_err(|e| format!("`{s}` is not a UUID: {e}"))?;
                Value::Uuid(uuid)
            }
            (Schema::Fixed(f), _) => {
                let b = fit::bytes(val)?;
                if b.len() != f.size {
                    return Err(format!(
                        "{} bytes where fixed {} holds {}",
                        b.len(),
                        f.name,
                        f.size
                    ));
                }
                Value::Fixed(f.size, b)
            }
            (Schema::Enum(e), Val::TStr(s)) => {
                let s = fit::utf8(s)?;
                match e.symbols.iter().position(|sym| *sym == s) {
                    Some(i) => Value::Enum(i as u32, s),
                    None => {
                        return Err(format!(
                            "`{s}` is not a symbol of enum {} ({})",
                            e.name,
                            e.symbols.join(", ")
                        ));
                    }
                }
            }
            (Schema::Decimal(d), _) => decimal(val, d)?,
            (Schema::BigDecimal, _) => {
                let digits = fit::decimal_text(val)?;
                Value::BigDecimal(
                    digits
                        .parse()
                        .map_err(|e| format!("`{digits}` is not a decimal: {e}"))?,
                )
            }
            (Schema::Date, _) => Value::Date(time::date_from(val)?),
            (Schema::TimeMillis, _) => Value::TimeMillis(time::time_from(val, 3)? as i32),
            (Schema::TimeMicros, _) => Value::TimeMicros(time::time_from(val, 6)?),
            (Schema::TimestampMillis, _) => {
                Value::TimestampMillis(time::timestamp_from(val, 3, true)?)
            }
            (Schema::TimestampMicros, _) => {
                Value::TimestampMicros(time::timestamp_from(val, 6, true)?)
            }
            (Schema::TimestampNanos, _) => {
                Value::TimestampNanos(time::timestamp_from(val, 9, true)?)
            }
            (Schema::LocalTimestampMillis, _) => {
                Value::LocalTimestampMillis(time::timestamp_from(val, 3, false)?)
            }
            (Schema::LocalTimestampMicros, _) => {
                Value::LocalTimestampMicros(time::timestamp_from(val, 6, false)?)
            }
            (Schema::LocalTimestampNanos, _) => {
                Value::LocalTimestampNanos(time::timestamp_from(val, 9, false)?)
            }
            (Schema::Duration, Val::Obj(o)) => duration(o)?,
            (Schema::Array(a), Val::Arr(items)) => self.array(items, &a.items, path)?,
            (Schema::Map(m), Val::Obj(o)) => self.map(o, &m.types, path)?,
            (Schema::Record(r), Val::Obj(o)) => self.record(r, o, path)?,
            (Schema::Union(u), _) => self.union(val, u.variants(), path)?,
            (Schema::Ref { name }, _) => match self.named.get(name) {
                Some(named) => self.fit(val, named, path)?,
                None => return Err(format!("the schema names {name} but does not define it")),
            },
            _ => {
                return Err(format!(
                    "{} where the schema has {}",
                    fit::kind(val),
                    expected(schema)
                ));
            }
        })
    }

    fn array(&self, items: &[Val], schema: &Schema, path: &mut String) -> Result<Value, String> {
        let mark = path.len();
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            path.push_str(&format!("[{i}]"));
            out.push(self.fit(item, schema, path)?);
            path.truncate(mark);
        }
        Ok(Value::Array(out))
    }

    fn map(&self, o: &jaq_json::Map, schema: &Schema, path: &mut String) -> Result<Value, String> {
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
    fn union(&self, val: &Val, branches: &[Schema], path: &mut String) -> Result<Value, String> {
        let mut reasons = Vec::new();
        for (i, branch) in branches.iter().enumerate() {
            let mark = path.len();
            match self.fit(val, branch, path) {
                Ok(v) => return Ok(Value::Union(i as u32, Box::new(v))),
                Err(e) => reasons.push(e),
            }
            path.truncate(mark);
        }
        Err(format!(
            "{} fits no branch of the union ({})",
            fit::kind(val),
            reasons.join("; ")
        ))
    }

    /// An object as a record: every field of the schema, in its order; fields the object lacks
    /// take their defaults; members the schema does not name are an error.
    fn record(
        &self,
        r: &RecordSchema,
        o: &jaq_json::Map,
        path: &mut String,
    ) -> Result<Value, String> {
        for k in o.keys() {
            let name = fit::key(k)?;
            if !r.lookup.contains_key(&name) {
                return Err(format!("record {} has no field `{name}`", r.name));
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
                    Some(default) => default_value(default, &field.schema, self)?,
                    None => return Err("missing, and the schema gives no default".into()),
                },
            };
            path.truncate(mark);
            fields.push((field.name.clone(), value));
        }
        Ok(Value::Record(fields))
    }
}

/// A body being decoded, noting whether the decoder asked for more than it holds.
struct Exhausted<'a> {
    rest: &'a [u8],
    hit_end: bool,
}

impl std::io::Read for Exhausted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !buf.is_empty() && self.rest.is_empty() {
            self.hit_end = true;
        }
        self.rest.read(buf)
    }
}

/// A field's default (JSON in the schema) as a value of its schema (for a union, of the first
/// branch, as the Avro specification says).
fn default_value(
    default: &serde_json::Value,
    schema: &Schema,
    avro: &AvroSchema,
) -> Result<Value, String> {
    let val: Val = serde_json::from_value(default.clone())
        .map_err(|e| format!("the schema's default is not usable: {e}"))?;
    let schema = match schema {
        Schema::Union(u) => match u.variants().first() {
            Some(first) => {
                return avro
                    .fit(&val, first, &mut String::new())
                    .map(|v| Value::Union(0, Box::new(v)));
            }
            None => schema,
        },
        s => s,
    };
    avro.fit(&val, schema, &mut String::new())
}

fn collect_named(schema: &Schema, named: &mut HashMap<Name, Schema>) {
    match schema {
        Schema::Record(r) => {
            named.insert(r.name.clone(), schema.clone());
            for f in &r.fields {
                collect_named(&f.schema, named);
            }
        }
        Schema::Enum(e) => {
            named.insert(e.name.clone(), schema.clone());
        }
        Schema::Fixed(f) => {
            named.insert(f.name.clone(), schema.clone());
        }
        Schema::Decimal(d) => collect_named(&d.inner, named),
        Schema::Array(a) => collect_named(&a.items, named),
        Schema::Map(m) => collect_named(&m.types, named),
        Schema::Union(u) => {
            for v in u.variants() {
                collect_named(v, named);
            }
        }
        _ => {}
    }
}

impl AvroSchema {
    /// An Avro value of `schema` as a jq value.
    fn to_val(&self, value: Value, schema: &Schema) -> Val {
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
                    Some(branch) => self.to_val(*v, branch),
                    None => self.to_val(*v, &Schema::Null),
                },
                _ => self.to_val(*v, schema),
            },
            Value::Array(items) => {
                let item = match schema {
                    Schema::Array(a) => &*a.items,
                    s => s,
                };
                items.into_iter().map(|v| self.to_val(v, item)).collect()
            }
            Value::Map(m) => {
                let types = match schema {
                    Schema::Map(m) => &*m.types,
                    s => s,
                };
                let mut obj = jaq_json::Map::with_capacity_and_hasher(m.len(), Default::default());
                for (k, v) in m {
                    obj.insert(text(k), self.to_val(v, types));
                }
                Val::obj(obj)
            }
            Value::Record(fields) => {
                let record = match schema {
                    Schema::Record(r) => Some(r),
                    _ => None,
                };
                let mut obj =
                    jaq_json::Map::with_capacity_and_hasher(fields.len(), Default::default());
                for (i, (k, v)) in fields.into_iter().enumerate() {
                    let field = record
                        .and_then(|r| r.fields.get(i))
                        .map_or(&Schema::Null, |f| &f.schema);
                    obj.insert(text(k), self.to_val(v, field));
                }
                Val::obj(obj)
            }
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
            Value::Duration(d) => {
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
            Value::Uuid(u) => text(u.to_string()),
        }
    }
}

fn text(s: String) -> Val {
    Val::utf8_str(s.into_bytes())
}

/// A number as a decimal of the schema's scale and precision.
fn decimal(val: &Val, d: &DecimalSchema) -> Result<Value, String> {
    let unscaled = fit::unscaled(val, d.scale, d.precision)?;
    Ok(Value::Decimal(Decimal::from(unscaled.to_signed_bytes_be())))
}

/// `{months, days, milliseconds}` as an Avro duration.
fn duration(o: &jaq_json::Map) -> Result<Value, String> {
    let part = |name: &str| -> Result<u32, String> {
        match o.get(&Val::utf8_str(name.to_string().into_bytes())) {
            None => Ok(0),
            Some(v) => {
                let n = fit::long(v)?;
                u32::try_from(n).map_err(|_| format!("{name} {n} is not between 0 and 4294967295"))
            }
        }
    };
    for k in o.keys() {
        let name = fit::key(k)?;
        if !matches!(name.as_str(), "months" | "days" | "milliseconds") {
            return Err(format!(
                "a duration has months, days and milliseconds, not `{name}`"
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &str = r#"{"type":"record","name":"All","namespace":"t","fields":[
      {"name":"n","type":"null"},
      {"name":"b","type":"boolean"},
      {"name":"i","type":"int"},
      {"name":"l","type":"long"},
      {"name":"f","type":"float"},
      {"name":"d","type":"double"},
      {"name":"by","type":"bytes"},
      {"name":"s","type":"string"},
      {"name":"a","type":{"type":"array","items":"int"}},
      {"name":"m","type":{"type":"map","values":"string"}},
      {"name":"u","type":["null","string","long"]},
      {"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
      {"name":"fx","type":{"type":"fixed","name":"Four","size":4}},
      {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
      {"name":"decf","type":{"type":"fixed","name":"D8","size":8,"logicalType":"decimal","precision":18,"scale":3}},
      {"name":"uuid","type":{"type":"string","logicalType":"uuid"}},
      {"name":"date","type":{"type":"int","logicalType":"date"}},
      {"name":"tm","type":{"type":"int","logicalType":"time-millis"}},
      {"name":"tu","type":{"type":"long","logicalType":"time-micros"}},
      {"name":"tsm","type":{"type":"long","logicalType":"timestamp-millis"}},
      {"name":"tsu","type":{"type":"long","logicalType":"timestamp-micros"}},
      {"name":"tsn","type":{"type":"long","logicalType":"timestamp-nanos"}},
      {"name":"ltm","type":{"type":"long","logicalType":"local-timestamp-millis"}},
      {"name":"dur","type":{"type":"fixed","name":"Dur","size":12,"logicalType":"duration"}},
      {"name":"rec","type":{"type":"record","name":"Inner","fields":[{"name":"x","type":"int"}]}},
      {"name":"again","type":["null","Inner"]},
      {"name":"withdef","type":"string","default":"dflt"}
    ]}"#;

    use super::super::tests_support::{json, val};

    fn round_trip(schema: &AvroSchema, input: &Val) -> Result<Val, String> {
        let mut body = Vec::new();
        schema.encode(input, &mut body)?;
        schema.decode(&body, None)
    }

    #[test]
    fn every_type_round_trips_as_its_documented_value() {
        let schema = AvroSchema::parse(ALL, &[]).unwrap();
        let input = val(
            r#"{"n":null,"b":true,"i":-5,"l":9007199254740993,"f":1.5,"d":-2.25,
            "by":"AAE=","s":"héllo","a":[1,2],"m":{"k":"v"},"u":"x","e":"GREEN",
            "fx":"AQIDBA==","dec":123.45,"decf":"-1.5","uuid":"67e55044-10b1-426f-9247-bb680e5fe0c8",
            "date":"2024-02-29","tm":"01:02:03.004","tu":"01:02:03.000005",
            "tsm":"2023-11-14T22:13:20.123Z","tsu":1700000000123456,"tsn":"2023-11-14T22:13:20.123456789Z",
            "ltm":"2023-11-14T22:13:20.123","dur":{"months":1,"days":2,"milliseconds":3},
            "rec":{"x":7},"again":{"x":8}}"#,
        );
        let out = round_trip(&schema, &input).unwrap();
        assert_eq!(
            json(&out),
            concat!(
                r#"{"n":null,"b":true,"i":-5,"l":9007199254740993,"f":1.5,"d":-2.25,"#,
                r#""by":"AAE=","s":"héllo","a":[1,2],"m":{"k":"v"},"u":"x","e":"GREEN","#,
                r#""fx":"AQIDBA==","dec":123.45,"decf":-1.500,"uuid":"67e55044-10b1-426f-9247-bb680e5fe0c8","#,
                r#""date":"2024-02-29","tm":"01:02:03.004","tu":"01:02:03.000005","#,
                r#""tsm":"2023-11-14T22:13:20.123Z","tsu":"2023-11-14T22:13:20.123456Z","#,
                r#""tsn":"2023-11-14T22:13:20.123456789Z","ltm":"2023-11-14T22:13:20.123","#,
                r#""dur":{"months":1,"days":2,"milliseconds":3},"rec":{"x":7},"again":{"x":8},"#,
                r#""withdef":"dflt"}"#
            )
        );
        // The result encodes back to the same bytes.
        let (mut first, mut second) = (Vec::new(), Vec::new());
        schema.encode(&input, &mut first).unwrap();
        schema.encode(&out, &mut second).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn union_branches_are_chosen_by_the_value() {
        let schema = AvroSchema::parse(
            r#"["null","long","string",{"type":"array","items":"long"}]"#,
            &[],
        )
        .unwrap();
        for input in ["null", "5", "\"five\"", "[5]"] {
            assert_eq!(json(&round_trip(&schema, &val(input)).unwrap()), input);
        }
        let err = round_trip(&schema, &val("{}")).unwrap_err();
        assert!(
            err.contains("an object fits no branch of the union"),
            "{err}"
        );
    }

    #[test]
    fn non_finite_floats_are_text() {
        let schema = AvroSchema::parse(r#"{"type":"array","items":"double"}"#, &[]).unwrap();
        let out = round_trip(&schema, &val(r#"["NaN","Infinity","-Infinity",0.5]"#)).unwrap();
        assert_eq!(json(&out), r#"["NaN","Infinity","-Infinity",0.5]"#);
    }

    #[test]
    fn what_does_not_fit_is_refused_naming_the_field() {
        let schema = AvroSchema::parse(ALL, &[]).unwrap();
        let good = r#""n":null,"b":true,"i":1,"l":1,"f":1,"d":1,"by":"","s":"","a":[],"m":{},"u":null,"e":"RED","fx":"AAAAAA==","dec":1,"decf":1,"uuid":"67e55044-10b1-426f-9247-bb680e5fe0c8","date":0,"tm":0,"tu":0,"tsm":0,"tsu":0,"tsn":0,"ltm":0,"dur":{},"again":null"#;
        let cases = [
            (
                r#""rec":{"x":"seven"}"#,
                "field .rec.x: `seven` is not an integer",
            ),
            (
                r#""rec":{"x":7.5}"#,
                "field .rec.x: `7.5` is not an integer",
            ),
            (
                r#""rec":{"x":1,"y":2}"#,
                "field .rec: record t.Inner has no field `y`",
            ),
            (
                r#""rec":{}"#,
                "field .rec.x: missing, and the schema gives no default",
            ),
            (
                r#""rec":{"x":1},"extra":1"#,
                "record t.All has no field `extra`",
            ),
            (
                r#""rec":{"x":4294967296}"#,
                "field .rec.x: 4294967296 does not fit an int",
            ),
        ];
        for (rest, want) in cases {
            let input = val(&format!("{{{good},{rest}}}"));
            let err = round_trip(&schema, &input).unwrap_err();
            assert!(err.contains(want), "{rest}: {err}");
        }
        let bad_enum = val(&format!(
            "{{{},\"rec\":{{\"x\":1}}}}",
            good.replace("\"RED\"", "\"BLUE\"")
        ));
        let err = round_trip(&schema, &bad_enum).unwrap_err();
        assert!(
            err.contains("field .e: `BLUE` is not a symbol of enum t.Color (RED, GREEN)"),
            "{err}"
        );
        let ok = val(&format!("{{{good},\"rec\":{{\"x\":1}}}}"));
        assert!(round_trip(&schema, &ok).is_ok());
    }

    #[test]
    fn a_reader_schema_reads_old_bodies_with_defaults_for_added_fields() {
        let writer = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"id","type":"long"},{"name":"gone","type":"string"}]}"#,
            &[],
        )
        .unwrap();
        let reader = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"id","type":"long"},
               {"name":"added","type":"string","default":"none"},
               {"name":"maybe","type":["null","long"],"default":null}]}"#,
            &[],
        )
        .unwrap();
        let mut body = Vec::new();
        writer
            .encode(&val(r#"{"id":3,"gone":"x"}"#), &mut body)
            .unwrap();
        let out = writer.decode(&body, Some(&reader)).unwrap();
        assert_eq!(json(&out), r#"{"id":3,"added":"none","maybe":null}"#);
    }

    #[test]
    fn bodies_that_do_not_match_are_refused() {
        let schema = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"s","type":"string"}]}"#,
            &[],
        )
        .unwrap();
        // A string of 10 bytes announced, 2 there.
        let err = schema.decode(&[20, b'a', b'b'], None).unwrap_err();
        assert!(
            err.contains("Avro body of 3 bytes ends inside the value"),
            "{err}"
        );
        // A union's index cut off reads as its first branch in apache-avro: caught all the same.
        let optional = AvroSchema::parse(r#"{"type":"record","name":"O","fields":[{"name":"a","type":"long"},{"name":"b","type":["null","string"]}]}"#, &[]).unwrap();
        let err = optional.decode(&[2], None).unwrap_err();
        assert!(err.contains("ends inside the value"), "{err}");
        let err = schema.decode(&[2, b'a', 0xff], None).unwrap_err();
        assert!(err.contains("1 bytes left over"), "{err}");
        assert!(
            AvroSchema::parse(r#"{"type":"nope"}"#, &[])
                .unwrap_err()
                .contains("not a valid Avro schema")
        );
    }

    #[test]
    fn references_name_types_of_other_schemas() {
        let inner = r#"{"type":"record","name":"Inner","namespace":"x","fields":[{"name":"v","type":"int"}]}"#;
        let outer = r#"{"type":"record","name":"Outer","namespace":"x","fields":[{"name":"i","type":"x.Inner"}]}"#;
        let schema = AvroSchema::parse(outer, &[inner]).unwrap();
        let out = round_trip(&schema, &val(r#"{"i":{"v":2}}"#)).unwrap();
        assert_eq!(json(&out), r#"{"i":{"v":2}}"#);
    }
}
