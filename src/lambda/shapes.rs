//! The events a function is invoked with (Kafka, SQS, API Gateway, any other JSON), turned into
//! items for the pipeline.

use aws_lambda_events::event::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;

use crate::codec::Codec;
use crate::codec::body;
use crate::event::{Headers, Position, now_millis};
use crate::source::submit::Item;

/// Which kind of event the function was invoked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// An MSK or self-managed Kafka event source mapping: records by topic-partition.
    Kafka,
    /// An SQS event source mapping: messages, answered with the ones to retry.
    Sqs,
    /// An API Gateway REST API proxy integration (payload format 1.0).
    ApiGatewayV1,
    /// An API Gateway HTTP API (payload format 2.0), or a function URL.
    ApiGatewayV2,
    /// Anything else (a direct invocation): one JSON value, or an array of them.
    Json,
}

impl Shape {
    /// The name used in logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Kafka => "kafka",
            Shape::Sqs => "sqs",
            Shape::ApiGatewayV1 | Shape::ApiGatewayV2 => "api_gateway",
            Shape::Json => "json",
        }
    }
}

/// An invocation's events, ready to submit.
#[derive(Debug)]
pub struct Invocation {
    /// One item per record, message or value.
    pub items: Vec<Item>,
    /// The SQS message id of each item; empty for other shapes.
    pub ids: Vec<String>,
}

/// Why a payload is not a well-formed event of its shape.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not the JSON of its shape.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A Kafka record's partition is past what Kafka numbers.
    #[error("partition {0} is out of range")]
    PartitionOutOfRange(i64),
    /// A Kafka record's key or value is not base64.
    #[error("record {topic}/{partition}@{offset}: the {field} is not base64: {error}")]
    RecordNotBase64 {
        /// The record's topic.
        topic: Arc<str>,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// `key` or `value`.
        field: &'static str,
        /// What the decoder found.
        #[source]
        error: base64::DecodeError,
    },
    /// An SQS message has no id to answer for it with.
    #[error("a message has no messageId")]
    NoMessageId,
    /// An API Gateway body said to be base64 is not.
    #[error("the body is not base64: {0}")]
    BodyNotBase64(#[source] base64::DecodeError),
    /// A body's events cannot be read.
    #[error(transparent)]
    Body(#[from] body::SplitError),
}

/// A Kafka event (MSK or self-managed) as the event source mapping sends it. Not the
/// `aws_lambda_events` type: it reads timestamps through floating point, a millisecond off now
/// and then, and panics on a fractional one.
#[derive(Deserialize)]
struct KafkaEvent {
    /// Records by `topic-partition`.
    records: HashMap<String, Vec<KafkaRecord>>,
}

#[derive(Deserialize)]
struct KafkaRecord {
    #[serde(default)]
    topic: Option<String>,
    partition: i64,
    offset: i64,
    /// Milliseconds since the Unix epoch.
    #[serde(default)]
    timestamp: Option<i64>,
    /// Base64.
    #[serde(default)]
    key: Option<String>,
    /// Base64.
    #[serde(default)]
    value: Option<String>,
    /// Each a map of one name to its value's bytes (Java's signed bytes; unsigned read too).
    #[serde(default)]
    headers: Vec<HashMap<String, Vec<i16>>>,
}

/// Just enough of a payload to tell its shape; every other field is skipped.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "eventSource", default)]
    event_source: Option<serde_json::Value>,
    #[serde(rename = "Records", default)]
    records: Option<Vec<RecordProbe>>,
    #[serde(rename = "requestContext", default)]
    request_context: Option<IgnoredAny>,
    #[serde(rename = "httpMethod", default)]
    http_method: Option<IgnoredAny>,
    #[serde(default)]
    version: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RecordProbe {
    #[serde(rename = "eventSource", default)]
    event_source: Option<serde_json::Value>,
}

/// The shape of `payload`: by the fields event sources set, else plain JSON.
pub fn shape(payload: &RawValue) -> Shape {
    let text = payload.get();
    if !text.trim_start().starts_with('{') {
        return Shape::Json;
    }
    let Ok(probe) = serde_json::from_str::<Probe>(text) else {
        return Shape::Json;
    };
    let is = |v: &Option<serde_json::Value>, names: &[&str]| {
        v.as_ref()
            .and_then(|v| v.as_str())
            .is_some_and(|s| names.contains(&s))
    };
    if is(&probe.event_source, &["aws:kafka", "SelfManagedKafka"]) {
        Shape::Kafka
    } else if probe
        .records
        .as_ref()
        .is_some_and(|r| !r.is_empty() && r.iter().all(|r| is(&r.event_source, &["aws:sqs"])))
    {
        Shape::Sqs
    } else if probe.request_context.is_some() && is(&probe.version, &["2.0"]) {
        Shape::ApiGatewayV2
    } else if probe.request_context.is_some() && probe.http_method.is_some() {
        Shape::ApiGatewayV1
    } else {
        Shape::Json
    }
}

/// The items of an invocation with `payload`, Lambda request id `request`; API Gateway bodies
/// are read under `codec`, like the `http_server` input reads them.
pub fn read(
    payload: &RawValue,
    request: &str,
    codec: Codec,
) -> (Shape, Result<Invocation, ReadError>) {
    let shape = shape(payload);
    let text = payload.get();
    let request: Arc<str> = Arc::from(request);
    let mut ids = Vec::new();
    let items = match shape {
        Shape::Kafka => kafka(text),
        Shape::Sqs => sqs(text, &mut ids),
        Shape::ApiGatewayV1 => serde_json::from_str::<ApiGatewayProxyRequest>(text)
            .map_err(ReadError::from)
            .and_then(|r| http_body(r.body, r.is_base64_encoded, &r.headers, codec, &request)),
        Shape::ApiGatewayV2 => serde_json::from_str::<ApiGatewayV2httpRequest>(text)
            .map_err(ReadError::from)
            .and_then(|r| http_body(r.body, r.is_base64_encoded, &r.headers, codec, &request)),
        Shape::Json => split(&Bytes::copy_from_slice(text.as_bytes()), body::Format::Json)
            .map(|payloads| requested(payloads, &request)),
    };
    (shape, items.map(|items| Invocation { items, ids }))
}

fn kafka(text: &str) -> Result<Vec<Item>, ReadError> {
    let event: KafkaEvent = serde_json::from_str(text)?;
    // Partitions in a stable order; records keep theirs (by offset) within a partition.
    let mut partitions: Vec<_> = event.records.into_iter().collect();
    partitions.sort_by(|a, b| a.0.cmp(&b.0));
    let mut items = Vec::new();
    for (topic_partition, records) in partitions {
        let topic = topic_partition
            .rsplit_once('-')
            .map_or(topic_partition.as_str(), |(topic, _)| topic);
        for record in records {
            items.push(kafka_item(record, topic)?);
        }
    }
    Ok(items)
}

fn kafka_item(record: KafkaRecord, topic: &str) -> Result<Item, ReadError> {
    let topic: Arc<str> = Arc::from(record.topic.as_deref().unwrap_or(topic));
    let partition = i32::try_from(record.partition)
        .map_err(|_| ReadError::PartitionOutOfRange(record.partition))?;
    let offset = record.offset;
    let decode = |field: &'static str, text: Option<String>| {
        text.map(|t| STANDARD.decode(t))
            .transpose()
            .map(|b| b.map(Bytes::from))
            .map_err(|error| ReadError::RecordNotBase64 {
                topic: topic.clone(),
                partition,
                offset,
                field,
                error,
            })
    };
    let payload = decode("value", record.value)?.unwrap_or_default();
    let key = decode("key", record.key)?;
    let mut headers = Headers::new();
    for header in record.headers {
        // One name per map, as the event source writes them; sorted should a map hold more.
        let mut named: Vec<_> = header.into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in named {
            let value: Vec<u8> = value.into_iter().map(|b| b as u8).collect();
            headers.push((name, Bytes::from(value)));
        }
    }
    Ok(Item {
        payload,
        key,
        headers,
        timestamp: record.timestamp,
        position: Position::Kafka {
            topic,
            partition,
            offset,
        },
    })
}

