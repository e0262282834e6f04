//! Invocations of every shape answered through a handler over a stand-in pipeline, and the
//! checks of the function's environment.

use super::*;
use crate::context::PipelineContext;
use crate::event::Event;
use crate::observe::Telemetry;
use crate::source::intake::Intake;
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};
use std::sync::Mutex;
use tokio::sync::mpsc;

/// An event as the pipeline saw it.
#[derive(Debug, PartialEq)]
struct Seen {
    payload: String,
    key: Option<String>,
    headers: Vec<(String, String)>,
    timestamp: Option<i64>,
    position: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A handler over a pipeline that finishes each event as its payload says: `fail` failed,
/// `dead` dead-lettered, `hold` never, anything else delivered. Also what the pipeline saw,
/// and the token that stops it.
fn handler() -> (Handler, Log, CancellationToken) {
    let cx = PipelineContext::new("lambda", 1 << 20);
    let (tx, mut rx) = mpsc::channel::<Vec<Event>>(4);
    let stop = CancellationToken::new();
    let budget = cx.budget().clone();
    let intake = Intake::new(tx, Telemetry::new("lambda"), budget, stop.clone(), 2);
    let counted = cx.ack_counter();
    let submitter = Submitter::new(intake, cx, counted);
    let log: Log = Arc::default();
    let seen = log.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(batch) = rx.recv().await {
            for e in batch {
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                let payload = text(&e.payload);
                seen.lock().unwrap().push(Seen {
                    payload: payload.clone(),
                    key: e.key.as_deref().map(text),
                    headers: e
                        .headers
                        .iter()
                        .map(|(n, v)| (n.clone(), text(v)))
                        .collect(),
                    timestamp: e.timestamp,
                    position: e.position.to_string(),
                });
                let outcome = match payload {
                    p if p.contains("hold") => {
                        held.push(e);
                        continue;
                    }
                    p if p.contains("fail") => Outcome::Failed,
                    p if p.contains("dead") => Outcome::Rejected,
                    _ => Outcome::Delivered,
                };
                e.ack.complete(outcome);
            }
        }
    });
    let handler = Handler::new(submitter, Codec::Json, Duration::from_secs(5), "lambda");
    (handler, log, stop)
}

