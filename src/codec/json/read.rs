//! JSON payloads parsed into jq values: strings shared with the payload, and of a top-level
//! object only the members a chain reads built.

use bytes::Bytes;
use jaq_json::{Num, Val};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::error::JsonError;
use crate::codec::format::Decode;

/// Decodes JSON payloads for one worker: of a top-level object only `fields`, when given.
#[derive(Debug, Clone, Default)]
pub struct JsonDecoder {
    /// The only top-level members the worker's transforms read, when they read only some.
    pub fields: Option<Vec<Val>>,
}

impl Decode for JsonDecoder {
    type Error = JsonError;

    fn decode(&mut self, payload: &Bytes) -> Result<Val, JsonError> {
        match &self.fields {
            Some(fields) => decode_fields(payload, fields),
            None => decode(payload),
        }
    }
}

/// Parses a whole JSON payload.
pub fn decode(payload: &Bytes) -> Result<Val, JsonError> {
    parse(Shared::whole(payload))
}

/// [`decode`] of a JSON payload that builds, of a top-level object, only the members named in
/// `fields` (the others are parsed all the same, so what is refused, and why, does not change).
/// Any other payload is decoded whole.
pub fn decode_fields(payload: &Bytes, fields: &[Val]) -> Result<Val, JsonError> {
    parse(Shared {
        payload,
        fields: Some(fields),
    })
}

/// Parses the payload of `seed` as one JSON document.
fn parse(seed: Shared<'_, '_>) -> Result<Val, JsonError> {
    // serde_json is strict (no comments, NaN or trailing data) and limits nesting to 128.
    let mut de = serde_json::Deserializer::from_slice(seed.payload);
    let val = seed
        .deserialize(&mut de)
        .map_err(|e| JsonError::MalformedJson(e.to_string()))?;
    de.end()
        .map_err(|e| JsonError::MalformedJson(e.to_string()))?;
    Ok(val)
}

/// A member name of the top-level object: which of the wanted fields it is, if any.
struct Wanted<'f>(&'f [Val]);

impl<'de> DeserializeSeed<'de> for Wanted<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Wanted<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, name: &str) -> Result<Option<usize>, E> {
        Ok(self
            .0
            .iter()
            .position(|f| matches!(f, Val::TStr(s) if s.as_ref() == name.as_bytes())))
    }
}

/// Parses a JSON value as [`Shared`] does, checking it the same way, and builds nothing.
#[derive(Clone, Copy)]
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        Ok(())
    }

    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

/// Builds jq values from JSON as jaq-json's own deserializer does, except that a string read
/// straight from the payload becomes a slice of it (no allocation, no copy), and that of a
/// top-level object only the members named in `fields` are built, when given.
#[derive(Clone, Copy)]
struct Shared<'p, 'f> {
    payload: &'p Bytes,
    fields: Option<&'f [Val]>,
}

impl<'p> Shared<'p, '_> {
    /// A value built whole.
    fn whole(payload: &'p Bytes) -> Self {
        Shared {
            payload,
            fields: None,
        }
    }

    /// The seed of the values inside this one: built whole.
    fn inner(self) -> Self {
        Shared::whole(self.payload)
    }
}

impl<'de> DeserializeSeed<'de> for Shared<'_, '_> {
    type Value = Val;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Val, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Shared<'_, '_> {
    type Value = Val;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Val, E> {
        Ok(Val::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Val, E> {
        Ok(Val::Num(Num::from_integral(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Val, E> {
        Ok(Val::Num(Num::from_integral(v)))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Val, E> {
        Ok(Val::Num(Num::from_integral(v)))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Val, E> {
        Ok(Val::Num(Num::from_integral(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Val, E> {
        Ok(Val::Num(Num::Float(v)))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Val, E> {
        // Borrowed strings lie within the payload being parsed.
        Ok(Val::utf8_str(self.payload.slice_ref(v.as_bytes())))
    }

    fn visit_str<E>(self, v: &str) -> Result<Val, E> {
        Ok(Val::utf8_str(Bytes::copy_from_slice(v.as_bytes())))
    }

    fn visit_string<E>(self, v: String) -> Result<Val, E> {
        Ok(Val::utf8_str(v.into_bytes()))
    }

    fn visit_none<E>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Val, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_unit<E>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(self.inner())? {
            items.push(item);
        }
        Ok(items.into_iter().collect())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val, A::Error> {
        let inner = self.inner();
        let Some(fields) = self.fields else {
            let mut obj = jaq_json::Map::with_capacity_and_hasher(
                map.size_hint().unwrap_or(0).min(64),
                Default::default(),
            );
            while let Some(key) = map.next_key_seed(inner)? {
                let value = map.next_value_seed(inner)?;
                obj.insert(key, value);
            }
            return Ok(Val::obj(obj));
        };
        let mut obj = jaq_json::Map::with_capacity_and_hasher(fields.len(), Default::default());
        while let Some(wanted) = map.next_key_seed(Wanted(fields))? {
            match wanted {
                Some(i) => {
                    let value = map.next_value_seed(inner)?;
                    obj.insert(fields[i].clone(), value);
                }
                None => map.next_value_seed(Skip)?,
            }
        }
        Ok(Val::obj(obj))
    }
}
