//! Inputs that are handed events instead of reading them (HTTP requests, Lambda invocations): a
//! submission goes into the pipeline in batches, and whoever submitted it can wait until every
//! event derived from each of its items is delivered or dead-lettered, to answer for them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::intake::{Intake, Room};
use super::{SourceContext, SourceError};
use crate::context::PipelineContext;
use crate::delivery::{AckMsg, AckSender, Budget, Hold, Outcome};
use crate::event::{EVENT_OVERHEAD, Event, Headers, Position};

/// How long a submission that brings its own budget waits for room for its first batch before
/// the pipeline counts as full: a batch leaves a pipeline that is moving in far less time, and
/// one that stays full should be answered at once, not after the whole wait.
const FULL_AFTER: Duration = Duration::from_millis(100);

/// One item of a submission: it becomes one event.
#[derive(Debug)]
pub struct Item {
    /// The payload, as received.
    pub payload: Bytes,
    /// Message key.
    pub key: Option<Bytes>,
    /// Headers.
    pub headers: Headers,
    /// Milliseconds since the Unix epoch, when the request says.
    pub timestamp: Option<i64>,
    /// Where it came from.
    pub position: Position,
}

/// Why a submission was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The in-flight budget is used up, or there was no room in the pipeline in time: try again
    /// later.
    #[error("the pipeline is full")]
    Busy,
    /// The pipeline takes no more events (shutting down, or failed).
    #[error("the pipeline is stopping")]
    Closed,
}

/// A submission refused part way, or before any of it was handed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{why} ({taken} items were taken)")]
pub struct Refusal {
    /// Why.
    pub why: Refused,
    /// Items handed on to the pipeline before the refusal: they stay in it.
    pub taken: usize,
}

impl Refusal {
    fn new(why: Refused, taken: usize) -> Refusal {
        Refusal { why, taken }
    }
}

/// Hands submissions to the pipeline. Shared by every request being served; the pipeline's
/// input ends when the last clone is gone.
#[derive(Clone)]
pub struct Submitter {
    inner: Arc<Inner>,
}

struct Inner {
    intake: Intake,
    pipeline: PipelineContext,
    counted: AckSender,
}

/// What happened to each item of a submission, in order; `None` for an item not finished yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcomes(pub Vec<Option<Outcome>>);

impl Outcomes {
    /// Items with this outcome.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.0.iter().filter(|o| **o == Some(outcome)).count()
    }

    /// Items not finished yet.
    pub fn unfinished(&self) -> usize {
        self.0.iter().filter(|o| o.is_none()).count()
    }

    /// Whether every item may be acknowledged: each was delivered, filtered out or
    /// dead-lettered.
    pub fn all_done(&self) -> bool {
        self.0.iter().all(|o| o.is_some_and(Outcome::is_ack))
    }

    /// Whether item `index` may be acknowledged (see [`Outcomes::all_done`]).
    pub fn is_done(&self, index: usize) -> bool {
        self.0
            .get(index)
            .is_some_and(|o| o.is_some_and(Outcome::is_ack))
    }
}

/// A submission being waited for.
pub struct Pending {
    answers: mpsc::UnboundedReceiver<AckMsg>,
    outcomes: Vec<Option<Outcome>>,
    left: usize,
}

impl Pending {
    /// Waits until every item is finished (the pipeline reports a lost event as failed, so this
    /// ends) or `deadline` passes; what happened to each item either way.
    pub async fn wait(mut self, deadline: impl std::future::Future<Output = ()>) -> Outcomes {
        tokio::pin!(deadline);
        while self.left > 0 {
            let msg = tokio::select! {
                // Answers already there count, even when the deadline has passed too.
                biased;
                msg = self.answers.recv() => msg,
                () = &mut deadline => break,
            };
            let Some(msg) = msg else { break };
            if let Some(slot @ None) = self.outcomes.get_mut(msg.id as usize) {
                *slot = Some(msg.outcome);
                self.left -= 1;
            }
        }
        Outcomes(self.outcomes)
    }
}

impl Submitter {
    /// Submissions go through `intake`, counted by `telemetry`; `counted` makes the acks of
    /// submissions nobody waits for.
    pub fn new(intake: Intake, pipeline: PipelineContext, counted: AckSender) -> Submitter {
        Submitter {
            inner: Arc::new(Inner {
                intake,
                pipeline,
                counted,
            }),
        }
    }

    /// Whether the in-flight budget is used up: a new submission should be refused.
    pub fn busy(&self) -> bool {
        self.inner.intake.budget_full()
    }

    /// Cancelled when the pipeline takes no more events: shutdown, or the pipeline failed.
    pub fn stopping(&self) -> &CancellationToken {
        self.inner.intake.stopping()
    }

    /// The pipeline's in-flight budget.
    pub fn budget(&self) -> &Arc<Budget> {
        self.inner.pipeline.budget()
    }

    /// Hands `items` to the pipeline, waiting at most `wait` for room in it. With `track`, the
    /// returned [`Pending`] tells what happened to each item; without, nobody waits for them.
    /// Items handed on before a refusal stay in the pipeline.
    pub async fn submit(
        &self,
        items: Vec<Item>,
        track: bool,
        wait: Duration,
    ) -> Result<Option<Pending>, Refused> {
        self.submit_held(items, track, wait, None)
            .await
            .map_err(|refusal| refusal.why)
    }

