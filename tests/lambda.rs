//! `sluice lambda` end to end: the built binary serves cargo-lambda's emulator of the Lambda
//! runtime API (`cargo lambda watch --only-lambda-apis`), is invoked with `cargo lambda invoke`
//! as a JSON, SQS and Kafka event source would invoke it, and writes to a real nats-server.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use serde_json::{Value, json};
use testkit::nats::NatsServer;
use testkit::{Process, free_port, pipeline, sluice, unique, wait_exit, wait_for};

/// A message as a subscriber sees it: subject, payload, and the headers the test looks at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    subject: String,
    payload: String,
    headers: BTreeMap<String, String>,
}

/// `cargo lambda` (the `cargo-lambda` binary that scripts/setup.sh installs).
fn cargo_lambda() -> Command {
    let mut cmd = Command::new("cargo-lambda");
    cmd.arg("lambda");
    cmd
}

/// The runtime API emulator on 127.0.0.1:`port`, once it accepts connections. It reads the
/// package's metadata, so it runs in the package's directory.
fn emulator(port: u16, log: &Path) -> Process {
    let process = Process::spawn(
        cargo_lambda()
            .args([
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()])
            // An invocation nobody answers fails the test within a minute instead of hanging.
            .args(["--timeout", "60"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("emulator log")),
    );
    wait_for(
        "the Lambda emulator to listen",
        Duration::from_secs(60),
        || TcpStream::connect(("127.0.0.1", port)).ok(),
    );
    process
}

/// Invokes the function through the emulator with `payload`; its answer, or the error text.
fn invoke(port: u16, payload: &Value) -> Result<Value, String> {
    let out = cargo_lambda()
        .args(["invoke", "--invoke-address", "127.0.0.1"])
        .args([
            "--invoke-port",
            &port.to_string(),
            "--output-format",
            "json",
        ])
        .args(["--data-ascii", &payload.to_string()])
        .output()
        .expect("cargo-lambda is installed (scripts/setup.sh test)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("the answer is JSON"))
}

async fn invoke_async(port: u16, payload: Value) -> Result<Value, String> {
    tokio::task::spawn_blocking(move || invoke(port, &payload))
        .await
        .expect("invoke")
}

fn sqs_message(id: &str, body: &str) -> Value {
    json!({
        "messageId": id,
        "receiptHandle": format!("handle-{id}"),
        "body": body,
        "attributes": {"SentTimestamp": "1795970000000"},
        "messageAttributes": {"tenant": {"stringValue": "acme", "dataType": "String"}},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:orders",
        "awsRegion": "eu-west-1",
    })
}

fn kafka_record(partition: i64, offset: i64, key: &[u8], value: &[u8], trace: &[u8]) -> Value {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    json!({
        "topic": "orders", "partition": partition, "offset": offset,
        "timestamp": 1_795_970_000_000i64, "timestampType": "CREATE_TIME",
        "key": b64(key), "value": b64(value), "headers": [{"trace": trace}],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_are_delivered_to_nats_and_answered_as_each_event_source_expects() {
    let server = NatsServer::start();
    let out = unique("lambda-out");
    let dir = tempfile::tempdir().unwrap();
    // The input would generate events of its own: lambda mode must not run it.
    let file = pipeline(
        dir.path(),
        "orders",
        &format!(
            "\
input:
  generate:
    template: '{{generated: .}}'
transforms:
  - filter: '.skip != true'
  - route:
      destination: '\"{out}.\" + $source.kind'
      headers:
        x-key: '$key'
        x-request: '$source.request'
output:
  nats:
    url: {url}
    subject: {out}.unrouted
errors:
  output:
    nats:
      url: {url}
      subject: {out}.dead
",
            url = server.url()
        ),
    );
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut subscription = client.subscribe(format!("{out}.>")).await.unwrap();
    client.flush().await.unwrap();

    let port = free_port();
    let _emulator = emulator(port, &dir.path().join("emulator.log"));
    let log = dir.path().join("sluice.log");
    let mut function = Process::spawn(
        sluice!()
            .args(["lambda", "--log-format", "json"])
            .arg(&file)
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    let logged = |message: &str| testkit::logged(&log, message);
    let started = testkit::try_wait_for(Duration::from_secs(30), || {
        logged("pipeline started").then_some(())
    });
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(started.is_some(), "the pipeline did not start:\n{}", text());

    let direct = invoke_async(port, json!([{"n": 1}, {"n": 2, "skip": true}, {"n": 3}])).await;
    assert_eq!(direct, Ok(json!({"accepted": 3, "dead_lettered": 0})));

    let sqs = json!({"Records": [
        sqs_message("m1", r#"{"n":4}"#),
        sqs_message("m2", "not json"),
        sqs_message("m3", r#"{"n":5}"#),
    ]});
    let sqs = invoke_async(port, sqs).await;
    assert_eq!(
        sqs,
        Ok(json!({"batchItemFailures": []})),
        "delivered and dead-lettered messages are all done"
    );

    let kafka = json!({
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:eu-west-1:123456789012:cluster/demo/abc",
        "bootstrapServers": "b-1.demo.kafka.eu-west-1.amazonaws.com:9092",
        "records": {
            "orders-0": [kafka_record(0, 10, b"order-1", br#"{"n":6}"#, b"t1")],
            "orders-1": [kafka_record(1, 3, b"order-2", br#"{"n":7}"#, b"t2")],
        },
    });
    let kafka = invoke_async(port, kafka).await;
    assert_eq!(kafka, Ok(json!({"accepted": 2, "dead_lettered": 0})));

    // Every answer came after its events were delivered: a round trip to the server brings
    // every message it had for this subscriber.
    client.flush().await.unwrap();
    let mut seen = Vec::new();
    while let Some(Some(msg)) = subscription.next().now_or_never() {
        let headers = msg.headers.iter().flat_map(|h| h.iter());
        let headers: BTreeMap<String, String> = headers
            .filter(|(name, _)| !name.to_string().starts_with("sluice-error-"))
            .map(|(name, values)| (name.to_string(), values[0].to_string()))
            .collect();
        let payload = String::from_utf8_lossy(&msg.payload).into_owned();
        seen.push(Seen {
            subject: msg.subject.to_string(),
            payload,
            headers,
        });
    }
    let request = seen
        .iter()
        .find(|s| s.subject.ends_with(".lambda"))
        .and_then(|s| s.headers.get("x-request").cloned())
        .expect("the direct invocation's events arrived");
    let header = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    let event = |kind: &str, payload: &str, headers: &[(&str, &str)]| Seen {
        subject: format!("{out}.{kind}"),
        payload: payload.to_string(),
        headers: header(headers),
    };
    let mut expected = vec![
        event("lambda", r#"{"n":1}"#, &[("x-request", &request)]),
        event("lambda", r#"{"n":3}"#, &[("x-request", &request)]),
        event(
            "sqs",
            r#"{"n":4}"#,
            &[("tenant", "acme"), ("x-request", "m1")],
        ),
        event(
            "sqs",
            r#"{"n":5}"#,
            &[("tenant", "acme"), ("x-request", "m3")],
        ),
        event("dead", "not json", &[("tenant", "acme")]),
        event(
            "kafka",
            r#"{"n":6}"#,
            &[("trace", "t1"), ("x-key", "order-1")],
        ),
        event(
            "kafka",
            r#"{"n":7}"#,
            &[("trace", "t2"), ("x-key", "order-2")],
        ),
    ];
    expected.sort();
    seen.sort();
    assert_eq!(
        seen, expected,
        "exactly these events, and no generated ones"
    );

    testkit::signal(&function, "TERM");
    let status = wait_exit(&mut function, Duration::from_secs(30));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        status.success(),
        "exit {status} after SIGTERM; log:\n{text}"
    );
    let summary = testkit::log_records(&text, "pipeline stopped");
    assert_eq!(summary.len(), 1, "{text}");
    assert_eq!(summary[0]["received"], 8, "{}", summary[0]);
    assert_eq!(summary[0]["dead_lettered"], 1, "{}", summary[0]);
    assert_eq!(summary[0]["filtered"], 1, "{}", summary[0]);
}
