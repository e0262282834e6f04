//! Avro and Protobuf payloads at run time: the input's decoder, which finds each payload's
//! schema (from a file, or by the id the payload carries, in the Schema Registry), and caches
//! what it parsed. A decoder belongs to one worker thread; the registry client and its cache of
//! fetched schemas are shared by all of them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use jaq_json::Val;
use prost_reflect::MessageDescriptor;
use serde::Deserialize;

use super::avro::AvroSchema;
use super::protobuf::{self, ProtoSchema};
use super::wire;
use crate::client::registry::{Registry, RegistryConfig, RegistryError, SchemaType};

/// `codec: {avro: ...}`: Avro payloads.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AvroCodecConfig {
    /// The Schema Registry. Each payload is in its wire format (a zero byte and the schema's
    /// id before the body), and the id selects the schema it was written with.
    #[serde(default)]
    pub registry: Option<RegistryConfig>,
    /// An Avro schema file (`.avsc`). Without `registry` every payload is a bare Avro body
    /// written with it; with `registry`, payloads are read as this schema (the reader's schema:
    /// fields it adds take their defaults, fields it lacks are left out).
    #[serde(default)]
    pub schema_file: Option<PathBuf>,
}

/// `codec: {protobuf: ...}`: Protobuf payloads.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtobufCodecConfig {
    /// The Schema Registry. Each payload is in its wire format (a zero byte, the schema's id
    /// and the message type's indexes before the body), which selects the message type.
    #[serde(default)]
    pub registry: Option<RegistryConfig>,
    /// A compiled descriptor set (`protoc --include_imports --descriptor_set_out=FILE`), or a
    /// `.proto` file, compiled when the pipeline loads. Not with `registry`.
    #[serde(default)]
    pub schema_file: Option<PathBuf>,
    /// Where a `.proto` `schema_file`'s imports are looked up, besides its own directory (the
    /// well-known types need none).
    #[serde(default)]
    pub include_paths: Vec<PathBuf>,
    /// The message type of every payload (`package.Message`), with `schema_file`.
    #[serde(default)]
    pub message: Option<String>,
}

/// Why a payload was not decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The payload's fault: it follows the error policy with this reason.
    Event(String),
    /// Shutdown came while the registry was unavailable: the payload is left unfinished.
    Stopped(String),
}

impl From<RegistryError> for DecodeError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Stopped(m) => DecodeError::Stopped(m),
            other => DecodeError::Event(other.to_string()),
        }
    }
}

/// Fetches a schema by id from a worker thread, blocking it (and so the input, by the bounded
/// channels) while the registry is unavailable.
#[derive(Clone)]
pub struct Fetcher {
    registry: Arc<Registry>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.registry.fmt(f)
    }
}

impl Fetcher {
    /// Fetches with `registry` on `runtime` (the pipeline's).
    pub fn new(registry: Arc<Registry>, runtime: tokio::runtime::Handle) -> Fetcher {
        Fetcher { registry, runtime }
    }

    fn by_id(&self, id: u32) -> Result<Arc<crate::client::registry::Schema>, RegistryError> {
        if let Some(schema) = self.registry.cached(id) {
            return Ok(schema);
        }
        self.runtime.block_on(self.registry.by_id(id))
    }

    /// The texts of the schemas `schema` references, fetched by subject and version, each
    /// with the references of its own first.
    fn references(
        &self,
        schema: &crate::client::registry::Schema,
        out: &mut Vec<(String, String)>,
    ) -> Result<(), RegistryError> {
        for r in &schema.references {
            if out.iter().any(|(name, _)| *name == r.name) {
                continue;
            }
            let version = self
                .runtime
                .block_on(self.registry.version(&r.subject, Some(r.version)))?;
            self.references(&version.schema, out)?;
            out.push((r.name.clone(), version.schema.schema));
        }
        Ok(())
    }
}

/// Decodes Avro payloads.
#[derive(Debug)]
pub struct AvroDecoder {
    source: AvroSource,
    /// The only top-level fields the worker's transforms read, when they read only some.
    fields: Option<Vec<Val>>,
    /// Schemas by id, parsed by this worker (or why they could not be).
    parsed: HashMap<u32, Result<Writer, String>>,
}

