//! Reading a body with a compiled schema: serde seeds that build jq values node by node.

use std::fmt;

use bytes::Bytes;
use jaq_json::{Num, Val};
use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, VariantAccess};
use serde_avro_fast::de::DeserializerState;

use super::node::{Direct, Node};
use crate::codec::value::{fit, time};

impl Direct {
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

/// Reads one value of a node.
#[derive(Clone, Copy)]
struct Seed<'a> {
    direct: &'a Direct,
    node: usize,
    payload: &'a Bytes,
    /// Of a record: which of its fields to build (all when None).
    wanted: Option<&'a [bool]>,
}

impl<'a> Seed<'a> {
    fn at(self, node: usize) -> Seed<'a> {
        Seed {
            node,
            wanted: None,
            ..self
        }
    }

    /// A string read from the payload, sharing its memory.
    fn text(self, s: &str) -> Val {
        Val::utf8_str(self.payload.slice_ref(s.as_bytes()))
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Val;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Val, D::Error> {
        match &self.direct.nodes[self.node] {
            Node::Union(_) => d.deserialize_enum("", &[], self),
            Node::Array(_) => d.deserialize_seq(self),
            Node::Enum(_) => d.deserialize_u64(self),
            Node::Decimal => d.deserialize_str(self),
            Node::Duration => d.deserialize_tuple(3, self),
            _ => d.deserialize_any(self),
        }
    }
}

impl<'de> de::Visitor<'de> for Seed<'_> {
    type Value = Val;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a value of {:?}", self.direct.nodes[self.node])
    }

    fn visit_unit<E>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Val, E> {
        Ok(Val::Bool(v))
    }

    fn visit_i32<E: de::Error>(self, v: i32) -> Result<Val, E> {
        Ok(match self.direct.nodes[self.node] {
            Node::Date => time::date(v),
            Node::TimeMillis => time::time(v.into(), 3),
            _ => Val::Num(Num::Int(v as isize)),
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Val, E> {
        Ok(match self.direct.nodes[self.node] {
            Node::TimeMicros => time::time(v, 6),
            Node::Timestamp(digits, utc) => time::timestamp(v, digits, utc),
            _ => Val::Num(Num::from_integral(v)),
        })
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Val, E> {
        // An enum's symbol, by its index.
        match &self.direct.nodes[self.node] {
            Node::Enum(symbols) => usize::try_from(v)
                .ok()
                .and_then(|i| symbols.get(i))
                .map(|s| Val::utf8_str(s.clone()))
                .ok_or_else(|| E::custom("enum symbol out of range")),
            _ => Ok(Val::Num(Num::from_integral(v))),
        }
    }

    fn visit_f32<E>(self, v: f32) -> Result<Val, E> {
        Ok(fit::float_val(v as f64))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Val, E> {
        Ok(fit::float_val(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Val, E> {
        match self.direct.nodes[self.node] {
            Node::Uuid => {
                let uuid: apache_avro::Uuid = v.parse().map_err(E::custom)?;
                Ok(Val::utf8_str(uuid.to_string().into_bytes()))
            }
            _ => Ok(self.text(v)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Val, E> {
        match self.direct.nodes[self.node] {
            // A decimal, as text of its scale.
            Node::Decimal => Ok(Val::Num(Num::Dec(std::rc::Rc::new(v.to_string())))),
            _ => Err(E::custom("a string not read from the body")),
        }
    }

    fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Val, E> {
        Ok(fit::base64_val(v))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Val, A::Error> {
        match self.direct.nodes[self.node] {
            Node::Duration => {
                let mut obj = jaq_json::Map::with_capacity_and_hasher(3, Default::default());
                for name in ["months", "days", "milliseconds"] {
                    let n: u32 = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::custom("short duration"))?;
                    obj.insert(Val::utf8_str(name), Val::Num(Num::Int(n as isize)));
                }
                Ok(Val::obj(obj))
            }
            Node::Array(item) => {
                let item = self.at(item);
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(v) = seq.next_element_seed(item)? {
                    items.push(v);
                }
                Ok(items.into_iter().collect())
            }
            _ => Err(de::Error::custom("a sequence where none was expected")),
        }
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Val, A::Error> {
        match &self.direct.nodes[self.node] {
            Node::Record(fields) => {
                let built = self
                    .wanted
                    .map_or(fields.len(), |w| w.iter().filter(|&&b| b).count());
                let mut obj = jaq_json::Map::with_capacity_and_hasher(built, Default::default());
                for (i, (name, node)) in fields.iter().enumerate() {
                    map.next_key::<IgnoredAny>()?;
                    if self.wanted.is_none_or(|w| w[i]) {
                        let value = map.next_value_seed(self.at(*node))?;
                        obj.insert(Val::utf8_str(name.clone()), value);
                    } else {
                        map.next_value_seed(Skip)?;
                    }
                }
                Ok(Val::obj(obj))
            }
            Node::Map(values) => {
                let values = self.at(*values);
                let mut obj = jaq_json::Map::with_capacity_and_hasher(
                    map.size_hint().unwrap_or(0).min(1024),
                    Default::default(),
                );
                while let Some(key) = map.next_key_seed(Key(self.payload))? {
                    obj.insert(key, map.next_value_seed(values)?);
                }
                Ok(Val::obj(obj))
            }
            _ => Err(de::Error::custom("a map where none was expected")),
        }
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Val, A::Error> {
        let Node::Union(branches) = &self.direct.nodes[self.node] else {
            return Err(de::Error::custom("a union where none was expected"));
        };
        let (node, variant) = data.variant_seed(Branch(branches))?;
        variant.newtype_variant_seed(self.at(node))
    }
}

/// A union's branch, by the name the reader gives it.
struct Branch<'a>(&'a [(String, usize)]);

impl<'de> DeserializeSeed<'de> for Branch<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl de::Visitor<'_> for Branch<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a branch of the union")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<usize, E> {
        self.0
            .iter()
            .find(|(name, _)| name == v)
            .map(|(_, node)| *node)
            .ok_or_else(|| E::custom(format!("no branch {v}")))
    }
}

/// A map's key, sharing the payload's memory.
struct Key<'a>(&'a Bytes);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Val;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Val, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> de::Visitor<'de> for Key<'_> {
    type Value = Val;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Val, E> {
        Ok(Val::utf8_str(self.0.slice_ref(v.as_bytes())))
    }
}

/// Reads a value without building it (strings are still checked to be UTF-8).
#[derive(Clone, Copy)]
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i32<E>(self, _: i32) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u32<E>(self, _: u32) -> Result<(), E> {
        Ok(())
    }
    fn visit_f32<E>(self, _: f32) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}
