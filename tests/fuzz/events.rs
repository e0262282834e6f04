//! Event decoding and jq transforms: any payload through every stage gives outputs or a failing
//! step with a reason, JSON output is strict JSON, and where the result is known from the input
//! alone, it is that.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::Value;
use sluice::codec::{self, Codec};
use sluice::event::Position;
use sluice::transform::{Chain, Record};

use super::loading::load;
use super::payloads::{json_payload, json_soup};
use super::{WORKER_STACK, config, corpus};

/// A pipeline's transform stage as its worker threads run it.
pub(super) struct Stage {
    pub(super) name: &'static str,
    pub(super) codec: Codec,
    pub(super) chain: Chain,
}

/// The transforms of the stages, as pipeline files write them.
const STAGES: &[(&str, &str, &str)] = &[
    ("identity", "json", "- jq: '.'"),
    ("pick", "json", "- jq: '{id, v: .a.b}'"),
    ("items", "json", "- jq: '.items[]?'"),
    ("select", "json", "- jq: 'select(.x > 1)'"),
    ("tostring", "json", "- jq: 'tostring'"),
    ("count", "json", "- jq: '.count + 1'"),
    ("roundtrip", "json", "- jq: 'tojson | fromjson'"),
    ("paths", "json", "- jq: '[paths] | length'"),
    (
        "chain",
        "json",
        "- filter: '.x != null'\n  - jq: '{x, n: (.x | length)}'\n  - route:\n      key: '.x | tostring'\n      headers:\n        h: '.n'",
    ),
    ("raw-fromjson", "raw", "- jq: 'fromjson'"),
    ("raw-tonumber", "raw", "- jq: 'tonumber'"),
    (
        "raw-text",
        "raw",
        "- jq: '[length, .[1:3], ascii_downcase, explode] | tojson'",
    ),
    ("raw-base64", "raw", "- jq: '@base64d'"),
];

fn stages() -> Vec<Stage> {
    STAGES
        .iter()
        .map(|(name, codec, transforms)| {
            let text = format!(
                "input:\n  stdin: {{codec: {codec}}}\ntransforms:\n  {transforms}\noutput:\n  stdout: {{}}\nerrors: drop\n"
            );
            let pipeline = load(&text).unwrap_or_else(|d| panic!("{name}: {d:#?}"));
            let config = pipeline.config;
            Stage {
                name,
                codec: config.input.codec().plain(),
                chain: Chain::build(&config.transforms, config.settings.max_fanout).unwrap(),
            }
        })
        .collect()
}

/// Decode, chain, encode: what `pipeline::worker::Worker::one` does with an event. Either
/// every output payload or the failing step and its reason.
pub(super) fn run(stage: &Stage, payload: &[u8]) -> Result<Vec<Vec<u8>>, (String, String)> {
    let value = codec::decode(stage.codec, &Bytes::copy_from_slice(payload))
        .map_err(|e| ("decode".to_string(), e.to_string()))?;
    let record = Record {
        value,
        key: Some(Bytes::from_static(b"key")),
        headers: vec![("h".into(), Bytes::from_static(b"v"))],
        timestamp: Some(1_700_000_000_000),
        destination: None,
        partition: None,
    };
    let position = Position::Generated { seq: 7 };
    let mut records = Vec::new();
    stage
        .chain
        .run(record, &position, &mut records)
        .map_err(|e| (e.step.to_string(), e.reason))?;
    records
        .into_iter()
        .map(|r| {
            let mut out = Vec::new();
            codec::encode(stage.codec, &r.value, &mut out)
                .map_err(|e| ("encode".to_string(), e.to_string()))?;
            Ok(out)
        })
        .collect()
}

fn json(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}