#[derive(Debug)]
enum AvroSource {
    /// Bare bodies, all of one schema.
    File(Writer),
    /// Wire-format payloads; read as the reader's schema when there is one.
    Registry(Fetcher, Option<Arc<AvroSchema>>),
}

/// A schema payloads were written with, ready to read them.
#[derive(Debug, Clone)]
struct Writer {
    schema: Arc<AvroSchema>,
    /// The reader's schema, unless it is the same as the writer's.
    reader: Option<Arc<AvroSchema>>,
    /// Which fields of the top-level record to build.
    wanted: Option<Arc<[bool]>>,
}

impl Writer {
    fn new(
        schema: Arc<AvroSchema>,
        reader: Option<&Arc<AvroSchema>>,
        fields: Option<&[Val]>,
    ) -> Writer {
        let reader = reader
            .filter(|r| r.canonical() != schema.canonical())
            .cloned();
        let wanted = match (&reader, fields) {
            (None, Some(fields)) => schema.wanted(fields).map(Arc::from),
            _ => None,
        };
        Writer {
            schema,
            reader,
            wanted,
        }
    }

    fn read(&self, payload: &Bytes, body: &[u8]) -> Result<Val, String> {
        self.schema.read(
            payload,
            body,
            self.reader.as_deref(),
            self.wanted.as_deref(),
        )
    }
}

impl AvroDecoder {
    /// Bare bodies of `schema`, of which the transforms read only `fields` when given.
    pub fn file(schema: Arc<AvroSchema>, fields: Option<Vec<Val>>) -> AvroDecoder {
        AvroDecoder {
            source: AvroSource::File(Writer::new(schema, None, fields.as_deref())),
            fields,
            parsed: HashMap::new(),
        }
    }

    /// Wire-format payloads whose schemas `fetcher` fetches, read as `reader` when given, of
    /// which the transforms read only `fields` when given.
    pub fn registry(
        fetcher: Fetcher,
        reader: Option<Arc<AvroSchema>>,
        fields: Option<Vec<Val>>,
    ) -> AvroDecoder {
        AvroDecoder {
            source: AvroSource::Registry(fetcher, reader),
            fields,
            parsed: HashMap::new(),
        }
    }

    /// Decodes one payload.
    pub fn decode(&mut self, payload: &Bytes) -> Result<Val, DecodeError> {
        let (fetcher, reader) = match &self.source {
            AvroSource::Registry(fetcher, reader) => (fetcher, reader),
            AvroSource::File(file) => {
                return file.read(payload, payload).map_err(DecodeError::Event);
            }
        };
        let (id, body) = wire::split(payload).map_err(|e| DecodeError::Event(e.to_string()))?;
        let writer = match self.parsed.get(&id) {
            Some(parsed) => parsed,
            None => {
                let parsed = avro_by_id(fetcher, id)?
                    .map(|s| Writer::new(s, reader.as_ref(), self.fields.as_deref()));
                self.parsed.entry(id).or_insert(parsed)
            }
        }
        .as_ref()
        .map_err(|e| DecodeError::Event(e.clone()))?;
        writer
            .read(payload, body)
            .map_err(|e| DecodeError::Event(format!("schema id {id}: {e}")))
    }
}

/// Schema `id` parsed as Avro: an error for the event when it is not an Avro schema or does
/// not parse.
fn avro_by_id(fetcher: &Fetcher, id: u32) -> Result<Result<Arc<AvroSchema>, String>, DecodeError> {
    let schema = match fetcher.by_id(id) {
        Ok(schema) => schema,
        Err(RegistryError::NotFound(m)) => return Ok(Err(m)),
        Err(e) => return Err(e.into()),
    };
    if schema.schema_type != SchemaType::Avro {
        return Ok(Err(format!(
            "schema id {id} is a {:?} schema, not Avro",
            schema.schema_type
        )));
    }
    let mut references = Vec::new();
    fetcher.references(&schema, &mut references)?;
    let texts: Vec<&str> = references.iter().map(|(_, text)| text.as_str()).collect();
    Ok(AvroSchema::parse(&schema.schema, &texts)
        .map(Arc::new)
        .map_err(|e| format!("schema id {id}: {e}")))
}

