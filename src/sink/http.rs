//! The `http` output: events sent to an HTTP endpoint, a batch per request; an event counts as
//! delivered only once its request got a 2xx answer.

use std::time::Duration;

use bytes::Bytes;
use indexmap::IndexMap;
use reqwest::StatusCode;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::deliver::{self, Attempt, Protocol};
use super::retry::Held;
use super::{SinkContext, SinkError};
use crate::client::tls::TlsConfig;
use crate::config::{ByteSize, HumanDuration, Secret, Validator};
use crate::delivery::Cause;
use crate::event::{Event, Failed};

/// Sends events to an HTTP endpoint, several per request. Answers 429, 408 and 5xx, and
/// connection errors, are retried with the output's retry settings (waiting at least what a
/// `Retry-After` asks); any other answer that is not 2xx refuses the request's events, which
/// follow the error policy with the status and the start of the answer as the reason.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpOutputConfig {
    /// `http://` or `https://` URL. `{destination}` in it is replaced by the event's destination
    /// (set by a `route` step); events for different URLs go in different requests.
    pub url: String,
    /// `post`, `put` or `patch`.
    #[serde(default)]
    pub method: HttpMethod,
    /// Headers sent with every request.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// `bearer: TOKEN`, or `basic: {user, password}`.
    #[serde(default)]
    pub auth: Option<HttpAuth>,
    /// TLS for `https://`: `ca_file`, `cert_file` + `key_file` (mutual TLS), `server_name`,
    /// `insecure_skip_verify`; without it, the system's certificate authorities.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// How many events, and bytes of payload, one request carries at most.
    #[serde(default)]
    pub batch: HttpBatch,
    /// `ndjson` (a payload per line), `json_array` (the payloads as one JSON array) or `single`
    /// (one event per request, its payload as the body).
    #[serde(default)]
    pub encoding: HttpEncoding,
    /// How long a request may take, answer included, before it is retried.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

/// The request method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HttpMethod {
    /// POST.
    #[default]
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
}

/// How requests authenticate.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// HTTP basic authentication.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: Secret,
    },
}

/// The most one request carries.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpBatch {
    /// Events per request.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// Bytes of payload per request (a larger single event goes alone).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// How long events may wait for more to fill a request; `0s` sends what is there.
    #[serde(default = "default_max_wait")]
    pub max_wait: HumanDuration,
}

/// How a request's body holds its events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HttpEncoding {
    /// Each payload on a line (`application/x-ndjson`).
    #[default]
    Ndjson,
    /// The payloads as the items of one JSON array (`application/json`); payloads must be JSON.
    JsonArray,
    /// One event per request, its payload the body (`application/json`).
    Single,
}

impl Default for HttpBatch {
    fn default() -> Self {
        HttpBatch {
            max_events: default_max_events(),
            max_bytes: default_max_bytes(),
            max_wait: default_max_wait(),
        }
    }
}

// A request per 500 events amortises its round trip like a batch of the other outputs.
fn default_max_events() -> usize {
    500
}

// Well under the body limits web servers and gateways set by default (often 1 MiB to 10 MiB).
fn default_max_bytes() -> ByteSize {
    ByteSize(1024 * 1024)
}

// Events are sent as soon as they are there: waiting to fill requests is a choice for the
// endpoint's sake.
fn default_max_wait() -> HumanDuration {
    HumanDuration(Duration::ZERO)
}

// Long enough for a slow endpoint, short enough that a hung one is retried.
fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

const DESTINATION: &str = "{destination}";

impl HttpOutputConfig {
    /// Builds the output without connecting; problems are reported under `path`.
    pub fn build(&self, path: &str, v: &mut Validator<'_>) -> Option<HttpOutput> {
        let before = v.errors.len();
        let url = self.url.replace(DESTINATION, "destination");
        match reqwest::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => v.error_at(
                &format!("{path}.url"),
                "url must be an http:// or https:// URL with a host",
            ),
            Err(e) => v.error_at(&format!("{path}.url"), format!("invalid url: {e}")),
        }
        for (name, value) in &self.headers {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(value).is_err()
            {
                v.error_at_key(
                    &format!("{path}.headers"),
                    name,
                    format!("`{name}` is not a header HTTP can carry"),
                );
            }
        }
        if self.batch.max_events == 0 {
            v.error_at(
                &format!("{path}.batch.max_events"),
                "max_events must be at least 1",
            );
        }
        if self.timeout.0.is_zero() {
            v.error_at(&format!("{path}.timeout"), "timeout must be more than 0");
        }
        let https = self.url.starts_with("https://");
        let tls = match (&self.tls, https) {
            (Some(tls), _) => tls.build(&format!("{path}.tls"), v),
            (None, true) => TlsConfig::default().build(path, v),
            (None, false) => None,
        };
        if v.errors.len() > before {
            return None;
        }
        Some(HttpOutput {
            config: self.clone(),
            tls,
        })
    }
}

