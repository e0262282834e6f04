//! One request: checked (path, method, credentials, room, size, format), cut into events,
//! handed to the pipeline, and answered for by what became of them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::auth::Expected;
use super::body;
use super::linger::RequestBody;
use super::{HttpAck, HttpServerConfig};
use crate::codec::Codec;
use crate::delivery::Outcome;
use crate::event::{Headers, Position, now_millis};
use crate::observe::names;
use crate::source::submit::{Item, Refused, Submitter};

/// The header a client names a request with, to send it again as the same request.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The longest `Idempotency-Key` taken: a key names every event of the request in dead letters
/// and message ids.
const MAX_KEY_LEN: usize = 128;

/// At shutdown, requests still waiting for their events are answered (503) once this fraction
/// of the drain timeout has passed, so the answer is written before the process exits.
const ANSWER_AT_DRAIN_FRACTION: f64 = 0.75;

/// What every request of one server shares.
pub struct Handler {
    submitter: Submitter,
    path: String,
    authorization: Option<Expected>,
    challenge: &'static str,
    max_body_bytes: usize,
    ack: HttpAck,
    codec: Codec,
    response_timeout: Duration,
    retry_after: HeaderValue,
    keep: Vec<(HeaderName, Arc<str>)>,
    key_header: Option<HeaderName>,
    stopping: CancellationToken,
    drain_timeout: Duration,
    pipeline: Arc<str>,
}

type Answer = Response<Full<Bytes>>;

impl Handler {
    /// A handler for `config`, handing events to `submitter`; from `stopping` on, requests still
    /// waiting get at most `drain_timeout` more.
    pub fn new(
        config: &HttpServerConfig,
        submitter: Submitter,
        stopping: CancellationToken,
        drain_timeout: Duration,
        pipeline: &str,
    ) -> Handler {
        let header = |name: &String| HeaderName::from_bytes(name.as_bytes()).ok();
        Handler {
            submitter,
            path: config.path.clone(),
            authorization: config.auth.as_ref().map(Expected::new),
            challenge: match config.auth {
                Some(crate::client::http::HttpAuth::Basic { .. }) => "Basic realm=\"sluice\"",
                _ => "Bearer",
            },
            max_body_bytes: config.max_body_bytes.0,
            ack: config.ack,
            codec: config.codec.plain(),
            response_timeout: config.response_timeout.0,
            retry_after: HeaderValue::from(config.retry_after.0.as_secs().max(1)),
            keep: config
                .headers_to_keep
                .iter()
                .filter_map(|n| Some((header(n)?, Arc::from(n.as_str()))))
                .collect(),
            key_header: config.key_header.as_ref().and_then(header),
            stopping,
            drain_timeout,
            pipeline: Arc::from(pipeline),
        }
    }

    /// Answers `request`, and counts the answer.
    pub async fn handle(&self, request: Request<RequestBody>) -> Answer {
        let answer = self.answer(request).await;
        let status = answer.status();
        metrics::counter!(
            names::HTTP_REQUESTS_TOTAL,
            "pipeline" => self.pipeline.to_string(),
            "status" => status.as_str().to_string()
        )
        .increment(1);
        answer
    }