fn sqs(text: &str, ids: &mut Vec<String>) -> Result<Vec<Item>, ReadError> {
    let event: SqsEvent = serde_json::from_str(text)?;
    let mut items = Vec::with_capacity(event.records.len());
    for message in event.records {
        let Some(id) = message.message_id.clone() else {
            return Err(ReadError::NoMessageId);
        };
        items.push(sqs_item(message, &id));
        ids.push(id);
    }
    Ok(items)
}

fn sqs_item(message: SqsMessage, id: &str) -> Item {
    // String and Number attributes, both carried as text; binary ones are left out.
    let mut attributes: Vec<_> = message
        .message_attributes
        .into_iter()
        .filter(|(_, a)| {
            let kind = a.data_type.as_deref().unwrap_or("String");
            kind.starts_with("String") || kind.starts_with("Number")
        })
        .filter_map(|(name, a)| Some((name, Bytes::from(a.string_value?))))
        .collect();
    attributes.sort_by(|a, b| a.0.cmp(&b.0));
    Item {
        payload: Bytes::from(message.body.unwrap_or_default()),
        // A FIFO queue's message group: what keeps its messages in order.
        key: message
            .attributes
            .get("MessageGroupId")
            .map(|g| Bytes::copy_from_slice(g.as_bytes())),
        headers: attributes,
        timestamp: message
            .attributes
            .get("SentTimestamp")
            .and_then(|t| t.parse().ok()),
        position: Position::Request {
            source: "sqs",
            request: Arc::from(id),
            index: 0,
        },
    }
}

