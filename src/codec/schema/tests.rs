//! The registry decoders' tests, against a registry of the test kit: payloads read with the
//! schema their id names, fetched once; the event's faults; an outage held until it ends or
//! shutdown.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::fetch::Fetcher;
use super::registry::{RegisteredAvro, RegisteredProtobuf, RegistryDecoder};
use crate::client::registry::{Registry, RegistryConfig};
use crate::client::retry::RetryConfig;
use crate::codec::avro::AvroSchema;
use crate::codec::error::DecodeError;
use crate::codec::format::Decode;
use crate::codec::protobuf::{self, ProtoSchema};
use crate::codec::test_support::{json, val};
use crate::codec::wire;
use crate::config::HumanDuration;
use crate::delivery::{Cause, ErrorKind};
use testkit::registry::Registry as Server;

const ORDER: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"item","type":"string"}]}"#;

struct Setup {
    server: Server,
    runtime: tokio::runtime::Runtime,
    stop: CancellationToken,
    fetcher: Fetcher,
}

fn setup() -> Setup {
    let server = Server::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let config: RegistryConfig =
        serde_json::from_value(serde_json::json!({"url": server.url})).unwrap();
    let retry = RetryConfig {
        initial_backoff: HumanDuration(Duration::from_millis(5)),
        max_backoff: HumanDuration(Duration::from_millis(20)),
        ..RetryConfig::default()
    };
    let stop = CancellationToken::new();
    let tls = crate::client::tls::trusting_nothing().unwrap();
    let registry = Registry::new(&config, tls, retry, stop.clone()).unwrap();
    let fetcher = Fetcher::new(Arc::new(registry), runtime.handle().clone());
    Setup {
        server,
        runtime,
        stop,
        fetcher,
    }
}

fn framed(id: u32, body: &[u8]) -> Bytes {
    let mut out = Vec::new();
    wire::header(id, &mut out);
    out.extend_from_slice(body);
    Bytes::from(out)
}

/// Avro payloads of whichever schema their id names.
fn avro(fetcher: &Fetcher, reader: Option<Arc<AvroSchema>>) -> RegistryDecoder<RegisteredAvro> {
    RegistryDecoder::new(
        fetcher.clone(),
        RegisteredAvro {
            reader,
            fields: None,
        },
    )
}

fn avro_body(schema: &str, json_value: &str) -> Vec<u8> {
    let mut body = Vec::new();
    AvroSchema::parse(schema, &[])
        .unwrap()
        .encode(&val(json_value), &mut body)
        .unwrap();
    body
}

