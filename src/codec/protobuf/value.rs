//! Protobuf bodies of a message type read into jq values, and jq values written as them (by
//! the Protobuf JSON mapping).

use jaq_json::{Num, Val};
use prost::Message as _;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, Kind, MapKey, MessageDescriptor, ReflectMessage as _,
    SerializeOptions, Value,
};

use super::error::ProtobufError;
use crate::codec::json::write_json;
use crate::codec::value::fit;

/// Decodes a body of type `message`.
pub fn decode(message: &MessageDescriptor, body: &[u8]) -> Result<Val, ProtobufError> {
    let decoded =
        DynamicMessage::decode(message.clone(), body).map_err(|e| ProtobufError::NotMessage {
            message: message.full_name().to_string(),
            reason: e.to_string(),
        })?;
    message_val(&decoded)
}

/// A message as an object.
fn message_val(message: &DynamicMessage) -> Result<Val, ProtobufError> {
    let desc = message.descriptor();
    if desc.full_name().starts_with("google.protobuf.") {
        return well_known(message);
    }
    let mut obj = jaq_json::Map::with_capacity_and_hasher(desc.fields().len(), Default::default());
    for field in desc.fields() {
        if field.supports_presence() && !message.has_field(&field) {
            continue;
        }
        let value = message.get_field(&field);
        obj.insert(
            Val::utf8_str(field.name().to_string().into_bytes()),
            value_val(&value, &field.kind())?,
        );
    }
    Ok(Val::obj(obj))
}

/// A well-known type as the Protobuf JSON mapping writes it.
fn well_known(message: &DynamicMessage) -> Result<Val, ProtobufError> {
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false);
    let json = message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| ProtobufError::WellKnown {
            message: message.descriptor().full_name().to_string(),
            reason: e.to_string(),
        })?;
    serde_json::from_value(json).map_err(|e| ProtobufError::Json(e.to_string()))
}

fn value_val(value: &Value, kind: &Kind) -> Result<Val, ProtobufError> {
    Ok(match value {
        Value::Bool(b) => Val::Bool(*b),
        Value::I32(i) => Val::Num(Num::Int(*i as isize)),
        Value::U32(i) => Val::Num(Num::Int(*i as isize)),
        Value::I64(i) => Val::Num(Num::from_integral(*i)),
        Value::U64(i) => Val::Num(Num::from_integral(*i)),
        Value::F32(f) => fit::float_val(*f as f64),
        Value::F64(f) => fit::float_val(*f),
        Value::String(s) => Val::utf8_str(s.clone().into_bytes()),
        Value::Bytes(b) => fit::base64_val(b),
        Value::EnumNumber(n) => match kind {
            Kind::Enum(e) => match e.get_value(*n) {
                Some(v) => Val::utf8_str(v.name().to_string().into_bytes()),
                None => Val::Num(Num::Int(*n as isize)),
            },
            _ => Val::Num(Num::Int(*n as isize)),
        },
        Value::Message(m) => message_val(m)?,
        Value::List(items) => items
            .iter()
            .map(|v| value_val(v, kind))
            .collect::<Result<Val, ProtobufError>>()?,
        Value::Map(entries) => {
            let value_kind = match kind {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                k => k.clone(),
            };
            let mut obj =
                jaq_json::Map::with_capacity_and_hasher(entries.len(), Default::default());
            let mut sorted: Vec<_> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            for (k, v) in sorted {
                let key = match k {
                    MapKey::Bool(b) => b.to_string(),
                    MapKey::I32(i) => i.to_string(),
                    MapKey::I64(i) => i.to_string(),
                    MapKey::U32(i) => i.to_string(),
                    MapKey::U64(i) => i.to_string(),
                    MapKey::String(s) => s.clone(),
                };
                obj.insert(Val::utf8_str(key.into_bytes()), value_val(v, &value_kind)?);
            }
            Val::obj(obj)
        }
    })
}

/// Encodes `val` as a `message`, appending to `out`. A value that does not fit is refused
/// with the path of the field that does not.
pub fn encode(
    message: &MessageDescriptor,
    val: &Val,
    out: &mut Vec<u8>,
) -> Result<(), ProtobufError> {
    let mut json = Vec::new();
    write_json(val, &mut json, 0)?;
    let mut de = serde_json::Deserializer::from_slice(&json);
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(&mut de, &mut track);
    let decoded = serde::de::DeserializeSeed::deserialize(ProtoSeed(message, &options), tracked)
        .map_err(|e| {
            let path = track.path().to_string();
            if path == "." {
                ProtobufError::Value(e.to_string())
            } else {
                ProtobufError::Field {
                    path,
                    reason: e.to_string(),
                }
            }
        })?;
    decoded.encode(out).map_err(|e| ProtobufError::Encoding {
        message: message.full_name().to_string(),
        reason: e.to_string(),
    })
}

/// Deserializes a message of a type known at run time.
struct ProtoSeed<'a>(&'a MessageDescriptor, &'a DeserializeOptions);

impl<'de> serde::de::DeserializeSeed<'de> for ProtoSeed<'_> {
    type Value = DynamicMessage;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<DynamicMessage, D::Error> {
        DynamicMessage::deserialize_with_options(self.0.clone(), d, self.1)
    }
}
