//! What every output repeats, done once: taking batches, confirming what was delivered,
//! retrying what failed for a passing reason (with backoff and the circuit breaker), and handing
//! what the output refused to the error policy. An output is left with its own protocol: one
//! attempt at a batch, sorting each event into delivered, refused or to retry ([`Protocol`]);
//! an output that holds events between batches says when it takes them and what it does in
//! between ([`Holding`]).

mod holding;

pub use holding::{Holding, run_holding};

use super::Batches;
use tokio::sync::mpsc;

use super::retry::{Held, Retry};
use super::{SinkContext, SinkError};
use crate::delivery::MustStop;
use crate::event::{Event, Failed};

/// What became of the events of an attempt, as the output finds out.
#[derive(Default)]
pub struct Attempt {
    delivered: Vec<Event>,
    refused: Vec<Failed>,
    again: Vec<(Held, String)>,
    /// How long the output asked to be left alone before the next attempt.
    wait: Option<std::time::Duration>,
}

impl Attempt {
    /// The output confirmed the event.
    pub fn delivered(&mut self, event: Event) {
        self.delivered.push(event);
    }

    /// The output confirmed every event of `batch`.
    pub fn delivered_all(&mut self, batch: Vec<Held>) {
        self.delivered.extend(batch.into_iter().map(|h| h.event));
    }

    /// The output refused the event for a reason that will not pass: it follows the error
    /// policy.
    pub fn refused(&mut self, failed: Failed) {
        self.refused.push(failed);
    }

    /// The event was not delivered for a reason that may pass: it is attempted again.
    pub fn retry(&mut self, held: Held, reason: String) {
        self.again.push((held, reason));
    }

    /// The output asked not to be tried again for `wait` (an HTTP `Retry-After`).
    pub fn wait_at_least(&mut self, wait: std::time::Duration) {
        self.wait = Some(self.wait.map_or(wait, |w| w.max(wait)));
    }

    /// Whether events wait to be attempted again.
    pub fn has_retries(&self) -> bool {
        !self.again.is_empty()
    }

    /// How many events wait to be attempted again.
    pub fn retries(&self) -> usize {
        self.again.len()
    }
}

/// One output's confirmations, retries and refusals.
pub struct Delivery {
    ctx: SinkContext,
    /// None for an output whose failures never pass (a local file): it exports no retry
    /// metrics.
    retry: Option<Retry>,
    /// The outcomes of [`Delivery::deliver`]'s attempts, its buffers kept from one batch to
    /// the next.
    scratch: Attempt,
}

impl Delivery {
    /// The delivery state of the output `ctx` runs, retrying failures that may pass.
    pub fn new(ctx: SinkContext) -> Delivery {
        Delivery::with_retries(ctx, true)
    }

    fn with_retries(ctx: SinkContext, retries: bool) -> Delivery {
        Delivery {
            retry: retries.then(|| Retry::new(&ctx)),
            ctx,
            scratch: Attempt::default(),
        }
    }

    /// What the output is given.
    pub fn ctx(&self) -> &SinkContext {
        &self.ctx
    }

    /// Whether the circuit is open: the output failed attempts in a row.
    pub fn circuit_open(&self) -> bool {
        self.retry.as_ref().is_some_and(Retry::is_open)
    }

    /// Confirms the delivered events of `attempt` (which closes the circuit) and hands the
    /// refused ones to the error policy; the events to retry stay in it.
    pub async fn settle(&mut self, attempt: &mut Attempt) -> Result<(), MustStop> {
        if !attempt.delivered.is_empty() {
            if let Some(retry) = &mut self.retry {
                retry.succeeded();
            }
            self.ctx.confirm(attempt.delivered.drain(..));
        }
        if !attempt.refused.is_empty() {
            self.ctx
                .failures
                .handle(std::mem::take(&mut attempt.refused))
                .await?;
        }
        Ok(())
    }

    /// Hands one refused event to the error policy.
    pub async fn refuse(&self, failed: Failed) -> Result<(), MustStop> {
        self.ctx.failures.handle(vec![failed]).await
    }

    /// After an attempt that left events to retry: waits the backoff (opening the circuit after
    /// too many failures in a row) and returns them for the next attempt; events out of attempts
    /// follow the error policy instead.
    pub async fn back_off(&mut self, attempt: &mut Attempt) -> Result<Vec<Held>, MustStop> {
        let again = std::mem::take(&mut attempt.again);
        let retry = self.retry.get_or_insert_with(|| Retry::new(&self.ctx));
        if let Some(wait) = attempt.wait.take() {
            retry.wait_at_least(wait);
        }
        retry.after_attempt(again, &self.ctx).await
    }

