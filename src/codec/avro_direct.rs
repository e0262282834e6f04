//! Avro bodies read straight into jq values, with `serde_avro_fast`: no intermediate value tree,
//! strings sliced out of the payload instead of copied, and of a top-level record only the
//! fields a pipeline's programs read are built (the others are read all the same, so what is
//! refused does not change). It gives the values [`super::avro`] documents: it is built only for
//! a schema whose every node it reads as apache-avro does, node by node, and a body it cannot
//! read is handed to apache-avro, whose reading (or reason for refusing) is the answer.

use std::collections::HashMap;
use std::fmt;

use apache_avro::schema::{Name, Schema};
use bytes::Bytes;
use jaq_json::Val;
use serde::de::DeserializeSeed;
use serde_avro_fast::de::DeserializerState;
use serde_avro_fast::schema::{LogicalType, RegularType, SchemaKey, SchemaMut};

mod seed;
use seed::Seed;

/// A schema compiled for direct reading.
pub struct Direct {
    schema: serde_avro_fast::Schema,
    nodes: Vec<Node>,
}

impl fmt::Debug for Direct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Direct")
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

/// What a schema node becomes; children are indexes into [`Direct::nodes`].
#[derive(Debug)]
enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    /// `bytes` and `fixed`: base64 text.
    Bytes,
    String,
    Array(usize),
    Map(usize),
    /// Each branch by the name `serde_avro_fast` gives it, and its node.
    Union(Vec<(String, usize)>),
    /// Each field's name and its node.
    Record(Vec<(Bytes, usize)>),
    /// The symbols.
    Enum(Vec<Bytes>),
    Decimal,
    Uuid,
    Date,
    TimeMillis,
    TimeMicros,
    /// A timestamp of this many fractional digits, in UTC or local.
    Timestamp(u8, bool),
    Duration,
}

impl Direct {
    /// Compiles `text` (with the schemas it references) for direct reading, checked node by
    /// node against apache-avro's reading of it (`schema`, with its named types `named`). None
    /// when some node would not read the same way.
    pub fn build(
        text: &str,
        references: &[&str],
        schema: &Schema,
        named: &HashMap<Name, Schema>,
    ) -> Option<Direct> {
        let safe = SchemaMut::from_schemata(text, references).ok()?;
        let mut walk = Walk {
            safe: &safe,
            named,
            built: HashMap::new(),
            nodes: Vec::new(),
        };
        let root = walk.node(SchemaKey::from_idx(0), schema)?;
        debug_assert_eq!(root, 0);
        let nodes = walk.nodes;
        Some(Direct {
            schema: safe.freeze().ok()?,
            nodes,
        })
    }

