//! The `http` output: events sent to an HTTP endpoint, a batch per request; an event counts as
//! delivered only once its request got a 2xx answer.

mod config;

pub use crate::client::http::HttpAuth;
pub use config::{HttpBatch, HttpEncoding, HttpMethod, HttpOutputConfig};

use crate::sink::Batches;
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;

use super::BuiltOutput;
use super::deliver::{self, Attempt, Protocol};
use super::retry::Held;
use super::{SinkContext, SinkError};
use crate::client::tls::TlsConfig;
use crate::delivery::Cause;
use crate::event::{Event, Failed};
use crate::observe::events::emit;
use crate::observe::events::http::OutputInsecureTls;
use config::{fill, templated};

/// An `http` output, built: its URL and headers checked, its TLS configuration read.
#[derive(Debug, Clone)]
pub struct HttpOutput {
    config: HttpOutputConfig,
    tls: Option<rustls::ClientConfig>,
}

impl HttpOutput {
    fn new(config: HttpOutputConfig, tls: Option<rustls::ClientConfig>) -> HttpOutput {
        HttpOutput { config, tls }
    }
}

/// The client of one output: one connection pool, kept alive.
struct Sender<'a> {
    client: reqwest::Client,
    config: &'a HttpOutputConfig,
    /// Where every request goes, when `url` and `headers` name no event field.
    fixed: Option<Target>,
    /// Reused for each request's body.
    body: Vec<u8>,
}

/// Where a request goes, and the headers it carries.
#[derive(Clone, PartialEq, Eq)]
struct Target {
    url: String,
    headers: Vec<(String, String)>,
}

/// Why an event has nowhere to go. The output refuses the event for it: it follows the error
/// policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum NoTarget {
    /// The url or a header names a field the event lacks.
    #[error("the url or a header names {{{0}}} and the event has none")]
    Missing(&'static str),
    /// The url filled in with the event's fields is not a URL.
    #[error("the url made for the event is not valid: {0}")]
    Url(url::ParseError),
    /// A header value filled in with the event's fields cannot be sent.
    #[error("header {name} made for the event cannot be sent: {value:?}")]
    Header {
        /// The header's name.
        name: String,
        /// The value made for the event.
        value: String,
    },
}

/// What came of one request.
enum Answer {
    Delivered,
    Again(String, Option<Duration>),
    /// The request was too large (413): sent again in halves, refused when it held one event.
    TooLarge(String),
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
        // Halves of requests the server found too large, the next to send last.
        let mut halves: Vec<(Target, Vec<Held>)> = Vec::new();
        while events.peek().is_some() || !halves.is_empty() {
            let (target, mut request) = match halves.pop() {
                Some((target, request)) => {
                    self.encode(&request);
                    (target, request)
                }
                None => match self.next_request(&mut events, attempt) {
                    Some(next) => next,
                    None => continue,
                },
            };
            match self.send(&target).await {
                Answer::Delivered => attempt.delivered_all(request),
                Answer::TooLarge(_) if request.len() > 1 => {
                    let second = request.split_off(request.len() / 2);
                    halves.push((target.clone(), second));
                    halves.push((target, request));
                }
                Answer::TooLarge(reason) => {
                    for held in request {
                        attempt.refused(Failed::at_output(
                            held.event,
                            reason.clone(),
                            Cause::Event,
                        ));
                    }
                }
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
                    let rest = halves.drain(..).rev().flat_map(|(_, half)| half);
                    for held in request.into_iter().chain(rest).chain(events.by_ref()) {
                        attempt.retry(held, reason.clone());
                    }
                }
            }
        }
        Ok(())
    }
}

impl Sender<'_> {
    /// Where an event goes: the output's URL and headers, with the fields they name taken
    /// from the event; Err says why it cannot go anywhere.
    fn target_of(&self, event: &Event) -> Result<Target, NoTarget> {
        if let Some(fixed) = &self.fixed {
            return Ok(fixed.clone());
        }
        let url = fill(&self.config.url, event).map_err(NoTarget::Missing)?;
        reqwest::Url::parse(&url).map_err(NoTarget::Url)?;
        let mut headers = Vec::with_capacity(self.config.headers.len());
        for (name, value) in &self.config.headers {
            let value = fill(value, event).map_err(NoTarget::Missing)?;
            if reqwest::header::HeaderValue::from_str(&value).is_err() {
                return Err(NoTarget::Header {
                    name: name.clone(),
                    value,
                });
            }
            headers.push((name.clone(), value));
        }
        Ok(Target { url, headers })
    }

    /// Takes the events of the next request (same target, within the batch limits) and writes
    /// its body; None when the next event was refused for having no target.
    fn next_request(
        &mut self,
        events: &mut std::iter::Peekable<std::vec::IntoIter<Held>>,
        attempt: &mut Attempt,
    ) -> Option<(Target, Vec<Held>)> {
        let first = events.next()?;
        let target = match self.target_of(&first.event) {
            Ok(target) => target,
            Err(reason) => {
                let reason = reason.to_string();
                attempt.refused(Failed::at_output(first.event, reason, Cause::Event));
                return None;
            }
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
            if bytes + size > batch.max_bytes.0
                || (self.fixed.is_none() && self.target_of(&next.event).as_ref() != Ok(&target))
            {
                break;
            }
            bytes += size;
            request.extend(events.next());
        }
        self.encode(&request);
        Some((target, request))
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

    /// Sends the body written last to `target`.
    async fn send(&self, target: &Target) -> Answer {
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
            .request(method, &target.url)
            .header(reqwest::header::CONTENT_TYPE, content_type);
        for (name, value) in &target.headers {
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
            // A request that cannot even be made will not be made by trying again.
            Err(e) if e.is_builder() => {
                return Answer::Refused(e.without_url().to_string(), Cause::Output);
            }
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
            Class::TooLarge => Answer::TooLarge(reason),
            Class::Refused(cause) => Answer::Refused(reason, cause),
        }
    }
}

