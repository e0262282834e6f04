//! The payloads the event properties feed in: JSON values (objects most often), corrupted as
//! fuzzers corrupt bytes, and soups of JSON tokens and raw bytes.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3i64..4).prop_map(Value::from),
        any::<f64>().prop_filter_map("not finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        any::<String>().prop_map(Value::String),
        "[a-z]{0,3}".prop_map(Value::String),
    ]
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["id", "a", "b", "x", "items", "count", ""])
            .prop_map(String::from),
        any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Corruption {
    Truncate(Index),
    Delete(Index),
    Insert(Index, u8),
    Flip(Index, u8),
}

fn corruption() -> impl Strategy<Value = Corruption> {
    let byte = prop_oneof![
        prop::sample::select(b"{}[],:\"\\ \n\0\xff\xc3".to_vec()),
        any::<u8>(),
    ];
    prop_oneof![
        any::<Index>().prop_map(Corruption::Truncate),
        any::<Index>().prop_map(Corruption::Delete),
        (any::<Index>(), byte).prop_map(|(i, b)| Corruption::Insert(i, b)),
        (any::<Index>(), 1u8..=255).prop_map(|(i, b)| Corruption::Flip(i, b)),
    ]
}

fn corrupt(mut bytes: Vec<u8>, corruptions: &[Corruption]) -> Vec<u8> {
    for c in corruptions {
        match c {
            Corruption::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), *b),
            _ if bytes.is_empty() => {}
            Corruption::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            Corruption::Delete(i) => {
                bytes.remove(i.index(bytes.len()));
            }
            Corruption::Flip(i, b) => {
                let at = i.index(bytes.len());
                bytes[at] ^= b;
            }
        }
    }
    bytes
}

/// Objects more often than anything else: they are what the programs look into.
pub(super) fn json_payload() -> impl Strategy<Value = Vec<u8>> {
    let object = prop::collection::vec((json_key(), json_value()), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()));
    (
        prop_oneof![3 => object, 1 => json_value()],
        any::<bool>(),
        prop::collection::vec(corruption(), 0..3),
    )
        .prop_map(|(value, pretty, corruptions)| {
            let text = if pretty {
                serde_json::to_vec_pretty(&value)
            } else {
                serde_json::to_vec(&value)
            };
            corrupt(text.unwrap(), &corruptions)
        })
}

pub(super) fn json_soup() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"",
            "\"a\"",
            "\"x\"",
            "\"items\"",
            "\\",
            "\\u",
            "\\ud800",
            "\\udc00",
            "\\u0000",
            "0",
            "-",
            "1",
            "1e999",
            "-1e999",
            "1.5e-400",
            "123456789012345678901234567890",
            "NaN",
            "Infinity",
            "true",
            "false",
            "null",
            " ",
            "\n",
            "\t",
            "\u{feff}",
            "\0",
            "é",
            "\u{2028}",
        ])
        .prop_map(|t| t.as_bytes().to_vec()),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
}