    /// Which fields of the top-level record are built when a program reads only `fields`:
    /// None when the top level is not a record.
    pub fn wanted(&self, fields: &[Val]) -> Option<Vec<bool>> {
        match &self.nodes[0] {
            Node::Record(record) => Some(
                record
                    .iter()
                    .map(|(name, _)| {
                        fields
                            .iter()
                            .any(|f| matches!(f, Val::TStr(f) if **f == name))
                    })
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Reads `body` (which lies within `payload`), building of the top-level record only the
    /// fields `wanted` marks. None when the body does not read whole.
    pub fn read(&self, payload: &Bytes, body: &[u8], wanted: Option<&[bool]>) -> Option<Val> {
        // Strings are sliced out of the payload: the body must lie within it.
        let (outer, inner) = (payload.as_ptr_range(), body.as_ptr_range());
        if inner.start < outer.start || inner.end > outer.end {
            return None;
        }
        let mut state = DeserializerState::from_slice(body, &self.schema);
        let seed = Seed {
            direct: self,
            node: 0,
            payload,
            wanted,
        };
        let val = seed.deserialize(state.deserializer()).ok()?;
        let rest = std::io::BufRead::fill_buf(&mut state.into_reader())
            .ok()?
            .len();
        (rest == 0).then_some(val)
    }
}

/// Walks the `serde_avro_fast` schema beside apache-avro's.
struct Walk<'a> {
    safe: &'a SchemaMut,
    named: &'a HashMap<Name, Schema>,
    /// Nodes already built, by key: named types are built once (and may contain themselves).
    built: HashMap<SchemaKey, usize>,
    nodes: Vec<Node>,
}

impl Walk<'_> {
    fn node(&mut self, key: SchemaKey, apache: &Schema) -> Option<usize> {
        let apache = match apache {
            Schema::Ref { name } => self.named.get(name)?,
            other => other,
        };
        if let Some(&i) = self.built.get(&key) {
            return Some(i);
        }
        let i = self.nodes.len();
        self.built.insert(key, i);
        self.nodes.push(Node::Null);
        let safe = self.safe.get(key)?;
        let node = match (&safe.type_, &safe.logical_type, apache) {
            (RegularType::Bytes, Some(LogicalType::Decimal(d)), Schema::Decimal(a))
            | (RegularType::Fixed(_), Some(LogicalType::Decimal(d)), Schema::Decimal(a))
                if d.scale as usize == a.scale && d.precision <= 28 && a.scale <= 28 =>
            {
                Node::Decimal
            }
            (RegularType::String, Some(LogicalType::Uuid), Schema::Uuid) => Node::Uuid,
            (RegularType::Int, Some(LogicalType::Date), Schema::Date) => Node::Date,
            (RegularType::Int, Some(LogicalType::TimeMillis), Schema::TimeMillis) => {
                Node::TimeMillis
            }
            (RegularType::Long, Some(LogicalType::TimeMicros), Schema::TimeMicros) => {
                Node::TimeMicros
            }
            (RegularType::Long, Some(LogicalType::TimestampMillis), Schema::TimestampMillis) => {
                Node::Timestamp(3, true)
            }
            (RegularType::Long, Some(LogicalType::TimestampMicros), Schema::TimestampMicros) => {
                Node::Timestamp(6, true)
            }
            (RegularType::Long, Some(LogicalType::Unknown(u)), _) => match (u.as_str(), apache) {
                ("timestamp-nanos", Schema::TimestampNanos) => Node::Timestamp(9, true),
                ("local-timestamp-millis", Schema::LocalTimestampMillis) => {
                    Node::Timestamp(3, false)
                }
                ("local-timestamp-micros", Schema::LocalTimestampMicros) => {
                    Node::Timestamp(6, false)
                }
                ("local-timestamp-nanos", Schema::LocalTimestampNanos) => Node::Timestamp(9, false),
                (_, Schema::Long) => Node::Long,
                _ => return None,
            },
            (RegularType::Fixed(f), Some(LogicalType::Duration), Schema::Duration)
                if f.size == 12 =>
            {
                Node::Duration
            }
            (_, Some(LogicalType::Unknown(_)) | None, _) => self.plain(safe, apache)?,
            _ => return None,
        };
        self.nodes[i] = node;
        Some(i)
    }

    /// A node without a logical type (or with one neither reader knows).
    fn plain(
        &mut self,
        safe: &serde_avro_fast::schema::SchemaNode,
        apache: &Schema,
    ) -> Option<Node> {
        Some(match (&safe.type_, apache) {
            (RegularType::Null, Schema::Null) => Node::Null,
            (RegularType::Boolean, Schema::Boolean) => Node::Boolean,
            (RegularType::Int, Schema::Int) => Node::Int,
            (RegularType::Long, Schema::Long) => Node::Long,
            (RegularType::Float, Schema::Float) => Node::Float,
            (RegularType::Double, Schema::Double) => Node::Double,
            (RegularType::Bytes, Schema::Bytes) => Node::Bytes,
            (RegularType::String, Schema::String) => Node::String,
            (RegularType::Fixed(f), Schema::Fixed(a)) if f.size == a.size => Node::Bytes,
            (RegularType::Array(a), Schema::Array(b)) => Node::Array(self.node(a.items, &b.items)?),
            (RegularType::Map(m), Schema::Map(b)) => Node::Map(self.node(m.values, &b.types)?),
            (RegularType::Enum(e), Schema::Enum(b)) if e.symbols == b.symbols => {
                Node::Enum(e.symbols.iter().map(|s| Bytes::from(s.clone())).collect())
            }
            (RegularType::Record(r), Schema::Record(b)) if r.fields.len() == b.fields.len() => {
                let mut fields = Vec::with_capacity(r.fields.len());
                for (f, g) in r.fields.iter().zip(&b.fields) {
                    if f.name != g.name {
                        return None;
                    }
                    let node = self.node(f.type_, &g.schema)?;
                    fields.push((Bytes::from(f.name.clone()), node));
                }
                Node::Record(fields)
            }
            (RegularType::Union(u), Schema::Union(b)) if u.variants.len() == b.variants().len() => {
                let mut branches = Vec::with_capacity(u.variants.len());
                for (&key, apache) in u.variants.iter().zip(b.variants()) {
                    let name = branch_name(self.safe.get(key)?)?;
                    branches.push((name, self.node(key, apache)?));
                }
                Node::Union(branches)
            }
            _ => return None,
        })
    }
}

/// The name `serde_avro_fast` gives a union's branch (the variant it reads it as).
fn branch_name(node: &serde_avro_fast::schema::SchemaNode) -> Option<String> {
    let name = match (&node.logical_type, &node.type_) {
        (Some(LogicalType::Decimal(_)), RegularType::Bytes) => "Decimal",
        (Some(LogicalType::Decimal(_)), RegularType::Fixed(f)) => f.name.fully_qualified_name(),
        (Some(LogicalType::Uuid), RegularType::String) => "Uuid",
        (Some(LogicalType::Date), RegularType::Int) => "Date",
        (Some(LogicalType::TimeMillis), RegularType::Int) => "TimeMillis",
        (Some(LogicalType::TimeMicros), RegularType::Long) => "TimeMicros",
        (Some(LogicalType::TimestampMillis), RegularType::Long) => "TimestampMillis",
        (Some(LogicalType::TimestampMicros), RegularType::Long) => "TimestampMicros",
        (Some(LogicalType::Duration), RegularType::Fixed(f)) if f.size == 12 => "Duration",
        (Some(LogicalType::BigDecimal), RegularType::Bytes) => "BigDecimal",
        (_, RegularType::Null) => "Null",
        (_, RegularType::Boolean) => "Boolean",
        (_, RegularType::Int) => "Int",
        (_, RegularType::Long) => "Long",
        (_, RegularType::Float) => "Float",
        (_, RegularType::Double) => "Double",
        (_, RegularType::Bytes) => "Bytes",
        (_, RegularType::String) => "String",
        (_, RegularType::Array(_)) => "Array",
        (_, RegularType::Map(_)) => "Map",
        (_, RegularType::Union(_)) => return None,
        (_, RegularType::Record(r)) => r.name.fully_qualified_name(),
        (_, RegularType::Enum(e)) => e.name.fully_qualified_name(),
        (_, RegularType::Fixed(f)) => f.name.fully_qualified_name(),
    };
    Some(name.to_string())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use jaq_json::Val;

    use super::super::avro::AvroSchema;
    use super::super::tests_support::{AVRO_ALL as ALL, json, val};

    fn body(schema: &AvroSchema, value: &str) -> Bytes {
        let mut out = Vec::new();
        schema.encode(&val(value), &mut out).unwrap();
        Bytes::from(out)
    }

    /// What apache-avro reads, and what the direct reader reads (None when it cannot), as JSON
    /// with the members of objects sorted (apache-avro reads a map into a hash map: its order
    /// is not the body's).
    fn both(schema: &AvroSchema, body: &Bytes) -> (String, Option<String>) {
        let direct = schema.direct.as_ref().expect("read directly");
        (
            json(&sorted(schema.decode(body, None).unwrap())),
            direct.read(body, body, None).map(|v| json(&sorted(v))),
        )
    }

    fn sorted(v: Val) -> Val {
        match v {
            Val::Obj(o) => {
                let mut members: Vec<(Val, Val)> = o
                    .iter()
                    .map(|(k, v)| (k.clone(), sorted(v.clone())))
                    .collect();
                members.sort_by(|a, b| a.0.cmp(&b.0));
                Val::obj(members.into_iter().collect())
            }
            Val::Arr(a) => a.iter().cloned().map(sorted).collect(),
            other => other,
        }
    }

    #[test]
    fn every_type_reads_as_apache_avro_reads_it() {
        let schema = AvroSchema::parse(ALL, &[]).unwrap();
        let values = [
            r#"{"n":null,"b":true,"i":-5,"l":9007199254740993,"f":1.5,"d":-2.25,
            "by":"AAE=","s":"héllo","a":[1,2],"m":{"k":"v","k2":"w"},"u":"x","e":"GREEN",
            "fx":"AQIDBA==","dec":-0.05,"decf":"-1.5","uuid":"67E55044-10B1-426F-9247-BB680E5FE0C8",
            "date":"2024-02-29","tm":"01:02:03.004","tu":"01:02:03.000005",
            "tsm":"2023-11-14T22:13:20.123Z","tsu":1700000000123456,"tsn":"2023-11-14T22:13:20.123456789Z",
            "ltm":"2023-11-14T22:13:20.123","dur":{"months":1,"days":2,"milliseconds":3},
            "rec":{"x":7},"again":{"x":8}}"#,
            r#"{"n":null,"b":false,"i":0,"l":-1,"f":"NaN","d":"-Infinity",
            "by":"","s":"","a":[],"m":{},"u":5,"e":"RED",
            "fx":"AAAAAA==","dec":0,"decf":0,"uuid":"00000000-0000-0000-0000-000000000000",
            "date":0,"tm":0,"tu":0,"tsm":0,"tsu":0,"tsn":0,"ltm":0,"dur":{},
            "rec":{"x":-1},"again":null,"withdef":"set"}"#,
            r#"{"n":null,"b":true,"i":2147483647,"l":-9223372036854775808,"f":0,"d":1e300,
            "by":"/w==","s":"\u0000\n","a":[-1],"m":{"":""},"u":null,"e":"RED",
            "fx":"/////w==","dec":9999999.99,"decf":"-999999999999999.999","uuid":"67e55044-10b1-426f-9247-bb680e5fe0c8",
            "date":"1969-12-31","tm":"23:59:59.999","tu":"00:00:00","tsm":-1,"tsu":-1,"tsn":-1,
            "ltm":-1,"dur":{"months":4294967295},"rec":{"x":0},"again":{"x":0}}"#,
        ];
        for value in values {
            let b = body(&schema, value);
            let (apache, direct) = both(&schema, &b);
            assert_eq!(direct.as_deref(), Some(apache.as_str()), "{value}");
        }
    }

    #[test]
    fn only_the_wanted_fields_of_the_top_record_are_built() {
        let schema = AvroSchema::parse(ALL, &[]).unwrap();
        let b = body(
            &schema,
            r#"{"n":null,"b":true,"i":3,"l":4,"f":1,"d":2,"by":"","s":"kept","a":[1],"m":{},
            "u":"x","e":"RED","fx":"AAAAAA==","dec":1,"decf":1,
            "uuid":"67e55044-10b1-426f-9247-bb680e5fe0c8","date":0,"tm":0,"tu":0,"tsm":0,
            "tsu":0,"tsn":0,"ltm":0,"dur":{},"rec":{"x":1},"again":null}"#,
        );
        let wanted = schema.wanted(&[val(r#""s""#), val(r#""rec""#), val(r#""nope""#)]);
        let out = schema.read(&b, &b, None, wanted.as_deref()).unwrap();
        assert_eq!(json(&out), r#"{"s":"kept","rec":{"x":1}}"#);
        // The unwanted fields are still read: a body cut short is refused all the same.
        let cut = b.slice(..b.len() - 2);
        let err = schema
            .read(&cut, &cut, None, wanted.as_deref())
            .unwrap_err();
        assert!(err.contains("ends inside the value"), "{err}");
    }

    #[test]
    fn strings_share_the_payload() {
        let schema = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"s","type":"string"}]}"#,
            &[],
        )
        .unwrap();
        let b = body(&schema, r#"{"s":"shared text"}"#);
        let out = schema.read(&b, &b, None, None).unwrap();
        let jaq_json::Val::Obj(o) = out else {
            panic!("not an object")
        };
        let Some(jaq_json::Val::TStr(s)) = o.values().next() else {
            panic!("not a string")
        };
        assert_eq!(s.as_ptr(), b[1..].as_ptr());
    }

    #[test]
    fn bodies_it_cannot_read_get_apache_avros_answer() {
        let schema = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"s","type":"string"},{"name":"o","type":["null","long"]}]}"#,
            &[],
        )
        .unwrap();
        let cases: [(&[u8], &str); 4] = [
            (&[20, b'a', b'b'], "ends inside the value"),
            (&[2, b'a'], "ends inside the value"),
            (&[2, b'a', 0, 0xff], "1 bytes left over"),
            (&[2, b'a', 8], "does not match its schema"),
        ];
        for (bytes, want) in cases {
            let b = Bytes::copy_from_slice(bytes);
            let err = schema.read(&b, &b, None, None).unwrap_err();
            assert!(err.contains(want), "{bytes:?}: {err}");
        }
        // Invalid UTF-8 is refused by both.
        let b = Bytes::from_static(&[2, 0xff, 0]);
        assert!(schema.read(&b, &b, None, None).is_err());
    }

    #[test]
    fn schemas_it_would_read_differently_are_left_to_apache_avro() {
        // A decimal wider than 28 digits, a UUID in a fixed: not read directly, read all the same.
        for schema in [
            r#"{"type":"bytes","logicalType":"decimal","precision":38,"scale":2}"#,
            r#"{"type":"fixed","name":"U","size":16,"logicalType":"uuid"}"#,
        ] {
            let parsed = AvroSchema::parse(schema, &[]).unwrap();
            assert!(parsed.direct.is_none(), "{schema}");
        }
        let wide = AvroSchema::parse(
            r#"{"type":"bytes","logicalType":"decimal","precision":38,"scale":2}"#,
            &[],
        )
        .unwrap();
        let b = body(&wide, r#""123456789012345678901234567890.12""#);
        assert_eq!(
            json(&wide.read(&b, &b, None, None).unwrap()),
            "123456789012345678901234567890.12"
        );
    }

    #[test]
    fn recursive_and_referenced_types_read_directly() {
        let list = AvroSchema::parse(
            r#"{"type":"record","name":"L","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","L"]}]}"#,
            &[],
        )
        .unwrap();
        let b = body(
            &list,
            r#"{"v":1,"next":{"v":2,"next":{"v":3,"next":null}}}"#,
        );
        let (apache, direct) = both(&list, &b);
        assert_eq!(direct.as_deref(), Some(apache.as_str()));
        assert_eq!(
            json(&list.read(&b, &b, None, None).unwrap()),
            r#"{"v":1,"next":{"v":2,"next":{"v":3,"next":null}}}"#
        );

        let inner = r#"{"type":"record","name":"Inner","namespace":"x","fields":[{"name":"v","type":"int"}]}"#;
        let outer = r#"{"type":"record","name":"Outer","namespace":"x","fields":[{"name":"i","type":"x.Inner"},{"name":"j","type":["null","x.Inner"]}]}"#;
        let schema = AvroSchema::parse(outer, &[inner]).unwrap();
        let b = body(&schema, r#"{"i":{"v":2},"j":{"v":3}}"#);
        let (apache, direct) = both(&schema, &b);
        assert_eq!(direct.as_deref(), Some(apache.as_str()));
    }
}