#[test]
fn avro_payloads_are_read_with_the_schema_their_id_names() {
    let s = setup();
    let id = s.server.register("orders-value", "AVRO", ORDER);
    let mut decoder = avro(&s.fetcher, None);
    let payload = framed(id, &avro_body(ORDER, r#"{"id":1,"item":"tea"}"#));
    for _ in 0..3 {
        let out = decoder.decode(&payload).unwrap();
        assert_eq!(json(&out), r#"{"id":1,"item":"tea"}"#);
    }
    let fetched = s
        .server
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /schemas/ids/"))
        .count();
    assert_eq!(fetched, 1);
}

#[test]
fn bad_avro_payloads_are_the_events_fault_with_a_reason() {
    let s = setup();
    let id = s.server.register("orders-value", "AVRO", ORDER);
    let proto = s
        .server
        .register("p-value", "PROTOBUF", "syntax = \"proto3\"; message M {}");
    let mut decoder = avro(&s.fetcher, None);
    let body = avro_body(ORDER, r#"{"id":1,"item":"tea"}"#);
    let cases = [
        (framed(id + 100, &body), "is not registered"),
        (framed(proto, &body), "is a Protobuf schema, not Avro"),
        (
            Bytes::from_static(&[1, 0, 0, 0, 1, 2]),
            "not the Schema Registry wire format's 0x00",
        ),
        (Bytes::from_static(&[0, 0]), "too short"),
        (
            framed(id, &body[..body.len() - 1]),
            "ends inside the value its schema describes",
        ),
    ];
    for (payload, want) in cases {
        match decoder.decode(&payload) {
            Err(e) if e.kind() == ErrorKind::Refused(Cause::Event) => {
                let reason = e.to_string();
                assert!(reason.contains(want), "{reason}");
            }
            other => panic!("{want}: {other:?}"),
        }
    }
}

#[test]
fn a_registry_outage_holds_the_worker_until_it_ends_or_shutdown() {
    let s = setup();
    let id = s.server.register("orders-value", "AVRO", ORDER);
    let payload = framed(id, &avro_body(ORDER, r#"{"id":2,"item":"jam"}"#));
    s.server.set_down(true);
    let fetcher = s.fetcher.clone();
    let worker =
        std::thread::spawn(move || avro(&fetcher, None).decode(&payload).map(|v| json(&v)));
    let path = format!("GET /schemas/ids/{id}");
    testkit::wait::wait_for("retries", Duration::from_secs(10), || {
        (s.server.requests().iter().filter(|r| **r == path).count() >= 3).then_some(())
    });
    assert!(!worker.is_finished());
    s.server.set_down(false);
    assert_eq!(worker.join().unwrap().unwrap(), r#"{"id":2,"item":"jam"}"#);

    let other = s.server.register("other-value", "AVRO", r#""string""#);
    s.server.set_down(true);
    let fetcher = s.fetcher.clone();
    let worker = std::thread::spawn(move || {
        avro(&fetcher, None)
            .decode(&framed(other, &[2, b'x']))
            .map(|v| json(&v))
    });
    let path = format!("GET /schemas/ids/{other}");
    testkit::wait::wait_for("a request", Duration::from_secs(10), || {
        s.server.requests().contains(&path).then_some(())
    });
    s.stop.cancel();
    assert!(matches!(
        worker.join().unwrap(),
        Err(DecodeError::Stopped(_))
    ));
    drop(s.runtime);
}

#[test]
fn a_reader_schema_reads_what_older_writers_wrote() {
    let s = setup();
    let id = s.server.register("orders-value", "AVRO", ORDER);
    let reader = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"item","type":"string"},{"name":"qty","type":"int","default":1}]}"#;
    let reader = Arc::new(AvroSchema::parse(reader, &[]).unwrap());
    let mut decoder = avro(&s.fetcher, Some(reader));
    let payload = framed(id, &avro_body(ORDER, r#"{"id":3,"item":"oats"}"#));
    assert_eq!(
        json(&decoder.decode(&payload).unwrap()),
        r#"{"id":3,"item":"oats","qty":1}"#
    );
}

#[test]
fn protobuf_payloads_name_their_message_type_by_indexes() {
    let s = setup();
    let text = "syntax = \"proto3\"; package p; message A { string a = 1; } message B { int64 b = 1; message C { bool c = 1; } }";
    let id = s.server.register("p-value", "PROTOBUF", text);
    let schema = ProtoSchema::from_registry(text, &[]).unwrap();
    let mut decoder = RegistryDecoder::new(s.fetcher.clone(), RegisteredProtobuf);
    for (name, path, value) in [
        ("p.A", vec![0], r#"{"a":"x"}"#),
        ("p.B", vec![1], r#"{"b":5}"#),
        ("p.B.C", vec![1, 0], r#"{"c":true}"#),
    ] {
        let message = schema.message(name).unwrap();
        let mut payload = Vec::new();
        wire::header(id, &mut payload);
        wire::write_indexes(&path, &mut payload);
        protobuf::encode(&message, &val(value), &mut payload).unwrap();
        let payload = Bytes::from(payload);
        assert_eq!(json(&decoder.decode(&payload).unwrap()), value, "{name}");
    }
    let mut payload = Vec::new();
    wire::header(id, &mut payload);
    wire::write_indexes(&[5], &mut payload);
    match decoder.decode(&Bytes::from(payload)) {
        Err(e @ DecodeError::NoMessage { .. }) => assert!(
            e.to_string().contains("no message type at indexes [5]"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
}