    /// [`Submitter::submit`] for items whose payloads are counted against the in-flight budget
    /// already, with their events' overhead, by `hold`: each event counts its overhead (and its
    /// copy of the headers, see [`copied_headers`]) for itself from when it is made, and that
    /// much of the hold is given back. A pipeline with no room for the first batch refuses the
    /// submission at once (it is full, not busy for a moment); once the first batch is in, the
    /// rest wait for room as long as `wait`. A refusal says how many items were handed on
    /// before it.
    pub async fn submit_held<I>(
        &self,
        items: I,
        track: bool,
        wait: Duration,
        mut hold: Option<&mut Hold>,
    ) -> Result<Option<Pending>, Refusal>
    where
        I: IntoIterator<Item = Item>,
        I::IntoIter: ExactSizeIterator,
    {
        let inner = &*self.inner;
        let items = items.into_iter();
        let (acks, pending) = if track {
            let (acks, answers) = inner.pipeline.ack_channel();
            let pending = Pending {
                answers,
                outcomes: vec![None; items.len()],
                left: items.len(),
            };
            (acks, Some(pending))
        } else {
            (inner.counted.clone(), None)
        };
        let mut items = items.enumerate().peekable();
        let mut first = true;
        let mut taken = 0;
        while items.peek().is_some() {
            let room = if first && hold.is_some() {
                inner.intake.reserve_within(FULL_AFTER).await
            } else {
                inner.intake.reserve_within(wait).await
            };
            first = false;
            let permit = match room {
                Room::Free(permit) => permit,
                Room::Full => return Err(Refusal::new(Refused::Busy, taken)),
                Room::Closed => return Err(Refusal::new(Refused::Closed, taken)),
            };
            let mut batch = inner.intake.batch();
            while !inner.intake.is_full(&batch) {
                let Some((i, item)) = items.next() else { break };
                let event = match hold.as_deref_mut() {
                    None => event(item, &acks, i),
                    Some(hold) => {
                        let event = counted_event(item, &acks, i);
                        hold.release(EVENT_OVERHEAD + copied_headers(&event.headers));
                        event
                    }
                };
                batch.push(event);
            }
            taken += batch.len();
            permit.send(batch);
        }
        Ok(pending)
    }
}

/// The input of a pipeline whose events are handed to it from outside (a Lambda function's
/// invocations): once the pipeline runs, it hands its [`Submitter`] over, then waits for
/// shutdown. The pipeline ends once shutdown began and the last clone of the Submitter is gone.
#[derive(Clone)]
pub struct Handoff {
    kind: &'static str,
    to: Arc<Mutex<Option<oneshot::Sender<Submitter>>>>,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff").field("kind", &self.kind).finish()
    }
}

impl Handoff {
    /// An input named `kind` in logs and metrics, and where its Submitter arrives.
    pub fn new(kind: &'static str) -> (Handoff, oneshot::Receiver<Submitter>) {
        let (tx, rx) = oneshot::channel();
        let handoff = Handoff {
            kind,
            to: Arc::new(Mutex::new(Some(tx))),
        };
        (handoff, rx)
    }

    /// What the input is called in logs and metrics.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Hands the pipeline's Submitter over, then waits for shutdown. Nobody to hand it to ends
    /// the input at once; a Submitter is handed over once only.
    pub async fn run(self, ctx: SourceContext) -> Result<(), SourceError> {
        let submitter = Submitter::new(ctx.intake, ctx.pipeline, ctx.counted);
        let to = self.to.lock().ok().and_then(|mut to| to.take());
        let Some(to) = to else {
            return Err(SourceError::Ended {
                input: self.kind,
                what: "this input was already handed to a pipeline",
            });
        };
        if to.send(submitter).is_ok() {
            ctx.shutdown.cancelled().await;
        }
        Ok(())
    }
}

fn event(item: Item, acks: &AckSender, index: usize) -> Event {
    let event = Event::new(item.payload, item.position, acks.ack(0, index as u64));
    with_item_fields(event, item.key, item.headers, item.timestamp)
}

/// What an event's own copy of its headers takes beyond [`EVENT_OVERHEAD`]: the list and the
/// names (the values are shared with the other events of the same submission).
pub fn copied_headers(headers: &Headers) -> usize {
    if headers.is_empty() {
        return 0;
    }
    let names: usize = headers.iter().map(|(name, _)| name.len()).sum();
    headers.len() * std::mem::size_of::<(String, Bytes)>() + names
}

/// The event of an item whose payload is counted already: only the event's own overhead and
/// its copy of the headers are.
fn counted_event(item: Item, acks: &AckSender, index: usize) -> Event {
    // Made with an empty payload, the event counts its overhead only.
    let event = Event::new(Bytes::new(), item.position, acks.ack(0, index as u64));
    event.ack.charge(copied_headers(&item.headers));
    let mut event = with_item_fields(event, item.key, item.headers, item.timestamp);
    event.payload = item.payload;
    event
}

fn with_item_fields(
    mut event: Event,
    key: Option<Bytes>,
    headers: Headers,
    timestamp: Option<i64>,
) -> Event {
    event.key = key;
    event.headers = headers;
    event.timestamp = timestamp;
    event
}

#[cfg(test)]
mod tests;