async fn invoke(handler: &Handler, payload: Value) -> Result<Value, InvocationError> {
    let raw = RawValue::from_string(payload.to_string()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let answer = handler.invoke(&raw, "req-1", deadline).await?;
    Ok(serde_json::to_value(answer).unwrap())
}

fn msk(records: Value) -> Value {
    json!({
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:eu-west-1:123456789012:cluster/demo/abc",
        "bootstrapServers": "b-1.demo.kafka.eu-west-1.amazonaws.com:9092",
        "records": records,
    })
}

fn kafka_record(partition: i64, offset: i64, key: &str, value: &str) -> Value {
    json!({
        "topic": "orders", "partition": partition, "offset": offset,
        "timestamp": 1_700_000_000_000i64 + offset, "timestampType": "CREATE_TIME",
        "key": key, "value": value,
        "headers": [{"tenant": [97, 99, 109, 101]}, {"trace": [118, 49]}],
    })
}

#[tokio::test]
async fn kafka_records_become_events_and_the_batch_succeeds_once_all_are_delivered() {
    let (handler, log, _stop) = handler();
    // `{"id":1}` and `{"id":3}` with keys order-1 and order-3, on two partitions.
    let event = msk(json!({
        "orders-1": [kafka_record(1, 7, "b3JkZXItMw==", "eyJpZCI6M30=")],
        "orders-0": [kafka_record(0, 15, "b3JkZXItMQ==", "eyJpZCI6MX0=")],
    }));
    let answer = invoke(&handler, event).await.unwrap();
    assert_eq!(answer, json!({"accepted": 2, "dead_lettered": 0}));
    let headers = vec![
        ("tenant".to_string(), "acme".to_string()),
        ("trace".to_string(), "v1".to_string()),
    ];
    assert_eq!(
        *log.lock().unwrap(),
        [
            Seen {
                payload: r#"{"id":1}"#.into(),
                key: Some("order-1".into()),
                headers: headers.clone(),
                timestamp: Some(1_700_000_000_015),
                position: "kafka:orders/0@15".into(),
            },
            Seen {
                payload: r#"{"id":3}"#.into(),
                key: Some("order-3".into()),
                headers,
                timestamp: Some(1_700_000_000_007),
                position: "kafka:orders/1@7".into(),
            },
        ]
    );
}

#[tokio::test]
async fn a_kafka_batch_with_a_record_not_delivered_is_an_error_so_it_is_retried() {
    let (handler, log, _stop) = handler();
    let event = json!({
        "eventSource": "SelfManagedKafka",
        "records": {"orders-0": [
            kafka_record(0, 1, "b3JkZXItMQ==", "eyJpZCI6MX0="),
            // {"id":2,"fail":true}
            kafka_record(0, 2, "b3JkZXItMg==", "eyJpZCI6MiwiZmFpbCI6dHJ1ZX0="),
        ]},
    });
    let error = invoke(&handler, event).await.unwrap_err();
    assert!(matches!(
        error,
        InvocationError::NotDelivered {
            total: 2,
            failed: 1,
            unfinished: 0
        }
    ));
    assert_eq!(Diagnostic::from(error).error_type, "sluice.NotDelivered");
    assert_eq!(log.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_kafka_value_that_is_not_base64_is_a_malformed_event() {
    let (handler, log, _stop) = handler();
    let event = msk(json!({"orders-0": [kafka_record(0, 1, "b3JkZXItMQ==", "%%%")]}));
    let error = invoke(&handler, event).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("record orders/0@1: the value is not base64"),
        "{error}"
    );
    assert!(log.lock().unwrap().is_empty(), "nothing was submitted");
}

fn sqs_message(id: &str, body: &str) -> Value {
    json!({
        "messageId": id,
        "receiptHandle": "AQEB",
        "body": body,
        "attributes": {"SentTimestamp": "1700000000123", "MessageGroupId": "g1"},
        "messageAttributes": {
            "tenant": {"stringValue": "acme", "dataType": "String"},
            "priority": {"stringValue": "5", "dataType": "Number"},
            "blob": {"binaryValue": "AAE=", "dataType": "Binary"},
        },
        "md5OfBody": "x",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:orders",
        "awsRegion": "eu-west-1",
    })
}

#[tokio::test]
async fn sqs_lists_exactly_the_messages_not_delivered_as_batch_item_failures() {
    let (handler, log, _stop) = handler();
    let event = json!({"Records": [
        sqs_message("m1", r#"{"id":1}"#),
        sqs_message("m2", r#"{"id":2,"fail":true}"#),
        sqs_message("m3", r#"{"id":3,"dead":true}"#),
        sqs_message("m4", r#"{"id":4}"#),
    ]});
    let answer = invoke(&handler, event).await.unwrap();
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "m2"}]}),
        "delivered and dead-lettered messages are done; the failed one is retried"
    );
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 4);
    assert_eq!(
        log[0],
        Seen {
            payload: r#"{"id":1}"#.into(),
            key: Some("g1".into()),
            headers: vec![
                ("priority".into(), "5".into()),
                ("tenant".into(), "acme".into())
            ],
            timestamp: Some(1_700_000_000_123),
            position: "sqs:m1#0".into(),
        }
    );
}

#[tokio::test(start_paused = true)]
async fn sqs_messages_unfinished_at_the_deadline_are_failures() {
    let (handler, _log, _stop) = handler();
    let event = json!({"Records": [
        sqs_message("m1", r#"{"id":1}"#),
        sqs_message("m2", r#"{"id":2,"hold":true}"#),
    ]});
    let raw = RawValue::from_string(event.to_string()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let answer = handler.invoke(&raw, "req-1", deadline).await.unwrap();
    assert_eq!(
        serde_json::to_value(answer).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "m2"}]})
    );
}

#[tokio::test]
async fn a_stopping_pipeline_refuses_every_record() {
    let (handler, log, stop) = handler();
    stop.cancel();
    let event = json!({"Records": [sqs_message("m1", "{}"), sqs_message("m2", "{}")]});
    let answer = invoke(&handler, event).await.unwrap();
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]})
    );
    let error = invoke(&handler, json!([1, 2])).await.unwrap_err();
    assert!(matches!(error, InvocationError::Closed));
    assert!(log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_json_array_is_one_event_per_item_answered_with_counts() {
    let (handler, log, _stop) = handler();
    let answer = invoke(&handler, json!([{"a": 1}, {"dead": true}, 3])).await;
    assert_eq!(answer.unwrap(), json!({"accepted": 2, "dead_lettered": 1}));
    let log = log.lock().unwrap();
    let seen: Vec<_> = log
        .iter()
        .map(|s| (s.payload.as_str(), s.position.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (r#"{"a":1}"#, "lambda:req-1#0"),
            (r#"{"dead":true}"#, "lambda:req-1#1"),
            ("3", "lambda:req-1#2")
        ]
    );
    assert!(log[0].timestamp.is_some() && log[0].key.is_none());
}

#[tokio::test]
async fn a_json_value_not_delivered_is_an_error() {
    let (handler, _log, _stop) = handler();
    let error = invoke(&handler, json!({"fail": 1})).await.unwrap_err();
    assert!(matches!(
        error,
        InvocationError::NotDelivered {
            total: 1,
            failed: 1,
            ..
        }
    ));
}

fn http_api(body: &str, base64: bool) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "POST /events",
        "rawPath": "/events",
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "x", "domainPrefix": "x",
            "http": {"method": "POST", "path": "/events", "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.1", "userAgent": "curl"},
            "requestId": "r", "routeKey": "POST /events", "stage": "$default",
            "time": "29/Nov/2026:18:00:00 +0000", "timeEpoch": 1_795_970_000_000i64,
        },
        "body": body,
        "isBase64Encoded": base64,
    })
}

