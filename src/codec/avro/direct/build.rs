//! Compiling a schema for direct reading, node by node beside apache-avro's reading of it.

use std::collections::HashMap;

use apache_avro::schema::{Name, Schema};
use bytes::Bytes;
use serde_avro_fast::schema::{LogicalType, RegularType, SchemaKey, SchemaMut};

use super::node::{Direct, Node};

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
