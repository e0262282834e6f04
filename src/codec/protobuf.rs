//! Protobuf bodies as jq values and back. A message is an object keyed by the fields' names as
//! the `.proto` file spells them: fields without presence are always there (unset ones with
//! their default), fields with presence (messages, `oneof` members, `optional`) only when set.
//! Enums are their value's name (the number when the schema does not name it), 64-bit
//! integers exact numbers, `bytes` base64 text, non-finite floats the text `NaN`, `Infinity`,
//! `-Infinity`, and the well-known types as the Protobuf JSON mapping writes them
//! (`Timestamp` as RFC 3339 text, `Duration` as `"1.5s"`, wrappers as their value, `Struct`
//! and `Value` as JSON). Encoding takes values by the Protobuf JSON mapping, which also takes
//! these: field names in lowerCamelCase, enums by number, 64-bit integers as text.

use std::path::{Path, PathBuf};

use jaq_json::{Num, Val};
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, FieldDescriptor, FileDescriptor, Kind,
    MapKey, MessageDescriptor, ReflectMessage as _, SerializeOptions, Value,
};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use super::fit;

/// A compiled set of `.proto` files.
#[derive(Debug, Clone)]
pub struct ProtoSchema {
    pool: DescriptorPool,
    /// The file whose messages the Schema Registry's message indexes count in.
    main: Option<FileDescriptor>,
}

impl ProtoSchema {
    /// A compiled descriptor set (`protoc --include_imports --descriptor_set_out`).
    pub fn from_descriptor_set(bytes: &[u8]) -> Result<ProtoSchema, String> {
        let pool = DescriptorPool::decode(bytes)
            .map_err(|e| format!("not a valid Protobuf descriptor set: {e}"))?;
        Ok(ProtoSchema { pool, main: None })
    }

    /// `.proto` files compiled now, imports looked up in `includes` (and the well-known types).
    pub fn compile(files: &[PathBuf], includes: &[PathBuf]) -> Result<ProtoSchema, String> {
        let mut compiler =
            protox::Compiler::new(includes).map_err(|e| format!("cannot compile: {e}"))?;
        compiler.include_imports(true);
        compiler
            .open_files(files)
            .map_err(|e| format!("cannot compile: {e}"))?;
        let pool = compiler.descriptor_pool();
        // One file opened: its messages are the ones a registry's message indexes count in, and
        // its first is the type written when none is named.
        let mut opened = compiler.files().filter(|f| !f.is_import());
        let main = match (opened.next(), opened.next()) {
            (Some(file), None) => pool.get_file_by_name(file.name()),
            _ => None,
        };
        Ok(ProtoSchema { pool, main })
    }

    /// A schema from the Schema Registry: `.proto` text, importing `references` (`(import name,
    /// .proto text)`). Each may also be in the registry's serialized form, a base64
    /// `FileDescriptorProto` (what Confluent's serializers for Python and Go register).
    pub fn from_registry(
        text: &str,
        references: &[(String, String)],
    ) -> Result<ProtoSchema, String> {
        const MAIN: &str = "sluice-registry-schema.proto";
        let mut resolver = ChainFileResolver::new();
        resolver.add(InMemory(
            std::iter::once((MAIN.to_string(), text.to_string()))
                .chain(references.iter().cloned())
                .collect(),
        ));
        resolver.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.include_imports(true);
        compiler
            .open_file(MAIN)
            .map_err(|e| format!("the registry's Protobuf schema does not compile: {e}"))?;
        let pool = compiler.descriptor_pool();
        let main = pool.get_file_by_name(MAIN);
        Ok(ProtoSchema { pool, main })
    }

    /// The message type named `name` (`package.Message`).
    pub fn message(&self, name: &str) -> Option<MessageDescriptor> {
        self.pool.get_message_by_name(name.trim_start_matches('.'))
    }

    /// The names of every message type, for errors.
    pub fn message_names(&self) -> Vec<String> {
        self.pool
            .all_messages()
            .filter(|m| !m.full_name().starts_with("google.protobuf."))
            .map(|m| m.full_name().to_string())
            .collect()
    }

