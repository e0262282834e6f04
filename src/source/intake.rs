//! What every input repeats, done once: cutting what it reads into batches, handing them on,
//! waiting while the pipeline's in-flight budget is used up, and counting what was read. An
//! input is left with its own protocol: where events come from and how they are acknowledged.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

use crate::delivery::Budget;
use crate::event::Event;
use crate::observe::Telemetry;
use crate::observe::events::pipeline::EventsReceived;

/// Most events a new batch has room for before it grows: batches are usually far smaller than a
/// large `batch_size`.
const INITIAL_CAPACITY: usize = 1024;

/// Where an input hands the batches it reads.
pub struct Intake {
    out: mpsc::Sender<Vec<Event>>,
    telemetry: Arc<Telemetry>,
    budget: Arc<Budget>,
    shutdown: CancellationToken,
    batch_size: usize,
}

/// Room for one batch downstream, counted as read when used.
pub struct Permit<'a> {
    permit: mpsc::Permit<'a, Vec<Event>>,
    telemetry: &'a Telemetry,
}

impl Permit<'_> {
    /// Hands `batch` on and counts it as read.
    pub fn send(self, batch: Vec<Event>) {
        self.telemetry.emit(EventsReceived { count: batch.len() });
        self.permit.send(batch);
    }
}

/// Whether there is room for a batch downstream.
pub enum Room<'a> {
    /// There is: the batch goes with this.
    Free(Permit<'a>),
    /// Not now: the pipeline is full.
    Full,
    /// Never again: the pipeline takes no more events.
    Closed,
}

/// What [`Intake::gather`] found.
pub enum Gathered {
    /// A batch of one or more events.
    Batch(Vec<Event>),
    /// The stream ended.
    Ended,
    /// Shutdown was requested.
    Stopped,
}

impl Intake {
    /// Batches of at most `batch_size` events into `out`, for the pipeline `telemetry` counts
    /// and `budget` bounds, until `shutdown`.
    pub fn new(
        out: mpsc::Sender<Vec<Event>>,
        telemetry: Arc<Telemetry>,
        budget: Arc<Budget>,
        shutdown: CancellationToken,
        batch_size: usize,
    ) -> Intake {
        Intake {
            out,
            telemetry,
            budget,
            shutdown,
            batch_size: batch_size.max(1),
        }
    }

    /// An empty batch.
    pub fn batch(&self) -> Vec<Event> {
        Vec::with_capacity(self.batch_size.min(INITIAL_CAPACITY))
    }

    /// Whether `batch` is as large as a batch gets.
    pub fn is_full(&self, batch: &[Event]) -> bool {
        batch.len() >= self.batch_size
    }

    /// Hands a batch on, waiting while the pipeline is full, then waits while the in-flight
    /// budget is used up (or until shutdown); false when the pipeline no longer takes events.
    pub async fn send(&self, batch: Vec<Event>) -> bool {
        if batch.is_empty() {
            return true;
        }
        self.telemetry.emit(EventsReceived { count: batch.len() });
        let sent = self.out.send(batch).await.is_ok();
        self.room().await;
        sent
    }

    /// [`Intake::send`] for an input reading on a thread of its own, outside the runtime.
    pub fn send_blocking(&self, batch: Vec<Event>, runtime: &tokio::runtime::Handle) -> bool {
        if batch.is_empty() {
            return true;
        }
        self.telemetry.emit(EventsReceived { count: batch.len() });
        if self.out.blocking_send(batch).is_err() {
            return false;
        }
        if self.budget_full() {
            runtime.block_on(self.room());
        }
        true
    }

