//! The `http_server` input: events POSTed to sluice (webhooks, services that speak neither Kafka
//! nor NATS), answered only once they are delivered, or as soon as they are queued.

mod auth;
mod handler;
mod idle;
mod linger;
mod server;

use std::sync::Arc;

use serde::Deserialize;

use super::{BuiltInput, InputSpec};
use super::{SourceContext, SourceError};
use crate::client::http::HttpAuth;
use crate::client::tls::ServerTlsConfig;
use crate::codec::CodecConfig;
use crate::config::Build;
use crate::config::{ByteSize, HumanDuration};

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
    /// How long a client has to send the head of a request (request line and headers): from
    /// when its connection opens (after the TLS handshake), and on a kept-alive HTTP/1.1
    /// connection from the first byte of its next request. The connection is then closed.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: HumanDuration,
    /// How long a connection with no request under way stays open: a kept-alive HTTP/1.1
    /// connection waits this long for the first byte of its next request, an HTTP/2 connection
    /// this long without a stream; then it is closed (HTTP/2: with a GOAWAY).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: HumanDuration,
    /// Most connections open at once. Further clients wait in the listen queue until one
    /// closes, so open files never run out. Default: half the process's open-file limit
    /// (`ulimit -n`), at most 1024.
    #[serde(default)]
    pub max_connections: Option<usize>,
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

// hyper's own default for its HTTP/1.1 header read timeout.
fn default_header_read_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

// nginx's `keepalive_timeout`: above the 60 s after which common load balancers (AWS ALB, most
// reverse proxies) drop an idle connection, so that they, not sluice, close the connections
// they reuse, and a request is never sent on a connection sluice is closing.
fn default_idle_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(75))
}

/// The most connections taken by default, whatever the open-file limit: with TLS an idle
/// connection holds some 50 KiB of buffers, so this bounds them to about 50 MiB.
const MAX_DEFAULT_CONNECTIONS: usize = 1024;

/// The default connection limit: half the process's open-file limit (the other half for the
/// brokers, files and other pipelines), at most [`MAX_DEFAULT_CONNECTIONS`].
fn default_max_connections() -> usize {
    match rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
        Some(files) => usize::try_from(files / 2)
            .unwrap_or(usize::MAX)
            .clamp(1, MAX_DEFAULT_CONNECTIONS),
        None => MAX_DEFAULT_CONNECTIONS,
    }
}

/// Whether two `host:port` addresses cannot both be listened on: the same port, and the same
/// host or a wildcard host (`0.0.0.0`, `[::]`) that covers the other. Port 0 (any free port)
/// never clashes.
pub fn same_listener(a: &str, b: &str) -> bool {
    let split = |address: &str| {
        let (host, port) = address.rsplit_once(':')?;
        let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some((host.to_ascii_lowercase(), port))
    };
    let (Some((a, pa)), Some((b, pb))) = (split(a), split(b)) else {
        return false;
    };
    if pa != pb {
        return false;
    }
    let ips = |host: &str| -> Vec<std::net::IpAddr> {
        match host {
            "localhost" => vec![
                std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::Ipv6Addr::LOCALHOST.into(),
            ],
            _ => host.parse().into_iter().collect(),
        }
    };
    // A host that is neither an address nor `localhost` is compared by name only.
    let (ia, ib) = (ips(&a), ips(&b));
    if a == b || ia.is_empty() || ib.is_empty() {
        return a == b;
    }
    let covers = |x: &std::net::IpAddr, y: &std::net::IpAddr| {
        // `[::]` listens on IPv4 too (Linux's default, net.ipv6.bindv6only=0).
        x == y || (x.is_unspecified() && (x.is_ipv4() == y.is_ipv4() || x.is_ipv6()))
    };
    ia.iter()
        .any(|x| ib.iter().any(|y| covers(x, y) || covers(y, x)))
}

impl HttpServerConfig {
    /// The connection limit: `max_connections`, or its default.
    pub fn connection_limit(&self) -> usize {
        self.max_connections.unwrap_or_else(default_max_connections)
    }
}

/// Whether `path` is the path of a URL as clients send it: what the request line may carry, and
/// nothing after it (a query or fragment would never match).
fn is_url_path(path: &str) -> bool {
    // RFC 3986: ASCII only, anything else percent-encoded (the http crate lets bytes above 0x7f
    // through, as some clients send them).
    path.bytes().all(|b| b.is_ascii_graphic() && b != b'#')
        && path
            .parse::<axum::http::uri::PathAndQuery>()
            .is_ok_and(|p| p.query().is_none() && p.path() == path)
}

/// An `http_server` input, built.
#[derive(Debug, Clone)]
pub struct HttpServerInput {
    config: HttpServerConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl InputSpec for HttpServerConfig {
    const KIND: &'static str = "http_server";
    const REMOTE: bool = true;
    type Built = HttpServerInput;

    fn codec(&self) -> CodecConfig {
        self.codec.clone()
    }

    fn build(&self, b: Build<'_, '_>) -> Option<HttpServerInput> {
        let Build { path, v, .. } = b;
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
        } else if !is_url_path(&self.path) {
            let message = format!(
                "{:?} is not a URL path: no spaces, `?` or `#`; other characters percent-encoded",
                self.path
            );
            v.error_at(&format!("{path}.path"), message);
        }
        if let Some(auth) = &self.auth {
            auth.validate(&format!("{path}.auth"), v);
        }
        for (name, timeout) in [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if timeout.0.is_zero() {
                v.error_at(&format!("{path}.{name}"), "must be above 0s");
            }
        }
        if self.max_connections == Some(0) {
            v.error_at(&format!("{path}.max_connections"), "must be at least 1");
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

impl BuiltInput for HttpServerInput {
    /// Serves requests until shutdown, then answers those in flight (within the drain timeout).
    async fn run(self, ctx: SourceContext) -> Result<(), SourceError> {
        server::serve(self, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_clash_on_the_same_port_and_an_overlapping_host() {
        for (a, b) in [
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("0.0.0.0:8080", "127.0.0.1:8080"),
            ("localhost:8080", "127.0.0.1:8080"),
            ("LocalHost:8080", "[::1]:8080"),
            ("[::]:8080", "10.0.0.1:8080"),
            ("ingest.internal:8080", "ingest.internal:8080"),
        ] {
            assert!(same_listener(a, b), "{a} {b}");
            assert!(same_listener(b, a), "{b} {a}");
        }
        for (a, b) in [
            ("127.0.0.1:8080", "127.0.0.1:8081"),
            ("127.0.0.1:8080", "127.0.0.2:8080"),
            ("0.0.0.0:8080", "[::1]:8080"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("ingest.internal:8080", "127.0.0.1:8080"),
            ("nonsense", "nonsense"),
        ] {
            assert!(!same_listener(a, b), "{a} {b}");
        }
    }

    #[test]
    fn a_path_is_what_a_request_line_can_carry() {
        for ok in ["/", "/events", "/a/b-c_d.e~f", "/a%20b", "/v1/events:push"] {
            assert!(is_url_path(ok), "{ok}");
        }
        for bad in ["/a b", "/a?b=1", "/a#top", "/tab\there", "/é"] {
            assert!(!is_url_path(bad), "{bad}");
        }
    }
}