/// An `http` output, built: its URL and headers checked, its TLS configuration read.
#[derive(Debug, Clone)]
pub struct HttpOutput {
    config: HttpOutputConfig,
    tls: Option<rustls::ClientConfig>,
}

fn write_error(message: impl std::fmt::Display) -> SinkError {
    SinkError::Write {
        output: "http",
        message: message.to_string(),
    }
}

/// Sends batches until the channel closes.
pub async fn run(
    output: &HttpOutput,
    rx: mpsc::Receiver<Vec<Event>>,
    ctx: SinkContext,
) -> Result<(), SinkError> {
    let config = &output.config;
    if config.tls.as_ref().is_some_and(TlsConfig::is_insecure) {
        tracing::warn!(pipeline = %ctx.telemetry.pipeline(), "tls.insecure_skip_verify is set: the HTTP server's certificate is not checked");
    }
    // The client always gets a TLS configuration of sluice's making, so it never looks for a
    // process-wide one: for an http:// URL, one that trusts nothing.
    let mut tls = match &output.tls {
        Some(tls) => tls.clone(),
        None => trusting_nothing().map_err(write_error)?,
    };
    // Offered to the server: HTTP/2 when it takes it, else HTTP/1.1.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let client = reqwest::Client::builder()
        .timeout(config.timeout.0)
        .use_preconfigured_tls(tls)
        .build()
        .map_err(write_error)?;
    let sender = Sender {
        client,
        config,
        body: Vec::new(),
    };
    deliver::run(sender, rx, ctx).await
}

/// A TLS configuration that trusts no server: for outputs with http:// URLs only.
fn trusting_nothing() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

/// The client of one output: one connection pool, kept alive.
struct Sender<'a> {
    client: reqwest::Client,
    config: &'a HttpOutputConfig,
    /// Reused for each request's body.
    body: Vec<u8>,
}

/// What came of one request.
enum Answer {
    Delivered,
    Again(String, Option<Duration>),
    Refused(String, Cause),
}

impl Protocol for Sender<'_> {
    fn linger(&self) -> Option<(Duration, usize)> {
        let batch = &self.config.batch;
        let enough = match self.config.encoding {
            HttpEncoding::Single => 1,
            _ => batch.max_events,
        };
        (!batch.max_wait.0.is_zero()).then_some((batch.max_wait.0, enough))
    }

    async fn attempt(
        &mut self,
        batch: Vec<Held>,
        attempt: &mut Attempt,
        _ctx: &SinkContext,
    ) -> Result<(), SinkError> {
        let mut events = batch.into_iter().peekable();
        while events.peek().is_some() {
            let (url, request) = match self.next_request(&mut events, attempt) {
                Some(next) => next,
                None => continue,
            };
            match self.send(&url).await {
                Answer::Delivered => attempt.delivered_all(request),
                Answer::Refused(reason, cause) => {
                    for held in request {
                        attempt.refused(Failed::at_output(held.event, reason.clone(), cause));
                    }
                }
                Answer::Again(reason, wait) => {
                    if let Some(wait) = wait {
                        attempt.wait_at_least(wait);
                    }
                    // The rest waits too, so the next attempt sends them in the same order.
                    for held in request.into_iter().chain(events.by_ref()) {
                        attempt.retry(held, reason.clone());
                    }
                }
            }
        }
        Ok(())
    }
}

