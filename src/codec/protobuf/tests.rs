//! The Protobuf codec's tests: every field kind both ways, presence, the JSON mapping's other
//! spellings, errors naming the field, registry message indexes, references.

use prost::Message as _;
use prost_reflect::MessageDescriptor;

use super::{ProtoSchema, ProtobufError, decode, encode, load};
use crate::codec::test_support::{json, val};

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

fn round_trip(message: &MessageDescriptor, input: &str) -> Result<String, ProtobufError> {
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
        let err = round_trip(&all, input).unwrap_err().to_string();
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
    let err = ProtoSchema::from_registry(main, &[])
        .unwrap_err()
        .to_string();
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
    let err = decode(&all, &body[..body.len() - 3])
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not a t.All"), "{err}");
}
