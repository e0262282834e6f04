//! The Avro codec's tests: every type both ways, unions, errors naming the field, schema
//! evolution and references.

use jaq_json::Val;

use super::{AvroError, AvroSchema};
use crate::codec::test_support::{AVRO_ALL as ALL, json, val};

fn round_trip(schema: &AvroSchema, input: &Val) -> Result<Val, AvroError> {
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
    let err = round_trip(&schema, &val("{}")).unwrap_err().to_string();
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
        let err = round_trip(&schema, &input).unwrap_err().to_string();
        assert!(err.contains(want), "{rest}: {err}");
    }
    let bad_enum = val(&format!(
        "{{{},\"rec\":{{\"x\":1}}}}",
        good.replace("\"RED\"", "\"BLUE\"")
    ));
    let err = round_trip(&schema, &bad_enum).unwrap_err().to_string();
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
    let err = schema
        .decode(&[20, b'a', b'b'], None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Avro body of 3 bytes ends inside the value"),
        "{err}"
    );
    // A union's index cut off reads as its first branch in apache-avro: caught all the same.
    let optional = AvroSchema::parse(r#"{"type":"record","name":"O","fields":[{"name":"a","type":"long"},{"name":"b","type":["null","string"]}]}"#, &[]).unwrap();
    let err = optional.decode(&[2], None).unwrap_err().to_string();
    assert!(err.contains("ends inside the value"), "{err}");
    let err = schema
        .decode(&[2, b'a', 0xff], None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 bytes left over"), "{err}");
    assert!(
        AvroSchema::parse(r#"{"type":"nope"}"#, &[])
            .unwrap_err()
            .to_string()
            .contains("not a valid Avro schema")
    );
}

#[test]
fn references_name_types_of_other_schemas() {
    let inner =
        r#"{"type":"record","name":"Inner","namespace":"x","fields":[{"name":"v","type":"int"}]}"#;
    let outer = r#"{"type":"record","name":"Outer","namespace":"x","fields":[{"name":"i","type":"x.Inner"}]}"#;
    let schema = AvroSchema::parse(outer, &[inner]).unwrap();
    let out = round_trip(&schema, &val(r#"{"i":{"v":2}}"#)).unwrap();
    assert_eq!(json(&out), r#"{"i":{"v":2}}"#);
}