impl Sender<'_> {
    /// The URL of an event: the output's, with `{destination}` replaced; None when it needs a
    /// destination the event does not have.
    fn url_of(&self, event: &Event) -> Option<String> {
        let url = &self.config.url;
        if !url.contains(DESTINATION) {
            return Some(url.clone());
        }
        let destination = event.destination.as_deref()?;
        Some(url.replace(DESTINATION, destination))
    }

    /// Takes the events of the next request (same URL, within the batch limits) and writes its
    /// body; None when the next event was refused for having no URL.
    fn next_request(
        &mut self,
        events: &mut std::iter::Peekable<std::vec::IntoIter<Held>>,
        attempt: &mut Attempt,
    ) -> Option<(String, Vec<Held>)> {
        let first = events.next()?;
        let Some(url) = self.url_of(&first.event) else {
            let reason = "the url needs a {destination} and the event has none".to_string();
            attempt.refused(Failed::at_output(first.event, reason, Cause::Event));
            return None;
        };
        let batch = &self.config.batch;
        let max_events = match self.config.encoding {
            HttpEncoding::Single => 1,
            _ => batch.max_events,
        };
        let mut bytes = first.event.payload.len();
        let mut request = vec![first];
        while request.len() < max_events {
            let Some(next) = events.peek() else { break };
            let size = next.event.payload.len();
            if bytes + size > batch.max_bytes.0 || self.url_of(&next.event).as_ref() != Some(&url) {
                break;
            }
            bytes += size;
            request.extend(events.next());
        }
        self.encode(&request);
        Some((url, request))
    }

    fn encode(&mut self, request: &[Held]) {
        let body = &mut self.body;
        body.clear();
        match self.config.encoding {
            HttpEncoding::Ndjson => {
                for held in request {
                    body.extend_from_slice(&held.event.payload);
                    body.push(b'\n');
                }
            }
            HttpEncoding::JsonArray => {
                body.push(b'[');
                for (i, held) in request.iter().enumerate() {
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(&held.event.payload);
                }
                body.push(b']');
            }
            HttpEncoding::Single => body.extend_from_slice(&request[0].event.payload),
        }
    }

    /// Sends the body written last to `url`.
    async fn send(&self, url: &str) -> Answer {
        let config = self.config;
        let method = match config.method {
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Patch => reqwest::Method::PATCH,
        };
        let content_type = match config.encoding {
            HttpEncoding::Ndjson => "application/x-ndjson",
            _ => "application/json",
        };
        let mut request = self
            .client
            .request(method, url)
            .header(reqwest::header::CONTENT_TYPE, content_type);
        for (name, value) in &config.headers {
            request = request.header(name, value);
        }
        request = match &config.auth {
            Some(HttpAuth::Bearer(token)) => request.bearer_auth(&token.0),
            Some(HttpAuth::Basic { user, password }) => request.basic_auth(user, Some(&password.0)),
            None => request,
        };
        let response = match request
            .body(Bytes::copy_from_slice(&self.body))
            .send()
            .await
        {
            Ok(response) => response,
            // Connecting, sending or waiting for the answer failed: worth another attempt.
            Err(e) => return Answer::Again(e.without_url().to_string(), None),
        };
        let status = response.status();
        if status.is_success() {
            return Answer::Delivered;
        }
        let wait = retry_after(response.headers());
        let reason = format!("HTTP {status}: {}", answer_start(response).await);
        match classify(status) {
            Class::Again => Answer::Again(reason, wait),
            Class::Refused(cause) => Answer::Refused(reason, cause),
        }
    }
}

/// What a status that is not 2xx means.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    /// The server is busy, failing or timed out: send again.
    Again,
    /// The server will not take these events: for what they are (`Event`), or for how the
    /// output is set up (`Output`: authentication, URL, method).
    Refused(Cause),
}

fn classify(status: StatusCode) -> Class {
    match status.as_u16() {
        408 | 429 => Class::Again,
        500..=599 => Class::Again,
        400 | 409 | 413 | 415 | 422 => Class::Refused(Cause::Event),
        _ => Class::Refused(Cause::Output),
    }
}

/// Most characters of an answer kept in a reason.
const ANSWER_START: usize = 200;

/// The start of an answer's body, on one line.
async fn answer_start(response: reqwest::Response) -> String {
    let body = response.text().await.unwrap_or_default();
    body.chars()
        .take(ANSWER_START)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// A `Retry-After` in seconds (the HTTP-date form is read as no wait asked).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_and_failing_servers_are_retried_other_answers_refuse() {
        let class = |code: u16| classify(StatusCode::from_u16(code).unwrap());
        for code in [408, 429, 500, 502, 503, 504] {
            assert_eq!(class(code), Class::Again, "{code}");
        }
        for code in [400, 413, 422] {
            assert_eq!(class(code), Class::Refused(Cause::Event), "{code}");
        }
        for code in [301, 401, 403, 404, 405] {
            assert_eq!(class(code), Class::Refused(Cause::Output), "{code}");
        }
    }

    #[test]
    fn retry_after_in_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2026 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
