//! The direct reader's tests: it reads every type as apache-avro does, or leaves the body to it.

use bytes::Bytes;
use jaq_json::Val;

use crate::codec::avro::AvroSchema;
use crate::codec::test_support::{AVRO_ALL as ALL, json, val};

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
        .unwrap_err()
        .to_string();
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
        let err = schema.read(&b, &b, None, None).unwrap_err().to_string();
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

    let inner =
        r#"{"type":"record","name":"Inner","namespace":"x","fields":[{"name":"v","type":"int"}]}"#;
    let outer = r#"{"type":"record","name":"Outer","namespace":"x","fields":[{"name":"i","type":"x.Inner"},{"name":"j","type":["null","x.Inner"]}]}"#;
    let schema = AvroSchema::parse(outer, &[inner]).unwrap();
    let b = body(&schema, r#"{"i":{"v":2},"j":{"v":3}}"#);
    let (apache, direct) = both(&schema, &b);
    assert_eq!(direct.as_deref(), Some(apache.as_str()));
}