    /// Attempts `batch` with `protocol` until every event is delivered, refused, or out of
    /// attempts: the events to retry are attempted again, without the others, after the
    /// backoff. What was confirmed or refused before an attempt failed is settled all the same.
    pub async fn deliver<P: Protocol>(
        &mut self,
        protocol: &mut P,
        batch: Vec<Held>,
    ) -> Result<(), SinkError> {
        let mut attempt = std::mem::take(&mut self.scratch);
        let mut todo = batch;
        loop {
            let result = protocol.attempt(todo, &mut attempt, &self.ctx).await;
            self.settle(&mut attempt).await?;
            result?;
            if !attempt.has_retries() {
                break;
            }
            todo = self.back_off(&mut attempt).await?;
            if todo.is_empty() {
                break;
            }
        }
        self.scratch = attempt;
        Ok(())
    }
}

/// An output that delivers a batch at a time: its protocol. [`run`] takes the batches; an
/// output that gathers events into its own writes runs it through [`Delivery::deliver`], a
/// write at a time.
pub trait Protocol: Send {
    /// Whether failures of this output may pass (a broker down): false for one whose every
    /// failure is final (a local file), which then has no circuit and exports no retry metrics.
    const RETRIES: bool = true;

    /// How long a write may wait for more events to fill it, and how many fill it: an output
    /// whose writes cost a round trip each (an HTTP request) trades a little latency for fuller
    /// writes. None: write what is there.
    fn linger(&self) -> Option<(std::time::Duration, usize)> {
        None
    }

    /// One attempt at `batch`: every event goes into `attempt` as delivered, refused or to
    /// retry. An error stops the output (nothing more can be delivered); the events it did not
    /// confirm are not acknowledged.
    fn attempt(
        &mut self,
        batch: Vec<Held>,
        attempt: &mut Attempt,
        ctx: &SinkContext,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// An output whose every write is final, all of a batch or nothing (a local file, standard
/// output): it has no retries, no circuit and no retry metrics.
pub trait WriteAll: Send {
    /// Writes every event of `batch`. An error stops the output; the batch is dropped
    /// unconfirmed, so its inputs count as failed.
    fn write_all(&mut self, batch: &[Held]) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// The protocol of a [`WriteAll`] output: a batch written is a batch delivered.
pub struct AllOrNothing<W>(pub W);

impl<W: WriteAll> Protocol for AllOrNothing<W> {
    const RETRIES: bool = false;

    async fn attempt(
        &mut self,
        batch: Vec<Held>,
        attempt: &mut Attempt,
        _ctx: &SinkContext,
    ) -> Result<(), SinkError> {
        self.0.write_all(&batch).await?;
        attempt.delivered_all(batch);
        Ok(())
    }
}

/// Delivers batches until the channel closes: each batch (joined by those waiting behind it) is
/// attempted until every event is delivered, refused, or out of attempts. While events are
/// retried no new batch is taken, so the input stops reading.
pub async fn run<P: Protocol>(
    mut protocol: P,
    mut rx: Batches,
    ctx: SinkContext,
) -> Result<(), SinkError> {
    let mut delivery = Delivery::with_retries(ctx, P::RETRIES);
    while let Some(mut batch) = next_write(&mut rx).await {
        if let Some((wait, enough)) = protocol.linger() {
            fill(&mut rx, &mut batch, wait, enough).await;
        }
        let batch = batch.into_iter().map(Held::new).collect();
        delivery.deliver(&mut protocol, batch).await?;
    }
    Ok(())
}

/// Most events one write takes from the queue at once.
const MAX_WRITE: usize = 4096;

/// The next batch to write, joined by the batches already waiting behind it (up to about
/// [`MAX_WRITE`] events): an output that waits for a confirmation per write pays for it once
/// for all of them.
pub(crate) async fn next_write(rx: &mut mpsc::Receiver<Vec<Event>>) -> Option<Vec<Event>> {
    let mut batch = rx.recv().await?;
    crate::delivery::join_waiting(rx, &mut batch, MAX_WRITE);
    Some(batch)
}

/// Adds the batches that arrive within `wait` to `batch`, until it holds `enough` events.
async fn fill(
    rx: &mut mpsc::Receiver<Vec<Event>>,
    batch: &mut Vec<Event>,
    wait: std::time::Duration,
    enough: usize,
) {
    let deadline = tokio::time::Instant::now() + wait;
    while batch.len() < enough {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(more)) => batch.extend(more),
            // Waited long enough, or nothing more will come.
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests;
