//! The JSON codec's tests.

use bytes::Bytes;
use jaq_json::{Num, Val};

use super::{JsonError, decode, decode_fields, escape_into, write_json};

fn roundtrip(input: &str) -> String {
    let v = decode(&Bytes::copy_from_slice(input.as_bytes())).unwrap();
    let mut out = Vec::new();
    write_json(&v, &mut out, 0).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn json_roundtrip_keeps_order_and_values() {
    assert_eq!(
        roundtrip(r#"{"b":1,"a":[true,null,"x\"y\n"],"c":-2.5,"d":{}}"#),
        r#"{"b":1,"a":[true,null,"x\"y\n"],"c":-2.5,"d":{}}"#
    );
    assert_eq!(roundtrip(" 12345678901234567890 "), "12345678901234567890");
    assert_eq!(roundtrip(r#""\u00e9\ud83d\ude00""#), "\"é😀\"");
}

#[test]
fn malformed_inputs_are_errors() {
    for bad in [
        "",
        "{",
        "{\"a\":1} x",
        "NaN",
        "[1,]",
        "{'a':1}",
        "\u{feff}{}",
        "# c\n{}",
    ] {
        assert!(
            matches!(
                decode(&Bytes::copy_from_slice(bad.as_bytes())),
                Err(JsonError::MalformedJson(_))
            ),
            "{bad:?}"
        );
    }
    assert!(decode(&Bytes::from_static(b"\xff\xfe")).is_err());
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    assert!(
        decode(&Bytes::copy_from_slice(deep.as_bytes())).is_err(),
        "deep nesting must be refused, not overflow the stack"
    );
}

fn fields(names: &[&str]) -> Vec<Val> {
    names.iter().map(|n| Val::utf8_str(n.to_string())).collect()
}

#[test]
fn decoding_some_fields_builds_those_and_refuses_what_decode_refuses() {
    let decode_json = |s: &str| decode(&Bytes::copy_from_slice(s.as_bytes()));
    let some = |s: &str, names: &[&str]| {
        decode_fields(&Bytes::copy_from_slice(s.as_bytes()), &fields(names))
    };
    let doc = r#"{"a":1,"b":{"x":[1,"y"]},"c":"s\"t","d":null,"a":2,"st\u0061tus":5}"#;
    let full = decode_json(doc).unwrap();
    let picked = some(doc, &["b", "status", "a", "missing"]).unwrap();
    let Val::Obj(map) = &picked else {
        panic!("not an object: {picked}")
    };
    // Later duplicates win, escaped names match, absent names are absent.
    assert_eq!(map.len(), 3);
    for name in ["a", "b", "status"] {
        let Val::Obj(all) = &full else { panic!() };
        let k = Val::utf8_str(name.to_string());
        assert_eq!(map.get(&k), all.get(&k), "{name}");
    }
    assert_eq!(
        map.get(&Val::utf8_str("a".to_string())),
        Some(&Val::Num(Num::from_integral(2i64)))
    );
    // Anything but an object is decoded whole.
    for other in ["[1,{\"a\":2}]", "\"s\"", "3.5", "null", "true"] {
        assert_eq!(some(other, &["a"]), decode_json(other), "{other}");
    }
    // What decode refuses, in a field that is not built too, with the same reason.
    let deep = format!("{{\"a\":1,\"z\":{}{}}}", "[".repeat(200), "]".repeat(200));
    for bad in [
        r#"{"a":1,"z":1e400}"#,
        r#"{"a":1,"z":"\u00zz"}"#,
        "{\"a\":1,\"z\":\"tab\there\"}",
        r#"{"a":1,"z":[1,]}"#,
        r#"{"a":1,"z":01}"#,
        r#"{"a":1,"z":tru}"#,
        r#"{"a":1,"z":1} x"#,
        r#"{"a":1,"z":1"#,
        deep.as_str(),
    ] {
        let refused = decode_json(bad);
        assert!(refused.is_err(), "{bad}");
        assert_eq!(some(bad, &["a"]), refused, "{bad}");
    }
    let invalid_utf8 = Bytes::from_static(b"{\"a\":1,\"z\":\"\xff\"}");
    assert!(decode(&invalid_utf8).is_err());
    assert_eq!(
        decode_fields(&invalid_utf8, &fields(&["a"])),
        decode(&invalid_utf8)
    );
}

#[test]
fn strings_are_escaped_as_serde_json_escapes_them() {
    let mut every: String = (0u8..0x80).map(char::from).collect();
    every.push_str("é😀\u{2028}\u{7f}");
    for s in [
        every.as_str(),
        "",
        "plain",
        "\"\\",
        "tail\n",
        "\u{1}x\u{1f}",
    ] {
        let mut out = Vec::new();
        escape_into(s, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(s).unwrap(),
            "{s:?}"
        );
    }
}

#[test]
fn strings_share_the_payload_unless_escaped() {
    let payload = Bytes::from(r#"{"plain":"abc","esc":"a\nb","k\u0041":[1,"x"]}"#.to_string());
    let v = decode(&payload).unwrap();
    let Val::Obj(map) = &v else { panic!("{v}") };
    let inside = |b: &Bytes| payload.as_ptr_range().contains(&b.as_ptr());
    let (k, plain) = map.get_index(0).unwrap();
    assert!(
        matches!((k, plain), (Val::TStr(k), Val::TStr(p)) if inside(k) && inside(p) && &p[..] == b"abc")
    );
    assert!(matches!(map.get_index(1).unwrap().1, Val::TStr(e) if !inside(e) && &e[..] == b"a\nb"));
    assert!(matches!(map.get_index(2).unwrap().0, Val::TStr(k) if &k[..] == b"kA"));
    assert_eq!(
        v.to_string(),
        r#"{"plain":"abc","esc":"a\nb","kA":[1,"x"]}"#
    );
}

#[test]
fn non_json_results_are_errors() {
    let mut out = Vec::new();
    assert!(write_json(&Val::Num(Num::Float(f64::NAN)), &mut out, 0).is_err());
    assert!(write_json(&Val::byte_str(Bytes::from_static(b"\xff")), &mut out, 0).is_err());
}