    /// The message type at `path` in the registry schema's file (the wire format's message
    /// indexes: the top-level message, then nested ones).
    pub fn message_at(&self, path: &[usize]) -> Option<MessageDescriptor> {
        let file = self.main.as_ref()?;
        let (first, rest) = path.split_first()?;
        let mut message = file.messages().nth(*first)?;
        for &i in rest {
            let child = message.child_messages().nth(i)?;
            message = child;
        }
        Some(message)
    }

    /// The message indexes of `message` in the registry schema's file.
    pub fn path_of(&self, message: &MessageDescriptor) -> Option<Vec<usize>> {
        let file = self.main.as_ref()?;
        let mut path = Vec::new();
        let mut current = message.clone();
        while let Some(parent) = current.parent_message() {
            path.push(parent.child_messages().position(|m| m == current)?);
            current = parent;
        }
        if current.parent_file() != *file {
            return None;
        }
        path.push(file.messages().position(|m| m == current)?);
        path.reverse();
        Some(path)
    }
}

/// `.proto` texts by name, for compiling a registry schema and its references.
struct InMemory(Vec<(String, String)>);

impl FileResolver for InMemory {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.iter().find(|(n, _)| n == name) {
            Some((n, text)) => match serialized(text) {
                Some(mut file) => {
                    file.name = Some(n.clone());
                    Ok(File::from_file_descriptor_proto(file))
                }
                None => File::from_source(n, text),
            },
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// A schema in the registry's serialized form: a base64 `FileDescriptorProto`. `.proto` text is
/// never base64 (it has spaces, `;` and `=` inside).
fn serialized(text: &str) -> Option<prost_reflect::prost_types::FileDescriptorProto> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    prost_reflect::prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok()
}

/// Decodes a body of type `message`.
pub fn decode(message: &MessageDescriptor, body: &[u8]) -> Result<Val, String> {
    let decoded = DynamicMessage::decode(message.clone(), body)
        .map_err(|e| format!("Protobuf body is not a {}: {e}", message.full_name()))?;
    message_val(&decoded)
}

/// A message as an object.
fn message_val(message: &DynamicMessage) -> Result<Val, String> {
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
fn well_known(message: &DynamicMessage) -> Result<Val, String> {
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false);
    let json = message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| format!("{}: {e}", message.descriptor().full_name()))?;
    serde_json::from_value(json).map_err(|e| e.to_string())
}

fn value_val(value: &Value, kind: &Kind) -> Result<Val, String> {
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
            .collect::<Result<Val, String>>()?,
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
pub fn encode(message: &MessageDescriptor, val: &Val, out: &mut Vec<u8>) -> Result<(), String> {
    let mut json = Vec::new();
    super::write_json(val, &mut json, 0).map_err(|e| e.to_string())?;
    let mut de = serde_json::Deserializer::from_slice(&json);
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(&mut de, &mut track);
    let decoded = serde::de::DeserializeSeed::deserialize(ProtoSeed(message, &options), tracked)
        .map_err(|e| {
            let path = track.path().to_string();
            if path == "." {
                e.to_string()
            } else {
                format!("field .{path}: {e}")
            }
        })?;
    decoded
        .encode(out)
        .map_err(|e| format!("encoding {}: {e}", message.full_name()))
}

/// Deserializes a message of a type known at run time.
struct ProtoSeed<'a>(&'a MessageDescriptor, &'a DeserializeOptions);

impl<'de> serde::de::DeserializeSeed<'de> for ProtoSeed<'_> {
    type Value = DynamicMessage;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<DynamicMessage, D::Error> {
        DynamicMessage::deserialize_with_options(self.0.clone(), d, self.1)
    }
}

/// The field of `message` named `name`, by its `.proto` name or its JSON name.
pub fn field(message: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_name(name)
        .or_else(|| message.get_field_by_json_name(name))
}