/// What a status that is not 2xx means.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    /// The server is busy, failing or timed out, or the output cannot reach what it should
    /// (credentials refused, no such URL or method): an outage, whatever the events, which
    /// passes once the server or the output's setup is fixed. Send again.
    Again,
    /// The request is too large for the server: smaller ones may pass.
    TooLarge,
    /// The server will not take these events: for what they are (`Event`), or for a reason
    /// sending again will not change (`Output`).
    Refused(Cause),
}

fn classify(status: StatusCode) -> Class {
    match status.as_u16() {
        408 | 429 => Class::Again,
        500..=599 => Class::Again,
        // Unauthorized, Forbidden, Not Found, Method Not Allowed, Proxy Authentication Required,
        // Gone, Misdirected Request: the output's credentials, URL or method are wrong (or the
        // endpoint is not deployed yet). Every event would get the same answer; refusing them
        // would empty the input into the dead letters at full speed.
        401 | 403 | 404 | 405 | 407 | 410 | 421 => Class::Again,
        413 => Class::TooLarge,
        400 | 409 | 415 | 422 => Class::Refused(Cause::Event),
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

impl BuiltOutput for HttpOutput {
    /// Sends batches until the channel closes.
    async fn run(self, rx: Batches, ctx: SinkContext) -> Result<(), SinkError> {
        let output = &self;
        let config = &output.config;
        if config.tls.as_ref().is_some_and(TlsConfig::is_insecure) {
            emit(OutputInsecureTls {
                pipeline: ctx.telemetry.pipeline(),
            });
        }
        // The client always gets a TLS configuration of sluice's making, so it never looks for a
        // process-wide one: for an http:// URL, one that trusts nothing.
        let mut tls = match &output.tls {
            Some(tls) => tls.clone(),
            None => crate::client::tls::trusting_nothing().map_err(|source| SinkError::Tls {
                output: "http",
                source,
            })?,
        };
        // Offered to the server: HTTP/2 when it takes it, else HTTP/1.1.
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .timeout(config.timeout.0)
            .use_preconfigured_tls(tls)
            .build()
            .map_err(|source| SinkError::HttpClient {
                output: "http",
                source,
            })?;
        let fixed = (!templated(&config.url) && !config.headers.values().any(|v| templated(v)))
            .then(|| Target {
                url: config.url.clone(),
                headers: config.headers.clone().into_iter().collect(),
            });
        let sender = Sender {
            client,
            config,
            fixed,
            body: Vec::new(),
        };
        deliver::run(sender, rx, ctx).await
    }
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
        // The output's setup, not the events: an outage.
        for code in [401, 403, 404, 405, 407, 410, 421] {
            assert_eq!(class(code), Class::Again, "{code}");
        }
        assert_eq!(class(413), Class::TooLarge);
        for code in [400, 409, 415, 422] {
            assert_eq!(class(code), Class::Refused(Cause::Event), "{code}");
        }
        for code in [301, 406, 418] {
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

    #[test]
    fn an_event_with_nowhere_to_go_says_why() {
        assert_eq!(
            NoTarget::Missing("key").to_string(),
            "the url or a header names {key} and the event has none"
        );
        let header = NoTarget::Header {
            name: "x-id".into(),
            value: "a\nb".into(),
        };
        assert_eq!(
            header.to_string(),
            r#"header x-id made for the event cannot be sent: "a\nb""#
        );
    }

    #[test]
    fn fields_named_in_templates_come_from_the_event() {
        let mut event = Event::new(
            Bytes::from_static(b"{}"),
            crate::event::Position::Generated { seq: 0 },
            crate::delivery::Ack::untracked(),
        );
        assert_eq!(fill("http://h/x", &event), Ok("http://h/x".to_string()));
        assert_eq!(fill("http://h/{destination}", &event), Err("destination"));
        event.destination = Some("orders".into());
        event.key = Some(Bytes::from_static(b"k1"));
        event.partition = Some(3);
        assert_eq!(
            fill("http://h/{destination}/{partition}?k={key}", &event),
            Ok("http://h/orders/3?k=k1".to_string())
        );
        assert!(templated("a-{key}") && !templated("plain"));
        assert_eq!(
            config::sample("http://h/{destination}"),
            "http://h/destination"
        );
    }
}