#[tokio::test]
async fn api_gateway_requests_are_answered_with_a_status_code() {
    let (handler, log, _stop) = handler();
    let answer = invoke(&handler, http_api(r#"[{"a":1},{"b":2}]"#, false)).await;
    let answer = answer.unwrap();
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(answer["headers"]["content-type"], "application/json");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"accepted": 2, "dead_lettered": 0}));

    // {"fail":1}, base64-encoded.
    let answer = invoke(&handler, http_api("eyJmYWlsIjoxfQ==", true)).await;
    assert_eq!(answer.unwrap()["statusCode"], 503);
    let answer = invoke(&handler, http_api("{not json", false)).await;
    assert_eq!(answer.unwrap()["statusCode"], 400);
    let payloads: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.payload.clone())
        .collect();
    assert_eq!(payloads, [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"fail":1}"#]);

    let rest = json!({
        "resource": "/events", "path": "/events", "httpMethod": "POST",
        "headers": {"Content-Type": "application/x-ndjson"},
        "requestContext": {"accountId": "123456789012", "resourceId": "r", "stage": "prod",
                           "requestId": "q", "httpMethod": "POST", "apiId": "api"},
        "body": "{\"n\":1}\n{\"n\":2}\n",
        "isBase64Encoded": false,
    });
    let answer = invoke(&handler, rest).await.unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(log.lock().unwrap().len(), 5);
}

#[test]
fn an_invocation_is_answered_a_little_before_its_deadline() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    assert_eq!(
        answer_within(now + Duration::from_secs(30), now),
        Duration::from_secs(30) - ANSWER_MARGIN
    );
    assert_eq!(
        answer_within(now + Duration::from_millis(100), now),
        Duration::ZERO
    );
    // Emulators send 0, or the timeout itself, as the deadline.
    let not_a_deadline = SystemTime::UNIX_EPOCH + Duration::from_secs(600);
    assert_eq!(
        answer_within(not_a_deadline, now),
        LONGEST_TIMEOUT - ANSWER_MARGIN
    );
}

#[test]
fn the_lambda_environment_is_checked_before_the_runtime_client_would_panic_on_it() {
    // Variables changed from a complete environment, and what the check says then.
    type Case = (
        &'static [(&'static str, &'static str)],
        Result<(), &'static str>,
    );
    let cases: [Case; 5] = [
        (&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")], Ok(())),
        (
            &[("AWS_LAMBDA_RUNTIME_API", "http://127.0.0.1:9000/.rt")],
            Ok(()),
        ),
        (
            &[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9000/.rt")],
            Err("not a host:port or URL"),
        ),
        (
            &[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots")],
            Err("not a number"),
        ),
        (&[("AWS_LAMBDA_FUNCTION_NAME", "")], Ok(())),
    ];
    let base = [
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
        ("AWS_LAMBDA_FUNCTION_NAME", "orders"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ];
    for (changes, expected) in cases {
        let mut env: std::collections::HashMap<_, _> = base.into_iter().collect();
        env.extend(changes.iter().copied());
        let checked = check(|name| env.get(name).map(|v| v.to_string()));
        match expected {
            Ok(()) => assert!(checked.is_ok(), "{changes:?}: {checked:?}"),
            Err(text) => assert!(
                checked.unwrap_err().to_string().contains(text),
                "{changes:?}"
            ),
        }
    }
    let none = check(|_| None).unwrap_err();
    assert_eq!(
        none.to_string(),
        "not running as an AWS Lambda function: AWS_LAMBDA_RUNTIME_API is not set"
    );
}
