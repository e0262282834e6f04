//! Avro bodies as jq values and back. Records and maps are objects, arrays arrays, a union is
//! its branch's value (untagged), an enum its symbol, `bytes` and `fixed` base64 text, decimals
//! exact numbers, dates, times and timestamps ISO 8601 text, durations `{months, days,
//! milliseconds}`, and non-finite floats the text `NaN`, `Infinity` or `-Infinity`. Encoding
//! takes the same values back, and also numbers for dates, times and timestamps (in the
//! schema's unit) and byte strings for `bytes` and `fixed`.

use std::collections::HashMap;

use apache_avro::schema::{Name, Schema};
use apache_avro::types::Value;
use bytes::Bytes;
use jaq_json::{Num, Val};
use num_bigint::BigInt;

use super::avro_direct::Direct;
use super::{fit, time};

mod to_avro;

/// A parsed Avro schema, with the schemas it references and its named types.
#[derive(Debug)]
pub struct AvroSchema {
    schema: Schema,
    references: Vec<Schema>,
    named: HashMap<Name, Schema>,
    /// The schema compiled for reading bodies straight into jq values, when it can be.
    pub(super) direct: Option<Direct>,
}

impl AvroSchema {
    /// Parses the schema `text`, which may name types of the `references` (schema texts).
    pub fn parse(text: &str, references: &[&str]) -> Result<AvroSchema, String> {
        let texts = references;
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
        let direct = Direct::build(text, texts, &schema, &named);
        Ok(AvroSchema {
            schema,
            references,
            named,
            direct,
        })
    }

    /// The schema as the registry and other tools compare it (Parsing Canonical Form).
    pub fn canonical(&self) -> String {
        self.schema.canonical_form()
    }

    /// Which fields of the top-level record [`AvroSchema::read`] builds when a program reads
    /// only `fields`: None when it builds them all.
    pub fn wanted(&self, fields: &[Val]) -> Option<Vec<bool>> {
        self.direct.as_ref()?.wanted(fields)
    }

    /// Reads `body`, which lies within `payload`, as [`AvroSchema::decode`] does, but building
    /// of the top-level record only the fields `wanted` marks (from [`AvroSchema::wanted`]),
    /// and with strings sharing the payload's memory, when there is no reader schema.
    pub fn read(
        &self,
        payload: &Bytes,
        body: &[u8],
        reader: Option<&AvroSchema>,
        wanted: Option<&[bool]>,
    ) -> Result<Val, String> {
        if let (Some(direct), None) = (&self.direct, reader)
            && let Some(val) = direct.read(payload, body, wanted)
        {
            return Ok(val);
        }
        self.decode(body, reader)
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

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::tests_support::{AVRO_ALL as ALL, json, val};

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