    async fn answer(&self, request: Request<RequestBody>) -> Answer {
        let deadline = Instant::now() + self.response_timeout;
        if request.uri().path() != self.path {
            return error(
                StatusCode::NOT_FOUND,
                format!("no events are taken at {}", request.uri().path()),
            );
        }
        if request.method() != Method::POST {
            let mut answer = error(StatusCode::METHOD_NOT_ALLOWED, "events are POSTed".into());
            answer
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return answer;
        }
        if !self.authorized(request.headers()) {
            let mut answer = error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong credentials".into(),
            );
            let challenge = HeaderValue::from_static(self.challenge);
            answer
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
            return answer;
        }
        if self.stopping.is_cancelled() {
            return self.unavailable("the server is shutting down".into());
        }
        if self.submitter.busy() {
            return self.too_many();
        }
        let content_type = request.headers().get(header::CONTENT_TYPE);
        let format = body::format(content_type.map(HeaderValue::as_bytes), self.codec);
        let (parts, body) = request.into_parts();
        let body = match tokio::time::timeout_at(deadline, self.read(body, &parts.headers)).await {
            Ok(Ok(body)) => body,
            Ok(Err(answer)) => return answer,
            Err(_) => return error(StatusCode::REQUEST_TIMEOUT, "the body took too long".into()),
        };
        let payloads = match body::split(&body, format) {
            Ok(p) => p,
            Err(message) => return error(StatusCode::BAD_REQUEST, message),
        };
        self.submit(payloads, &parts.headers, deadline).await
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        self.authorization
            .as_ref()
            .is_none_or(|expected| expected.admits(headers.get(header::AUTHORIZATION)))
    }

    async fn read(&self, body: RequestBody, headers: &HeaderMap) -> Result<Bytes, Answer> {
        let too_large = || {
            let message = format!(
                "the body is over max_body_bytes ({} bytes)",
                self.max_body_bytes
            );
            error(StatusCode::PAYLOAD_TOO_LARGE, message)
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes as u64) {
            return Err(too_large());
        }
        match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(e) => Err(error(
                StatusCode::BAD_REQUEST,
                format!("reading the body: {e}"),
            )),
        }
    }

    async fn submit(&self, payloads: Vec<Bytes>, headers: &HeaderMap, deadline: Instant) -> Answer {
        let n = payloads.len();
        let request = request_id(headers);
        let kept = self.kept(headers);
        let key = self
            .key_header
            .as_ref()
            .and_then(|name| headers.get(name))
            .map(|v| Bytes::copy_from_slice(v.as_bytes()));
        let timestamp = Some(now_millis());
        let items = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| Item {
                payload,
                key: key.clone(),
                headers: kept.clone(),
                timestamp,
                position: Position::Request {
                    source: "http",
                    request: request.clone(),
                    index: i as u32,
                },
            })
            .collect();
        let track = self.ack == HttpAck::Delivered;
        let wait = deadline.saturating_duration_since(Instant::now());
        let pending = match self.submitter.submit(items, track, wait).await {
            Ok(pending) => pending,
            Err(Refused::Busy) => return self.too_many(),
            Err(Refused::Closed) => return self.unavailable("the pipeline is stopping".into()),
        };
        let Some(pending) = pending else {
            return json(StatusCode::ACCEPTED, serde_json::json!({ "accepted": n }));
        };
        let outcomes = pending.wait(self.until(deadline)).await;
        let delivered = outcomes.count(Outcome::Delivered);
        let dead_lettered = outcomes.count(Outcome::Rejected);
        if outcomes.all_done() {
            let body = serde_json::json!({ "accepted": delivered, "dead_lettered": dead_lettered });
            return json(StatusCode::OK, body);
        }
        let failed = outcomes.count(Outcome::Failed);
        let unfinished = outcomes.unfinished();
        tracing::warn!(pipeline = %self.pipeline, request = %request, events = n, failed, unfinished, "http_server: answered 503, not every event of the request was delivered");
        let mut answer = json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({
                "error": "not every event was delivered in time; send the request again",
                "delivered": delivered,
                "dead_lettered": dead_lettered,
                "failed": failed,
                "unfinished": unfinished,
            }),
        );
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, self.retry_after.clone());
        answer
    }

    /// The request headers kept on its events.
    fn kept(&self, headers: &HeaderMap) -> Headers {
        let mut kept = Headers::new();
        for (name, as_named) in &self.keep {
            for value in headers.get_all(name) {
                kept.push((
                    as_named.to_string(),
                    Bytes::copy_from_slice(value.as_bytes()),
                ));
            }
        }
        kept
    }

    /// Passes at `deadline`, or once most of the drain timeout has passed after shutdown began
    /// (the rest is left to write the answer before the process exits), whichever is first.
    async fn until(&self, deadline: Instant) {
        let drained = async {
            self.stopping.cancelled().await;
            tokio::time::sleep(self.drain_timeout.mul_f64(ANSWER_AT_DRAIN_FRACTION)).await;
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            () = drained => {}
        }
    }

    fn too_many(&self) -> Answer {
        let mut answer = error(
            StatusCode::TOO_MANY_REQUESTS,
            "the pipeline is full; retry later".into(),
        );
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, self.retry_after.clone());
        answer
    }

    fn unavailable(&self, message: String) -> Answer {
        let mut answer = error(StatusCode::SERVICE_UNAVAILABLE, message);
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, self.retry_after.clone());
        answer
    }
}

/// The client's `Idempotency-Key` when it gives a usable one, so that a request sent again after
/// a 503 names its events as before (a JetStream output then drops what it already stored);
/// else an id no other request of any replica has.
fn request_id(headers: &HeaderMap) -> Arc<str> {
    let given = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN && !k.contains(char::is_whitespace));
    match given {
        Some(key) => Arc::from(key),
        None => Arc::from(nuid::next().as_str()),
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(body.to_string())));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    answer
}

fn error(status: StatusCode, message: String) -> Answer {
    json(status, serde_json::json!({ "error": message }))
}
