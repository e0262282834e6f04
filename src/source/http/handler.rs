//! One request: checked (path, method, credentials, room, size, format), cut into events,
//! handed to the pipeline, and answered for by what became of them.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::auth::Expected;
use super::linger::RequestBody;
use super::{HttpAck, HttpServerConfig};
use crate::codec::Codec;
use crate::codec::body::{self, SplitError};
use crate::delivery::{AckMsg, Budget, Hold, NoRoom, Outcome};
use crate::event::{EVENT_OVERHEAD, Headers, Position, now_millis};
use crate::observe::events::emit;
use crate::observe::events::http::{RequestAnswered, RequestUnfinished};
use crate::source::submit::{Item, Outcomes, Refusal, Refused, Submitter, copied_headers};

/// The header a client names a request with, to send it again as the same request.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The longest `Idempotency-Key` taken: a key names every event of the request in dead letters
/// and message ids.
const MAX_KEY_LEN: usize = 128;

/// What one event of a request is counted against the in-flight budget for, on top of its
/// payload: the event itself (its own count, from when it is made until it is finished), and
/// what the request keeps of it until it is answered (its payload's handle, its outcome, the
/// message saying it is finished).
const PER_EVENT: usize = EVENT_OVERHEAD + REQUEST_PER_EVENT;

