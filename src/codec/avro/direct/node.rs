//! A schema compiled for direct reading: its nodes, each what a schema node becomes.

use std::fmt;

use bytes::Bytes;
use jaq_json::Val;

/// A schema compiled for direct reading.
pub struct Direct {
    /// The schema as `serde_avro_fast` reads it.
    pub(super) schema: serde_avro_fast::Schema,
    /// Its nodes; the first is the top level.
    pub(super) nodes: Vec<Node>,
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
pub(super) enum Node {
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
}
