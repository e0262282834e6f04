//! The pipeline's error policy (`errors:`), applied to failed events wherever they fail (decode,
//! a transform, encode, the output): count and log them, then drop, dead-letter or stop.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::delivery::{Cause, MustStop, Outcome, Step};
use crate::event::{Event, Failed};
use crate::observe::Telemetry;
use crate::observe::events::pipeline::{
    DeadLetterDropped, EventFailed, EventsDropped, RedeliveryRequested,
};

/// Headers a dead letter gains, on top of its original ones.
pub mod headers {
    /// Why the event failed.
    pub const REASON: &str = "sluice-error-reason";
    /// Which step failed: `decode`, `transforms[N] (kind)`, `encode` or `output`.
    pub const STEP: &str = "sluice-error-step";
    /// Where the input was read, like `kafka:orders/3@1042` or `stdin:17`.
    pub const SOURCE: &str = "sluice-error-source";
    /// When it failed, RFC 3339 in UTC.
    pub const TIME: &str = "sluice-error-time";
    /// The pipeline's name.
    pub const PIPELINE: &str = "sluice-error-pipeline";
    /// `true` when the payload is only the start of the event's: it was larger than the input
    /// reads whole or than the dead-letter output takes.
    pub const TRUNCATED: &str = "sluice-error-truncated";
    /// With [`TRUNCATED`], the event's payload size in bytes before it was cut.
    pub const ORIGINAL_SIZE: &str = "sluice-error-original-size";
}

/// Where failed events go, per the pipeline's `errors` setting.
#[derive(Clone)]
pub enum Route {
    /// Count, log and acknowledge.
    Drop,
    /// Stop the pipeline without acknowledging.
    Stop,
    /// Send to the dead-letter output.
    DeadLetter(mpsc::Sender<Vec<Event>>),
    /// This is the dead-letter output itself: a failure here cannot go anywhere. A dead letter
    /// it refuses for what it is (too large even once cut) is logged and dropped, since it would
    /// be refused again after any restart; any other failure stops the pipeline with the input
    /// unacknowledged, to be read again once the dead-letter output works.
    Nowhere,
}

/// Applies the error policy.
#[derive(Clone)]
pub struct Failures {
    telemetry: Arc<Telemetry>,
    route: Route,
}

impl Failures {
    /// A handler sending failures along `route`.
    pub fn new(telemetry: Arc<Telemetry>, route: Route) -> Self {
        Failures { telemetry, route }
    }

    /// Whether a failure stops the pipeline (`errors: stop`).
    pub fn stops(&self) -> bool {
        matches!(self.route, Route::Stop)
    }

    /// Handles failed events: counted and logged, then dropped, dead-lettered, or the pipeline
    /// stops (returned as an error; the event's input is not acknowledged).
    pub async fn handle(&self, failures: Vec<Failed>) -> Result<(), MustStop> {
        if failures.is_empty() {
            return Ok(());
        }
        let t = &self.telemetry;
        let mut letters = Vec::new();
        for Failed { event, failure: f } in failures {
            let position = event.position.to_string();
            let dead_letter = matches!(self.route, Route::Nowhere);
            if dead_letter && f.cause == Cause::Event {
                // Refused for what it is: it would be refused again after any restart.
                t.emit(DeadLetterDropped {
                    reason: &f.reason,
                    source: &position,
                });
                event.ack.complete(Outcome::Rejected);
                continue;
            }
            if !dead_letter {
                // A dead letter was counted as failed when its event first failed.
                t.emit(EventFailed {
                    step: &f.step,
                    reason: &f.reason,
                    source: &position,
                });
            }
            if f.step == Step::Output && event.ack.redeliverable() {
                // The bus delivers it again (after a backoff): retry rather than give up.
                t.emit(RedeliveryRequested { source: &position });
                event.ack.complete(Outcome::Failed);
                continue;
            }
            let why = match &self.route {
                Route::Drop => {
                    t.emit(EventsDropped { count: 1 });
                    event.ack.complete(Outcome::Rejected);
                    continue;
                }
                Route::DeadLetter(_) => {
                    letters.push(dead_letter_of(Failed { event, failure: f }, t.pipeline()));
                    continue;
                }
                Route::Stop => "errors: stop",
                Route::Nowhere => "the dead-letter output failed",
            };
            event.ack.complete(Outcome::Failed);
            return Err(MustStop {
                position,
                step: f.step,
                reason: f.reason,
                why,
                cause: f.cause,
            });
        }
        if let Route::DeadLetter(dlq) = &self.route
            && !letters.is_empty()
            && let Err(mpsc::error::SendError(letters)) = dlq.send(letters).await
        {
            let first = &letters[0];
            return Err(MustStop {
                position: first.position.to_string(),
                step: Step::DeadLetter,
                reason: "the dead-letter output stopped".into(),
                why: "the dead-letter output failed",
                cause: Cause::Output,
            });
        }
        Ok(())
    }
}