/// What a request keeps of each of its events until it is answered.
const REQUEST_PER_EVENT: usize = std::mem::size_of::<Bytes>()
    + std::mem::size_of::<Option<Outcome>>()
    + std::mem::size_of::<AckMsg>();

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
    max_events: usize,
    budget: Arc<Budget>,
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
            path: config.path.clone(),
            authorization: config.auth.as_ref().map(Expected::new),
            challenge: match config.auth {
                Some(crate::client::http::HttpAuth::Basic { .. }) => "Basic realm=\"sluice\"",
                _ => "Bearer",
            },
            max_body_bytes: config.max_body_bytes.0,
            max_events: config.max_events_per_request,
            budget: submitter.budget().clone(),
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
            submitter,
        }
    }

    /// Answers `request`, and counts the answer.
    pub async fn handle(&self, request: Request<RequestBody>) -> Answer {
        let http1 = request.version() < hyper::Version::HTTP_2;
        let mut answer = self.answer(request).await;
        if http1 && self.stopping.is_cancelled() {
            // Shutting down: the client learns with this answer that the connection ends, and
            // sends what comes next elsewhere instead of on a connection about to close.
            answer
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        let status = answer.status();
        emit(RequestAnswered {
            pipeline: &self.pipeline,
            status: status.as_str(),
        });
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
        let id = match request_id(request.headers()) {
            Ok(id) => id,
            Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        };
        if self.submitter.busy() {
            return self.too_many();
        }
        let content_type = request.headers().get(header::CONTENT_TYPE);
        let format = body::format(content_type.map(HeaderValue::as_bytes), self.codec);
        let (parts, body) = request.into_parts();
        let read = tokio::time::timeout_at(deadline, self.read(body, &parts.headers)).await;
        let (body, body_held) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(answer)) => return answer,
            Err(_) => return error(StatusCode::REQUEST_TIMEOUT, "the body took too long".into()),
        };
        // Past this many events the request could not fit in the whole budget: the payloads of
        // more are not even gathered.
        let kept = self.kept(&parts.headers);
        let per_event = PER_EVENT + copied_headers(&kept);
        let fit = (self.budget.limit().saturating_sub(body_held) / per_event).max(1);
        let payloads = match body::split(&body, format, self.max_events.min(fit)) {
            Ok(p) => p,
            Err(e @ SplitError::NotJson(_)) => {
                return error(StatusCode::BAD_REQUEST, e.to_string());
            }
            Err(SplitError::TooMany(_)) if fit < self.max_events => {
                return self.over_budget(body_held.saturating_add((fit + 1) * per_event));
            }
            Err(e @ SplitError::TooMany(_)) => {
                return error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string());
            }
        };
        // The payloads hold the body (counted until the last of them is gone); what is left to
        // count is each event and what the request keeps of it until it is answered.
        drop(body);
        let events = payloads.len().saturating_mul(per_event);
        if body_held.saturating_add(events) > self.budget.limit() {
            return self.over_budget(body_held.saturating_add(events));
        }
        let mut hold = match self.budget.hold(events) {
            Ok(hold) => hold,
            Err(NoRoom::Now) => return self.too_many(),
            Err(NoRoom::Ever) => return self.over_budget(body_held.saturating_add(events)),
        };
        self.submit(payloads, &parts.headers, kept, id, &mut hold, deadline)
            .await
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        self.authorization
            .as_ref()
            .is_none_or(|expected| expected.admits(headers.get(header::AUTHORIZATION)))
    }

    /// The body, held against the in-flight budget as it arrives (a body the budget has no room
    /// for is refused, not read on), and the bytes held: the body counts until the last event
    /// cut from it is gone.
    async fn read(
        &self,
        mut body: RequestBody,
        headers: &HeaderMap,
    ) -> Result<(Bytes, usize), Answer> {
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
        let declared = match declared {
            Some(n) if n > self.max_body_bytes as u64 => return Err(too_large()),
            Some(n) => n as usize,
            None => 0,
        };
        let mut hold = self
            .budget
            .hold(declared)
            .map_err(|e| self.no_room(e, declared))?;
        let mut buf = BytesMut::with_capacity(declared);
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| error(StatusCode::BAD_REQUEST, format!("reading the body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if buf.len() + data.len() > self.max_body_bytes {
                return Err(too_large());
            }
            if buf.capacity() - buf.len() < data.len() {
                let more = (buf.len() + data.len()).saturating_sub(hold.bytes());
                hold.grow(more)
                    .map_err(|e| self.no_room(e, buf.len() + data.len()))?;
                buf.reserve(data.len());
            }
            buf.extend_from_slice(&data);
            if buf.capacity() > hold.bytes() {
                let more = buf.capacity() - hold.bytes();
                hold.grow(more)
                    .map_err(|e| self.no_room(e, buf.capacity()))?;
            }
        }
        let held = hold.bytes();
        let body = HeldBody {
            body: buf.freeze(),
            _hold: hold,
        };
        Ok((Bytes::from_owner(body), held))
    }

    async fn submit(
        &self,
        payloads: Vec<Bytes>,
        headers: &HeaderMap,
        kept: Headers,
        request: Arc<str>,
        hold: &mut Hold,
        deadline: Instant,
    ) -> Answer {
        let n = payloads.len();
        let key = self
            .key_header
            .as_ref()
            .and_then(|name| headers.get(name))
            .map(|v| Bytes::copy_from_slice(v.as_bytes()));
        let timestamp = Some(now_millis());
        let items = payloads.into_iter().enumerate().map(|(i, payload)| Item {
            payload,
            key: key.clone(),
            headers: kept.clone(),
            timestamp,
            position: Position::Request {
                source: "http",
                request: request.clone(),
                index: i as u32,
            },
        });
        let track = self.ack == HttpAck::Delivered;
        let wait = deadline.saturating_duration_since(Instant::now());
        let submitted = self.submitter.submit_held(items, track, wait, Some(hold));
        let pending = match submitted.await {
            Ok(pending) => pending,
            Err(Refusal { taken, why }) if taken > 0 => {
                // Part of the request is in the pipeline: as after a timeout, the client sends
                // it all again (with its Idempotency-Key, the copies are dropped).
                let message = format!(
                    "{why}: {taken} of the request's {n} events were taken, not all of them; \
                     send the request again"
                );
                return self.unavailable(message);
            }
            Err(Refusal {
                why: Refused::Busy, ..
            }) => return self.too_many(),
            Err(Refusal {
                why: Refused::Closed,
                ..
            }) => return self.unavailable("the pipeline is stopping".into()),
        };
        let Some(pending) = pending else {
            return json(StatusCode::ACCEPTED, serde_json::json!({ "accepted": n }));
        };
        let outcomes = pending.wait(self.until(deadline)).await;
        self.answered(&outcomes, &request, n)
    }

    /// The answer to a request of `n` events once their `outcomes` are known (or the deadline
    /// passed): 200 when every one was delivered or dead-lettered, 503 otherwise.
    fn answered(&self, outcomes: &Outcomes, request: &str, n: usize) -> Answer {
        let delivered = outcomes.count(Outcome::Delivered);
        let dead_lettered = outcomes.count(Outcome::Rejected);
        if outcomes.all_done() {
            let body = serde_json::json!({ "accepted": delivered, "dead_lettered": dead_lettered });
            return json(StatusCode::OK, body);
        }
        let failed = outcomes.count(Outcome::Failed);
        let unfinished = outcomes.unfinished();
        emit(RequestUnfinished {
            pipeline: &self.pipeline,
            request: &request,
            events: n,
            failed,
            unfinished,
        });
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

    /// The answer to a request the budget has no room for: 429 while the budget is used, 413
    /// when the request needs more than the whole of it.
    fn no_room(&self, no_room: NoRoom, bytes: usize) -> Answer {
        match no_room {
            NoRoom::Now => self.too_many(),
            NoRoom::Ever => self.over_budget(bytes),
        }
    }

    fn over_budget(&self, bytes: usize) -> Answer {
        let message = format!(
            "the request needs at least {bytes} bytes of the in-flight budget, more than the whole \
             budget (max_in_flight_bytes: {} bytes); send fewer events per request",
            self.budget.limit()
        );
        error(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    fn unavailable(&self, message: String) -> Answer {
        let mut answer = error(StatusCode::SERVICE_UNAVAILABLE, message);
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, self.retry_after.clone());
        answer
    }
}

/// The client's `Idempotency-Key`, so that a request sent again after a 503 names its events as
/// before (a JetStream output then drops what it already stored); else an id no other request
/// of any replica has. A key that cannot name events is refused: taking the request without it
/// would store it twice when it is sent again.
/// An `Idempotency-Key` that cannot name a request: the request is answered 400.
#[derive(Debug, thiserror::Error)]
#[error(
    "the Idempotency-Key header must be 1 to {MAX_KEY_LEN} visible ASCII characters, without spaces"
)]
struct BadKey;

fn request_id(headers: &HeaderMap) -> Result<Arc<str>, BadKey> {
    let Some(given) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(Arc::from(nuid::next().as_str()));
    };
    let usable = given
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN && !k.contains(char::is_whitespace));
    match usable {
        Some(key) => Ok(Arc::from(key)),
        None => Err(BadKey),
    }
}

/// A request body, holding its bytes of the in-flight budget until the last payload cut from
/// it is gone.
struct HeldBody {
    body: Bytes,
    _hold: Hold,
}

impl AsRef<[u8]> for HeldBody {
    fn as_ref(&self) -> &[u8] {
        &self.body
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idempotency_key_names_the_request_or_says_what_is_taken() {
        let mut headers = HeaderMap::new();
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("order-42"));
        assert_eq!(&*request_id(&headers).unwrap(), "order-42");
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("has space"));
        assert_eq!(
            request_id(&headers).unwrap_err().to_string(),
            "the Idempotency-Key header must be 1 to 128 visible ASCII characters, without spaces"
        );
    }
}
