//! The `http_server` input: events POSTed to sluice (webhooks, services that speak neither Kafka
//! nor NATS), answered only once they are delivered, or as soon as they are queued.

pub mod body;
mod handler;
mod server;

use std::sync::Arc;

use serde::Deserialize;

use super::{SourceContext, SourceError};
use crate::client::http::HttpAuth;
use crate::client::tls::ServerTlsConfig;
use crate::codec::CodecConfig;
use crate::config::{ByteSize, HumanDuration, Validator};

/// An HTTP server taking events in `POST` requests: one JSON value, a JSON array of events, or
/// one event per line (`Content-Type: application/x-ndjson`). Replicas behind a load balancer
/// share the requests.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    /// Address and port to listen on: `0.0.0.0:8080` (every interface), `127.0.0.1:8080`,
    /// `localhost:8080`, `[::]:8080`.
    pub address: String,
    /// The path events are POSTed to; other paths answer 404.
    #[serde(default = "default_path")]
    pub path: String,
    /// Credentials every request must carry in its `Authorization` header: `bearer: TOKEN` or
    /// `basic: {user, password}`; a request without them is answered 401.
    #[serde(default)]
    pub auth: Option<HttpAuth>,
    /// TLS: `cert_file` and `key_file`, and `client_ca_file` to require client certificates.
    #[serde(default)]
    pub tls: Option<ServerTlsConfig>,
    /// Largest request body; a larger one is answered 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: ByteSize,
    /// When a request is answered: `delivered` (200 once every event of it is delivered or
    /// dead-lettered) or `accepted` (202 once its events are queued in the pipeline).
    #[serde(default)]
    pub ack: HttpAck,
    /// How long a request waits for its events, queueing and (with `ack: delivered`) delivery,
    /// before it is answered 503 (the client should send it again).
    #[serde(default = "default_response_timeout")]
    pub response_timeout: HumanDuration,
    /// The `Retry-After` of a 429 answer, sent while the in-flight budget is used up.
    #[serde(default = "default_retry_after")]
    pub retry_after: HumanDuration,
    /// Request headers that become headers of each of its events, by name (case-insensitive).
    #[serde(default)]
    pub headers_to_keep: Vec<String>,
    /// A request header whose value becomes the key of each of its events.
    #[serde(default)]
    pub key_header: Option<String>,
    /// `json`: a body is one JSON value (an event) or an array of them, and a body that is not
    /// JSON is answered 400; an NDJSON line that is not JSON is dead-lettered like any bad event.
    /// `raw`: a body is one event as it is, whatever its type, unless it is NDJSON. `avro: {...}`
    /// and `protobuf: {...}`: a body is one event, decoded as `raw` bodies are split.
    #[serde(default)]
    pub codec: CodecConfig,
    /// Most events one request may hold (items of a JSON array, lines of NDJSON); a request of
    /// more is answered 413 before any of them is taken. Whatever this allows, a request is
    /// taken only within the pipeline's in-flight budget (`settings.max_in_flight_bytes`).
    #[serde(default = "default_max_events_per_request")]
    pub max_events_per_request: usize,
}

/// When a request is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HttpAck {
    /// 200 once every event of the request is delivered or dead-lettered: a 200 means nothing
    /// of it can be lost.
    #[default]
    Delivered,
    /// 202 once the events are queued: faster, but a crash can lose what was answered.
    Accepted,
}

fn default_path() -> String {
    "/".into()
}

// Large enough for a batch of a few thousand ordinary events; small enough that a burst of
// requests cannot exhaust memory before the in-flight budget stops taking them.
fn default_max_body_bytes() -> ByteSize {
    ByteSize(10 * 1024 * 1024)
}

// The timeout most HTTP clients and load balancers use by default (60 s) halved, so sluice
// answers before they give up.
fn default_response_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

// Batch endpoints of webhook and log services take a few thousand events per request; ten
// thousand small events with their overhead are a few MiB of the default 32 MiB budget.
fn default_max_events_per_request() -> usize {
    10_000
}

// A second is about what an in-flight budget needs to drain a batch to a healthy output.
fn default_retry_after() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(1))
}

impl HttpServerConfig {
    /// Builds the input without listening; problems are reported under `path`.
    pub fn build(&self, path: &str, v: &mut Validator<'_>) -> Option<HttpServerInput> {
        let port = self
            .address
            .rsplit_once(':')
            .map(|(host, port)| (host, port.parse::<u16>()));
        if !matches!(port, Some((host, Ok(_))) if !host.is_empty()) {
            let at = format!("{path}.address");
            v.error_at(&at, "address must be host:port, like 0.0.0.0:8080");
        }
        if !self.path.starts_with('/') {
            v.error_at(&format!("{path}.path"), "path must start with /");
        }
        if self.max_body_bytes.0 == 0 {
            v.error_at(&format!("{path}.max_body_bytes"), "must be above 0");
        }
        if self.max_events_per_request == 0 {
            v.error_at(&format!("{path}.max_events_per_request"), "must be above 0");
        }
        if self.response_timeout.0.is_zero() {
            v.error_at(&format!("{path}.response_timeout"), "must be above 0s");
        }
        let names = self.headers_to_keep.iter().chain(&self.key_header);
        for (i, name) in names.enumerate() {
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                let at = match i.checked_sub(self.headers_to_keep.len()) {
                    None => format!("{path}.headers_to_keep.{i}"),
                    Some(_) => format!("{path}.key_header"),
                };
                v.error_at(&at, format!("{name:?} is not an HTTP header name"));
            }
        }
        let tls = match &self.tls {
            Some(t) => Some(Arc::new(t.build(
                &[b"h2", b"http/1.1"],
                &format!("{path}.tls"),
                v,
            )?)),
            None => None,
        };
        Some(HttpServerInput {
            config: self.clone(),
            tls,
        })
    }
}

/// An `http_server` input, built.
#[derive(Debug, Clone)]
pub struct HttpServerInput {
    config: HttpServerConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// Serves requests until shutdown, then answers those in flight (within the drain timeout).
pub async fn run(input: HttpServerInput, ctx: SourceContext) -> Result<(), SourceError> {
    server::serve(input, ctx).await
}