/// Reads a compiled descriptor set, or compiles `.proto` files, for `path`: a `.proto` file is
/// compiled with its directory and `includes` as import paths.
pub fn load(path: &Path, includes: &[PathBuf]) -> Result<ProtoSchema, String> {
    if path.extension().is_some_and(|e| e == "proto") {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut all = vec![if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        }];
        all.extend(includes.iter().cloned());
        return ProtoSchema::compile(&[path.to_path_buf()], &all);
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    ProtoSchema::from_descriptor_set(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTO: &str = r#"
syntax = "proto3";
package t;
import "google/protobuf/timestamp.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/wrappers.proto";
import "google/protobuf/struct.proto";

enum Color { RED = 0; GREEN = 1; }

message All {
  double d = 1; float f = 2; int32 i32 = 3; int64 i64 = 4; uint32 u32 = 5; uint64 u64 = 6;
  sint32 s32 = 7; sint64 s64 = 8; fixed32 f32 = 9; fixed64 f64 = 10; sfixed32 sf32 = 11;
  sfixed64 sf64 = 12; bool b = 13; string s = 14; bytes by = 15; Color color = 16;
  Inner inner = 17; repeated int32 list = 18; map<string, Inner> by_name = 19;
  oneof choice { string text = 20; int64 number = 21; }
  optional int32 maybe = 22;
  google.protobuf.Timestamp at = 23; google.protobuf.Duration took = 24;
  google.protobuf.Int64Value wrapped = 25; google.protobuf.Struct extra = 26;
  message Inner { string name = 1; }
}
message Second { string id = 1; }
"#;

    fn schema() -> ProtoSchema {
        ProtoSchema::from_registry(PROTO, &[]).unwrap()
    }

    use super::super::tests_support::{json, val};

    fn round_trip(message: &MessageDescriptor, input: &str) -> Result<String, String> {
        let mut body = Vec::new();
        encode(message, &val(input), &mut body)?;
        decode(message, &body).map(|v| json(&v))
    }

    #[test]
    fn every_field_kind_round_trips_as_its_documented_value() {
        let all = schema().message("t.All").unwrap();
        let out = round_trip(
            &all,
            r#"{"d":1.5,"f":"NaN","i32":-3,"i64":"-9007199254740993","u32":4000000000,
            "u64":18446744073709551615,"s32":-7,"s64":-8,"f32":9,"f64":10,"sf32":-11,"sf64":-12,
            "b":true,"s":"héllo","by":"AAE=","color":"GREEN","inner":{"name":"n"},"list":[1,2],
            "by_name":{"b":{"name":"x"},"a":{}},"number":"21","maybe":0,
            "at":"2023-11-14T22:13:20.123Z","took":"1.5s","wrapped":"7","extra":{"k":[1,"v",null]}}"#,
        )
        .unwrap();
        assert_eq!(
            out,
            concat!(
                r#"{"d":1.5,"f":"NaN","i32":-3,"i64":-9007199254740993,"u32":4000000000,"#,
                r#""u64":18446744073709551615,"s32":-7,"s64":-8,"f32":9,"f64":10,"sf32":-11,"sf64":-12,"#,
                r#""b":true,"s":"héllo","by":"AAE=","color":"GREEN","inner":{"name":"n"},"list":[1,2],"#,
                r#""by_name":{"a":{"name":""},"b":{"name":"x"}},"number":21,"maybe":0,"#,
                r#""at":"2023-11-14T22:13:20.123Z","took":"1.500s","wrapped":7,"extra":{"k":[1.0,"v",null]}}"#
            )
        );
    }

    #[test]
    fn unset_fields_show_their_defaults_unless_they_have_presence() {
        let all = schema().message("t.All").unwrap();
        let out = round_trip(&all, "{}").unwrap();
        assert_eq!(
            out,
            concat!(
                r#"{"d":0.0,"f":0.0,"i32":0,"i64":0,"u32":0,"u64":0,"s32":0,"s64":0,"f32":0,"f64":0,"#,
                r#""sf32":0,"sf64":0,"b":false,"s":"","by":"","color":"RED","list":[],"by_name":{}}"#
            )
        );
    }

    #[test]
    fn json_names_and_enum_numbers_are_taken_too() {
        let all = schema().message("t.All").unwrap();
        let out = round_trip(
            &all,
            r#"{"byName":{"k":{"name":"v"}},"color":1,"text":"t"}"#,
        )
        .unwrap();
        assert!(out.contains(r#""by_name":{"k":{"name":"v"}}"#), "{out}");
        assert!(out.contains(r#""color":"GREEN""#), "{out}");
        assert!(out.contains(r#""text":"t""#), "{out}");
    }

    #[test]
    fn what_does_not_fit_is_refused_naming_the_field() {
        let all = schema().message("t.All").unwrap();
        for (input, want) in [
            (r#"{"inner":{"name":5}}"#, "field .inner.name"),
            (r#"{"inner":{"nope":1}}"#, "nope"),
            (r#"{"i32":4000000000}"#, "field .i32"),
            (r#"{"color":"BLUE"}"#, "field .color"),
        ] {
            let err = round_trip(&all, input).unwrap_err();
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn registry_message_indexes_find_nested_types_and_back() {
        let schema = schema();
        let all = schema.message("t.All").unwrap();
        let inner = schema.message("t.All.Inner").unwrap();
        let second = schema.message("t.Second").unwrap();
        assert_eq!(schema.path_of(&all), Some(vec![0]));
        // All's map field makes a nested entry type, ByNameEntry, before Inner: the wire
        // format counts it, as Confluent's serializers do.
        assert_eq!(schema.path_of(&inner), Some(vec![0, 1]));
        assert_eq!(schema.path_of(&second), Some(vec![1]));
        assert_eq!(schema.message_at(&[0, 1]), Some(inner));
        assert_eq!(schema.message_at(&[1]), Some(second));
        assert_eq!(schema.message_at(&[2]), None);
    }

    #[test]
    fn references_are_compiled_with_the_schema() {
        let dep = "syntax = \"proto3\"; package d; message Dep { int32 v = 1; }".to_string();
        let main = "syntax = \"proto3\"; import \"dep.proto\"; message M { d.Dep dep = 1; }";
        let schema = ProtoSchema::from_registry(main, &[("dep.proto".into(), dep)]).unwrap();
        let m = schema.message("M").unwrap();
        assert_eq!(
            round_trip(&m, r#"{"dep":{"v":3}}"#).unwrap(),
            r#"{"dep":{"v":3}}"#
        );
        let err = ProtoSchema::from_registry(main, &[]).unwrap_err();
        assert!(err.contains("dep.proto"), "{err}");
    }

    #[test]
    fn serialized_registry_schemas_are_read_as_descriptors() {
        use base64::Engine as _;
        // The schema as Confluent's Python and Go serializers register it: a base64
        // FileDescriptorProto, here of a file that imports a well-known type and a reference.
        let dep = "syntax = \"proto3\"; package d; message Dep { int32 v = 1; }";
        let main = "syntax = \"proto3\"; package m; import \"dep.proto\"; \
            import \"google/protobuf/timestamp.proto\"; \
            message M { d.Dep dep = 1; google.protobuf.Timestamp at = 2; }";
        let files = ProtoSchema::from_registry(main, &[("dep.proto".into(), dep.into())]).unwrap();
        let encode = |name: &str| {
            let file = files.pool.get_file_by_name(name).unwrap();
            base64::engine::general_purpose::STANDARD
                .encode(file.file_descriptor_proto().encode_to_vec())
        };
        let (main, dep) = (encode("sluice-registry-schema.proto"), encode("dep.proto"));
        let schema = ProtoSchema::from_registry(&main, &[("dep.proto".into(), dep)]).unwrap();
        let m = schema.message("m.M").unwrap();
        assert_eq!(schema.path_of(&m), Some(vec![0]));
        assert_eq!(
            round_trip(&m, r#"{"dep":{"v":3},"at":"2024-01-02T03:04:05Z"}"#).unwrap(),
            r#"{"dep":{"v":3},"at":"2024-01-02T03:04:05Z"}"#
        );
    }

    #[test]
    fn a_compiled_file_counts_message_indexes_in_itself_not_in_its_imports() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("totals.proto");
        std::fs::write(&file, PROTO).unwrap();
        let schema = load(&file, &[]).unwrap();
        let first = schema.message_at(&[0]).unwrap();
        assert_eq!(first.full_name(), "t.All");
        assert_eq!(schema.path_of(&first), Some(vec![0]));
        // The imports' types are not the file's.
        let timestamp = schema.message("google.protobuf.Timestamp").unwrap();
        assert_eq!(schema.path_of(&timestamp), None);
    }

    #[test]
    fn a_truncated_body_is_refused() {
        let all = schema().message("t.All").unwrap();
        let mut body = Vec::new();
        encode(&all, &val(r#"{"s":"a long enough string"}"#), &mut body).unwrap();
        let err = decode(&all, &body[..body.len() - 3]).unwrap_err();
        assert!(err.contains("is not a t.All"), "{err}");
    }
}