/// Equal JSON values; floats compare by value (so `1.0` and `1e0` are the same).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or_default(),
                y.as_f64().unwrap_or_default(),
            );
            x == y
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// Outputs (parsed as JSON) are `expected`, or both are a failure.
fn check_outputs(
    stage: &Stage,
    payload: &[u8],
    got: &Option<Vec<Option<Value>>>,
    expected: Option<Vec<Value>>,
) -> Result<(), TestCaseError> {
    let same = match (got, &expected) {
        (None, None) => true,
        (Some(got), Some(expected)) => {
            got.len() == expected.len()
                && got
                    .iter()
                    .zip(expected)
                    .all(|(g, e)| g.as_ref().is_some_and(|g| same_json(g, e)))
        }
        _ => false,
    };
    prop_assert!(
        same,
        "{}: {} gave {:?}, expected {:?}",
        stage.name,
        String::from_utf8_lossy(payload),
        got,
        expected
    );
    Ok(())
}

/// The jq type order: null < false < true < numbers < strings < arrays < objects.
fn greater_than_one(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null | Value::Bool(_)) => false,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f > 1.0),
        Some(_) => true,
    }
}

/// Runs `payload` through every stage and checks the outcome: any input gives outputs or a
/// reason; JSON output is strict JSON; and where the result is known from the input alone, the
/// result is that.
fn check_event(stages: &[Stage], payload: &[u8]) -> Result<(), TestCaseError> {
    let input = json(payload);
    for stage in stages {
        let result = run(stage, payload);
        let outputs = match &result {
            Err((step, reason)) => {
                prop_assert!(
                    !step.is_empty() && !reason.is_empty(),
                    "{}: empty failure {result:?}",
                    stage.name
                );
                if stage.codec == Codec::Json && step == "decode" {
                    prop_assert!(
                        input.is_none(),
                        "{}: valid JSON refused: {reason}",
                        stage.name
                    );
                }
                None
            }
            Ok(outputs) => {
                if stage.codec == Codec::Json {
                    prop_assert!(input.is_some(), "{}: invalid JSON accepted", stage.name);
                    for out in outputs {
                        prop_assert!(
                            json(out).is_some(),
                            "{}: output is not JSON: {:?}",
                            stage.name,
                            String::from_utf8_lossy(out)
                        );
                    }
                }
                Some(outputs.iter().map(|o| json(o)).collect::<Vec<_>>())
            }
        };
        let Some(input) = &input else { continue };
        let object = input.as_object();
        match stage.name {
            "identity" | "roundtrip" => {
                check_outputs(stage, payload, &outputs, Some(vec![input.clone()]))?;
            }
            "pick" => {
                if let Some(o) = object {
                    let v = match o.get("a") {
                        None | Some(Value::Null) => Some(Value::Null),
                        Some(Value::Object(a)) => Some(a.get("b").cloned().unwrap_or(Value::Null)),
                        Some(_) => None,
                    };
                    let id = o.get("id").cloned().unwrap_or(Value::Null);
                    let expected = v.map(|v| vec![serde_json::json!({"id": id, "v": v})]);
                    check_outputs(stage, payload, &outputs, expected)?;
                }
            }
            "items" => {
                if let Some(o) = object {
                    let (mut got, mut expected) = (outputs.clone(), Vec::new());
                    match o.get("items") {
                        // One input may not fan out to more than settings.max_fanout events.
                        Some(Value::Array(items)) if items.len() > 10_000 => {
                            let reason = result.as_ref().err().map(|(_, r)| r.as_str());
                            prop_assert!(
                                reason.is_some_and(|r| r.contains("max_fanout")),
                                "{} items gave {:?}",
                                items.len(),
                                reason
                            );
                            continue;
                        }
                        Some(Value::Array(items)) => expected.clone_from(items),
                        Some(Value::Object(items)) => {
                            // This test's objects keep no key order: compare the values sorted.
                            expected = items.values().cloned().collect();
                            expected.sort_by_key(Value::to_string);
                            if let Some(got) = &mut got {
                                got.sort_by_key(|v| v.as_ref().map(Value::to_string));
                            }
                        }
                        _ => {}
                    }
                    check_outputs(stage, payload, &got, Some(expected))?;
                }
            }
            "select" => {
                if let Some(o) = object {
                    let keep = greater_than_one(o.get("x"));
                    let expected = if keep {
                        vec![input.clone()]
                    } else {
                        Vec::new()
                    };
                    check_outputs(stage, payload, &outputs, Some(expected))?;
                }
            }
            "tostring" => {
                let outputs = outputs.unwrap_or_default();
                prop_assert_eq!(outputs.len(), 1);
                let Some(Value::String(s)) = &outputs[0] else {
                    return Err(TestCaseError::fail(format!(
                        "tostring gave {:?}",
                        outputs[0]
                    )));
                };
                match input {
                    Value::String(i) => prop_assert_eq!(s, i),
                    other => {
                        let back = serde_json::from_str::<Value>(s).ok();
                        prop_assert!(
                            back.as_ref().is_some_and(|b| same_json(b, other)),
                            "tostring of {other} gave {s}"
                        );
                    }
                }
            }
            "count" => {
                if let Some(o) = object {
                    let count = o.get("count").unwrap_or(&Value::Null);
                    let fails = !matches!(count, Value::Null | Value::Number(_));
                    prop_assert_eq!(result.is_err(), fails, "{:?}", result);
                    let outputs = outputs.unwrap_or_default();
                    if !fails {
                        prop_assert_eq!(outputs.len(), 1);
                        let got = outputs[0].as_ref();
                        let int = |v: &Value| {
                            v.as_i64()
                                .map(i128::from)
                                .or_else(|| v.as_u64().map(i128::from))
                        };
                        let sum_ok = match (count, got) {
                            (Value::Null, Some(got)) => int(got) == Some(1),
                            // Integers add exactly, or as floats beyond 64 bits.
                            (Value::Number(n), Some(got)) => match (int(count), int(got)) {
                                (Some(c), Some(g)) => g == c + 1,
                                (Some(c), None) => got.as_f64() == Some((c + 1) as f64),
                                _ => n.as_f64().zip(got.as_f64()).is_some_and(|(n, g)| {
                                    same_json(&Value::from(n + 1.0), &Value::from(g))
                                }),
                            },
                            _ => false,
                        };
                        prop_assert!(sum_ok, "{} + 1 gave {:?}", count, got);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

thread_local! {
    static STAGE_SET: Vec<Stage> = stages();
}

proptest! {
    #![proptest_config(config(1024))]

    fn events_never_panic(payload in prop_oneof![
        2 => json_payload(),
        1 => json_soup(),
        1 => any::<Vec<u8>>(),
    ]) {
        STAGE_SET.with(|stages| check_event(stages, &payload))?;
    }
}

/// Runs `f` on a thread with the stack of the pipeline's transform workers.
fn on_worker_stack(f: impl FnOnce() + Send + 'static) {
    let worker = std::thread::Builder::new()
        .name("fuzz-worker".into())
        .stack_size(WORKER_STACK)
        .spawn(f)
        .unwrap();
    if let Err(panic) = worker.join() {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn events_through_transforms() {
    on_worker_stack(events_never_panic);
}

/// Every payload under `tests/corpus/events/` goes through every stage with the same checks.
#[test]
fn event_corpus() {
    on_worker_stack(|| {
        let stages = stages();
        let mut problems = Vec::new();
        for (path, payload) in corpus("tests/corpus/events") {
            if let Err(e) = check_event(&stages, &payload) {
                problems.push(format!("{}: {e}", path.display()));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    });
}

/// A float written with its shortest digits comes out as the same number. Without serde_json's
/// `float_roundtrip` feature, `-3.573772973450967e227` was parsed one unit in the last place off
/// and written as `-3.5737729734509666e227`.
#[test]
fn floats_keep_their_value() {
    let stages = stages();
    let identity = stages.iter().find(|s| s.name == "identity").unwrap();
    for text in [
        "-3.573772973450967e227",
        "2.2250738585072014e-308",
        "0.1",
        "1e300",
    ] {
        let out = run(identity, text.as_bytes()).unwrap();
        let out = String::from_utf8(out[0].clone()).unwrap();
        let want: f64 = text.parse().unwrap();
        let got: f64 = out.parse().unwrap();
        assert_eq!(got.to_bits(), want.to_bits(), "{text} came out as {out}");
    }
}