fn http_body(
    body: Option<String>,
    base64: bool,
    headers: &HeaderMap,
    codec: Codec,
    request: &Arc<str>,
) -> Result<Vec<Item>, ReadError> {
    let body = body.unwrap_or_default();
    let bytes = if base64 {
        STANDARD.decode(body).map_err(ReadError::BodyNotBase64)?
    } else {
        body.into_bytes()
    };
    let content_type = headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes);
    let payloads = split(&Bytes::from(bytes), body::format(content_type, codec))?;
    Ok(requested(payloads, request))
}

/// The payloads of an invocation's body: as many as it holds (Lambda bounds an invocation's
/// size).
fn split(body: &Bytes, format: body::Format) -> Result<Vec<Bytes>, ReadError> {
    Ok(body::split(body, format, usize::MAX)?)
}

/// Items of a request: the payloads in order, received now.
fn requested(payloads: Vec<Bytes>, request: &Arc<str>) -> Vec<Item> {
    let timestamp = Some(now_millis());
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| Item {
            payload,
            key: None,
            headers: Headers::new(),
            timestamp,
            position: Position::Request {
                source: "lambda",
                request: request.clone(),
                index: i as u32,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_of(json: &str) -> Shape {
        shape(&RawValue::from_string(json.to_string()).unwrap())
    }

    #[test]
    fn each_event_source_is_told_apart_and_anything_else_is_plain_json() {
        let cases = [
            (r#"{"eventSource":"aws:kafka","records":{}}"#, Shape::Kafka),
            (
                r#"{"eventSource":"SelfManagedKafka","records":{}}"#,
                Shape::Kafka,
            ),
            (
                r#"{"Records":[{"eventSource":"aws:sqs","messageId":"m","body":""}]}"#,
                Shape::Sqs,
            ),
            (
                r#"{"version":"2.0","rawPath":"/","requestContext":{}}"#,
                Shape::ApiGatewayV2,
            ),
            (
                r#"{"httpMethod":"POST","path":"/","requestContext":{}}"#,
                Shape::ApiGatewayV1,
            ),
            // An S3 notification is not SQS; mixed records are no event source's.
            (r#"{"Records":[{"eventSource":"aws:s3"}]}"#, Shape::Json),
            (
                r#"{"Records":[{"eventSource":"aws:sqs"},{"eventSource":"aws:s3"}]}"#,
                Shape::Json,
            ),
            (r#"{"Records":[]}"#, Shape::Json),
            (r#"{"Records":"not a list"}"#, Shape::Json),
            (r#"{"eventSource":7}"#, Shape::Json),
            (r#"{"version":"2.0"}"#, Shape::Json),
            (r#"{"order":1}"#, Shape::Json),
            (r#"[{"eventSource":"aws:kafka"}]"#, Shape::Json),
            ("42", Shape::Json),
            (r#""text""#, Shape::Json),
        ];
        for (json, expected) in cases {
            assert_eq!(shape_of(json), expected, "{json}");
        }
    }

    #[test]
    fn an_sqs_message_without_an_id_cannot_be_answered_for() {
        let raw = RawValue::from_string(
            r#"{"Records":[{"eventSource":"aws:sqs","body":"{}"}]}"#.to_string(),
        )
        .unwrap();
        let (shape, read) = read(&raw, "r", Codec::Json);
        assert_eq!(shape, Shape::Sqs);
        assert_eq!(read.unwrap_err().to_string(), "a message has no messageId");
    }

    #[test]
    fn a_kafka_record_without_a_value_is_an_empty_payload_and_the_topic_comes_from_its_key() {
        let raw = RawValue::from_string(
            r#"{"eventSource":"aws:kafka","records":{"my-topic-3":[
                {"partition":3,"offset":9,"timestamp":5,"headers":[]}]}}"#
                .to_string(),
        )
        .unwrap();
        let (_, read) = read(&raw, "r", Codec::Json);
        let items = read.unwrap().items;
        assert_eq!(items.len(), 1);
        assert!(items[0].payload.is_empty() && items[0].key.is_none());
        assert_eq!(items[0].position.to_string(), "kafka:my-topic/3@9");
        assert_eq!(items[0].timestamp, Some(5));
    }

    #[test]
    fn kafka_header_bytes_may_be_signed_and_a_fractional_timestamp_is_malformed() {
        let event = |timestamp: &str| {
            let json = format!(
                r#"{{"eventSource":"aws:kafka","records":{{"t-0":[{{"topic":"t","partition":0,
                "offset":1,"timestamp":{timestamp},"value":"e30=","headers":[{{"h":[-1,104,255]}}]}}]}}}}"#
            );
            read(&RawValue::from_string(json).unwrap(), "r", Codec::Json).1
        };
        let items = event("1700000000007").unwrap().items;
        assert_eq!(
            items[0].headers,
            [("h".to_string(), Bytes::from_static(b"\xffh\xff"))]
        );
        assert_eq!(
            items[0].timestamp,
            Some(1_700_000_000_007),
            "to the millisecond"
        );
        assert_eq!(items[0].payload, "{}");
        assert!(event("1.5").is_err());
    }
}