/// The original event with headers saying what failed, for the dead-letter output.
pub fn dead_letter_of(failed: Failed, pipeline: &str) -> Event {
    let Failed {
        event: mut e,
        failure: f,
    } = failed;
    let source = e.position.to_string();
    let time = jiff::Timestamp::now().to_string();
    // One line each: reasons can quote input (a jq `error(...)`), and NATS headers cannot carry
    // line breaks.
    let reason: String = f
        .reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for (name, value) in [
        (headers::REASON, reason),
        (headers::STEP, f.step.to_string()),
        (headers::SOURCE, source),
        (headers::TIME, time),
        (headers::PIPELINE, pipeline.to_string()),
    ] {
        e.headers.push((name.to_string(), Bytes::from(value)));
    }
    if let Some(size) = e.oversize {
        mark_truncated(&mut e, size);
    }
    // The dead-letter output decides where it goes.
    e.destination = None;
    e.partition = None;
    e
}

fn mark_truncated(e: &mut Event, original: u64) {
    e.headers
        .push((headers::TRUNCATED.to_string(), Bytes::from_static(b"true")));
    e.headers.push((
        headers::ORIGINAL_SIZE.to_string(),
        Bytes::from(original.to_string()),
    ));
}

/// Bytes a message takes on top of its payload: key, and headers with their framing (NATS
/// writes `name: value\r\n`, Kafka a few varints per header), counted generously.
fn overhead(e: &Event) -> usize {
    let headers: usize = e.headers.iter().map(|(n, v)| n.len() + v.len() + 8).sum();
    headers + e.key.as_ref().map_or(0, Bytes::len) + 64
}

/// Cuts a dead letter's payload so that the whole message, key and headers included, takes at
/// most `limit` bytes: for a dead-letter output that refuses larger messages. The headers
/// [`headers::TRUNCATED`] and [`headers::ORIGINAL_SIZE`] say so. A UTF-8 payload is cut between
/// characters.
pub fn fit(e: &mut Event, limit: usize) {
    if e.payload.len() + overhead(e) <= limit {
        return;
    }
    if e.header(headers::TRUNCATED).is_none() {
        mark_truncated(e, e.payload.len() as u64);
    }
    let mut keep = limit.saturating_sub(overhead(e)).min(e.payload.len());
    // Back off to the start of a character (at most three continuation bytes).
    let payload = &e.payload;
    for _ in 0..3 {
        if keep > 0 && keep < payload.len() && payload[keep] & 0b1100_0000 == 0b1000_0000 {
            keep -= 1;
        }
    }
    e.payload = e.payload.slice(..keep);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{Ack, Failure};
    use crate::event::Position;

    fn letter(payload: &str) -> Event {
        let f = Failed {
            event: Event::new(
                Bytes::copy_from_slice(payload.as_bytes()),
                Position::Generated { seq: 1 },
                Ack::untracked(),
            ),
            failure: Failure::of_event(Step::Decode, "malformed"),
        };
        dead_letter_of(f, "p")
    }

    fn size(e: &Event) -> usize {
        e.payload.len() + overhead(e)
    }

    #[test]
    fn a_dead_letter_that_fits_is_left_alone() {
        let mut e = letter("small");
        let before = e.headers.len();
        fit(&mut e, 10_000);
        assert_eq!(&e.payload[..], b"small");
        assert_eq!(e.headers.len(), before);
        assert_eq!(e.header(headers::TRUNCATED), None);
    }

    #[test]
    fn a_large_dead_letter_is_cut_to_fit_between_characters_and_says_so() {
        // Two-byte characters: an odd limit falls inside one.
        let payload = "é".repeat(5_000);
        for limit in [2_001, 2_002, 3_333] {
            let mut e = letter(&payload);
            fit(&mut e, limit);
            assert!(size(&e) <= limit, "{} over {limit}", size(&e));
            assert!(size(&e) + 4 > limit, "cut no more than needed");
            let kept = std::str::from_utf8(&e.payload).expect("cut between characters");
            assert!(payload.starts_with(kept));
            assert_eq!(
                e.header(headers::TRUNCATED).map(|v| &v[..]),
                Some(&b"true"[..])
            );
            assert_eq!(
                e.header(headers::ORIGINAL_SIZE).map(|v| &v[..]),
                Some(payload.len().to_string().as_bytes())
            );
        }
    }

    #[test]
    fn a_prefix_already_cut_at_the_input_keeps_its_original_size() {
        let mut event = Event::new(
            Bytes::from(vec![b'x'; 65_536]),
            Position::Generated { seq: 1 },
            Ack::untracked(),
        );
        event.oversize = Some(300_000_000);
        let f = Failed {
            event,
            failure: Failure::of_event(Step::Limits, "too large"),
        };
        let mut e = dead_letter_of(f, "p");
        assert_eq!(
            e.header(headers::ORIGINAL_SIZE).map(|v| &v[..]),
            Some(&b"300000000"[..])
        );
        fit(&mut e, 10_000);
        assert!(size(&e) <= 10_000);
        let named = |name| e.headers.iter().filter(|(n, _)| n == name).count();
        assert_eq!(
            (named(headers::TRUNCATED), named(headers::ORIGINAL_SIZE)),
            (1, 1)
        );
        assert_eq!(
            e.header(headers::ORIGINAL_SIZE).map(|v| &v[..]),
            Some(&b"300000000"[..])
        );
    }
}