/// Decodes Protobuf payloads.
#[derive(Debug)]
pub struct ProtobufDecoder {
    source: ProtobufSource,
    /// Schemas by id, compiled by this worker (or why they could not be).
    compiled: HashMap<u32, Result<Arc<ProtoSchema>, String>>,
}

#[derive(Debug)]
enum ProtobufSource {
    /// Bare bodies, all of one message type.
    File(MessageDescriptor),
    /// Wire-format payloads.
    Registry(Fetcher),
}

impl ProtobufDecoder {
    /// Bare bodies of `message`.
    pub fn file(message: MessageDescriptor) -> ProtobufDecoder {
        ProtobufDecoder {
            source: ProtobufSource::File(message),
            compiled: HashMap::new(),
        }
    }

    /// Wire-format payloads whose schemas `fetcher` fetches.
    pub fn registry(fetcher: Fetcher) -> ProtobufDecoder {
        ProtobufDecoder {
            source: ProtobufSource::Registry(fetcher),
            compiled: HashMap::new(),
        }
    }

    /// Decodes one payload.
    pub fn decode(&mut self, payload: &[u8]) -> Result<Val, DecodeError> {
        let fetcher = match &self.source {
            ProtobufSource::File(message) => {
                return protobuf::decode(message, payload).map_err(DecodeError::Event);
            }
            ProtobufSource::Registry(fetcher) => fetcher,
        };
        let event = |e: wire::WireError| DecodeError::Event(e.to_string());
        let (id, rest) = wire::split(payload).map_err(event)?;
        let (path, body) = wire::indexes(rest).map_err(event)?;
        let schema = match self.compiled.get(&id) {
            Some(compiled) => compiled.clone(),
            None => {
                let compiled = proto_by_id(fetcher, id)?;
                self.compiled.insert(id, compiled.clone());
                compiled
            }
        }
        .map_err(DecodeError::Event)?;
        let message = schema.message_at(&path).ok_or_else(|| {
            DecodeError::Event(format!(
                "schema id {id} has no message type at indexes {path:?}"
            ))
        })?;
        protobuf::decode(&message, body)
            .map_err(|e| DecodeError::Event(format!("schema id {id}: {e}")))
    }
}

/// Schema `id` compiled as Protobuf: an error for the event when it is not a Protobuf schema
/// or does not compile.
fn proto_by_id(
    fetcher: &Fetcher,
    id: u32,
) -> Result<Result<Arc<ProtoSchema>, String>, DecodeError> {
    let schema = match fetcher.by_id(id) {
        Ok(schema) => schema,
        Err(RegistryError::NotFound(m)) => return Ok(Err(m)),
        Err(e) => return Err(e.into()),
    };
    if schema.schema_type != SchemaType::Protobuf {
        return Ok(Err(format!(
            "schema id {id} is a {:?} schema, not Protobuf",
            schema.schema_type
        )));
    }
    let mut references = Vec::new();
    fetcher.references(&schema, &mut references)?;
    Ok(ProtoSchema::from_registry(&schema.schema, &references)
        .map(Arc::new)
        .map_err(|e| format!("schema id {id}: {e}")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::client::retry::RetryConfig;
    use crate::config::HumanDuration;
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

    use super::super::tests_support::{json, val};

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
        let mut decoder = AvroDecoder::registry(s.fetcher.clone(), None, None);
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
        let mut decoder = AvroDecoder::registry(s.fetcher.clone(), None, None);
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
                Err(DecodeError::Event(reason)) => assert!(reason.contains(want), "{reason}"),
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
        let worker = std::thread::spawn(move || {
            AvroDecoder::registry(fetcher, None, None)
                .decode(&payload)
                .map(|v| json(&v))
        });
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
            AvroDecoder::registry(fetcher, None, None)
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
        let mut decoder = AvroDecoder::registry(s.fetcher.clone(), Some(reader), None);
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
        let mut decoder = ProtobufDecoder::registry(s.fetcher.clone());
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
            assert_eq!(json(&decoder.decode(&payload).unwrap()), value, "{name}");
        }
        let mut payload = Vec::new();
        wire::header(id, &mut payload);
        wire::write_indexes(&[5], &mut payload);
        match decoder.decode(&payload) {
            Err(DecodeError::Event(reason)) => assert!(
                reason.contains("no message type at indexes [5]"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
    }
}