    /// Room for a batch now, without waiting.
    pub fn try_reserve(&self) -> Room<'_> {
        match self.out.try_reserve() {
            Ok(permit) => Room::Free(self.permit(permit)),
            Err(TrySendError::Full(())) => Room::Full,
            Err(TrySendError::Closed(())) => Room::Closed,
        }
    }

    /// Room for a batch, waiting for it as long as it takes; None when the pipeline no longer
    /// takes events.
    pub async fn reserve(&self) -> Option<Permit<'_>> {
        self.out.reserve().await.ok().map(|p| self.permit(p))
    }

    /// Room for a batch, waiting for it at most `wait`.
    pub async fn reserve_within(&self, wait: Duration) -> Room<'_> {
        match tokio::time::timeout(wait, self.out.reserve()).await {
            Ok(Ok(permit)) => Room::Free(self.permit(permit)),
            Ok(Err(_)) => Room::Closed,
            Err(_) => Room::Full,
        }
    }

    fn permit<'a>(&'a self, permit: mpsc::Permit<'a, Vec<Event>>) -> Permit<'a> {
        Permit {
            permit,
            telemetry: &self.telemetry,
        }
    }

    /// Whether the pipeline's in-flight budget is used up: reading more should wait.
    pub fn budget_full(&self) -> bool {
        self.budget.is_full()
    }

    /// Cancelled when the pipeline takes no more events: shutdown, or the pipeline failed.
    pub fn stopping(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Waits until the in-flight budget has room, or shutdown.
    pub async fn room(&self) {
        tokio::select! {
            _ = self.budget.room() => {}
            // Stopping: the input reads no more anyway.
            _ = self.shutdown.cancelled() => {}
        }
    }

    /// The next batch from `stream`: waits for its first item (or shutdown), then takes the
    /// items already there, without waiting, up to a full batch; `event` turns an item into an
    /// event.
    pub async fn gather<S, F>(&self, stream: &mut S, mut event: F) -> Gathered
    where
        S: Stream + Unpin,
        F: FnMut(S::Item) -> Event,
    {
        let first = tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => return Gathered::Stopped,
            item = stream.next() => item,
        };
        let Some(first) = first else {
            return Gathered::Ended;
        };
        let mut batch = self.batch();
        batch.push(event(first));
        while !self.is_full(&batch) {
            match stream.next().now_or_never() {
                Some(Some(item)) => batch.push(event(item)),
                _ => break,
            }
        }
        Gathered::Batch(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Position;

    fn event(n: u64) -> Event {
        Event::new(
            bytes::Bytes::from(n.to_string()),
            Position::Generated { seq: n },
            crate::delivery::Ack::untracked(),
        )
    }

    fn intake(capacity: usize, batch_size: usize) -> (Intake, mpsc::Receiver<Vec<Event>>) {
        let cx = crate::context::PipelineContext::new("intake", usize::MAX);
        let (tx, rx) = mpsc::channel(capacity);
        let (telemetry, budget) = (Telemetry::new("intake"), cx.budget().clone());
        let intake = Intake::new(tx, telemetry, budget, CancellationToken::new(), batch_size);
        (intake, rx)
    }

    #[tokio::test]
    async fn gather_takes_what_is_ready_up_to_a_full_batch() {
        let (intake, _rx) = intake(4, 3);
        let mut items = futures_util::stream::iter(0..7u64);
        let mut seqs = Vec::new();
        loop {
            match intake.gather(&mut items, event).await {
                Gathered::Batch(b) => seqs.push(b.len()),
                Gathered::Ended => break,
                Gathered::Stopped => panic!("not stopped"),
            }
        }
        assert_eq!(seqs, [3, 3, 1]);
    }

    #[tokio::test]
    async fn gather_stops_at_shutdown() {
        let (intake, _rx) = intake(4, 3);
        intake.shutdown.cancel();
        let mut never = futures_util::stream::pending::<u64>();
        assert!(matches!(
            intake.gather(&mut never, |_| unreachable!()).await,
            Gathered::Stopped
        ));
    }

    #[tokio::test]
    async fn what_is_handed_on_is_counted_once_and_a_closed_pipeline_says_so() {
        let (intake, mut rx) = intake(1, 10);
        let t = intake.telemetry.clone();
        assert!(intake.send(vec![event(0), event(1)]).await);
        assert!(matches!(intake.try_reserve(), Room::Full));
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(2));
        match intake.try_reserve() {
            Room::Free(p) => p.send(vec![event(2)]),
            _ => panic!("room expected"),
        }
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(1));
        assert_eq!(t.summary().received, 3);
        drop(rx);
        assert!(!intake.send(vec![event(3)]).await);
        assert!(matches!(intake.try_reserve(), Room::Closed));
        assert!(matches!(
            intake.reserve_within(Duration::from_millis(1)).await,
            Room::Closed
        ));
    }
}
