//! Acknowledgements: an input is done only when every event derived from it is done.
//!
//! A source gives each input an [`Ack`]. Transforms fork it once per output event (fan-out) or
//! complete it at once (filtered out). Outputs complete each fork after confirmed delivery. When
//! the last fork is gone the source receives one [`AckMsg`] with the worst outcome of them all. A
//! fork dropped without being completed counts as [`Outcome::Failed`]: losing track of an event
//! can never acknowledge its input.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;

use super::budget::Budget;

/// How an input ended. Ordered: the worst outcome of all derived events wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Outcome {
    /// Every derived event was delivered (or there were none: filtered out).
    Delivered = 0,
    /// Dead-lettered or dropped by the error policy; the input may be acknowledged.
    Rejected = 1,
    /// Something derived from it was not delivered: do not acknowledge the input.
    Failed = 2,
}

impl Outcome {
    fn from_u8(v: u8) -> Outcome {
        match v {
            0 => Outcome::Delivered,
            1 => Outcome::Rejected,
            _ => Outcome::Failed,
        }
    }

    /// Whether the input may be acknowledged.
    pub fn is_ack(self) -> bool {
        self != Outcome::Failed
    }
}

/// What a source receives when an input is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckMsg {
    /// The source's lane (a Kafka partition index, or 0).
    pub lane: u32,
    /// The source's id of the input within the lane (an offset, a line, a ticket).
    pub id: u64,
    /// The worst outcome of every event derived from it.
    pub outcome: Outcome,
    /// When the outcome is [`Outcome::Failed`]: the lowest id of the inputs answered that
    /// failed; below it, the inputs of a run (see [`Ack::join_at`]) may be acknowledged. `id`
    /// for an answer that covers one input; `u64::MAX` when none failed.
    pub failed_from: u64,
}

/// What every ack of one source shares: where answers go, and the pipeline's in-flight budget and
/// latency histogram.
struct Channel {
    tx: Option<mpsc::UnboundedSender<AckMsg>>,
    latency: metrics::Histogram,
    budget: Arc<Budget>,
}

struct Shared {
    lane: u32,
    id: u64,
    redeliverable: bool,
    /// Inputs answered by this one acknowledgement (see [`Ack::join`]).
    inputs: AtomicUsize,
    outcome: AtomicU8,
    /// The lowest id whose claim failed (`u64::MAX` while none did).
    failed_from: AtomicU64,
    read_at: Instant,
    bytes: AtomicUsize,
    channel: Arc<Channel>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let outcome = Outcome::from_u8(self.outcome.load(Ordering::Acquire));
        let budget = &self.channel.budget;
        let inputs = self.inputs.load(Ordering::Acquire);
        budget.release(self.bytes.load(Ordering::Acquire));
        budget.inputs_finished(inputs);
        if outcome == Outcome::Delivered {
            self.channel
                .latency
                .record_many(self.read_at.elapsed().as_secs_f64(), inputs);
        }
        // The source may be gone (shutdown deadline passed); then nobody needs the answer.
        if let Some(tx) = &self.channel.tx {
            let _ = tx.send(AckMsg {
                lane: self.lane,
                id: self.id,
                outcome,
                failed_from: self.failed_from.load(Ordering::Acquire),
            });
        }
    }
}

/// A claim on an input's acknowledgement, held by an event derived from it.
pub struct Ack {
    shared: Option<Arc<Shared>>,
    /// The id of the input this claim is for (see [`Ack::join_at`]).
    id: u64,
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.shared {
            Some(s) => write!(f, "Ack({}/{})", s.lane, self.id),
            None => f.write_str("Ack(untracked)"),
        }
    }
}

impl Ack {
    /// An ack nobody waits for.
    pub fn untracked() -> Ack {
        Ack {
            shared: None,
            id: 0,
        }
    }

    /// Another claim on the same input, for one more derived event.
    pub fn fork(&self) -> Ack {
        Ack {
            shared: self.shared.clone(),
            id: self.id,
        }
    }

    /// A claim for another input that is answered together with this one: for inputs that need
    /// no acknowledgement of their own (core NATS), read together. It is counted in flight and
    /// in the latency histogram as an input of its own, without an acknowledgement of its own
    /// to allocate and time.
    pub fn join(&self) -> Ack {
        self.join_at(self.id)
    }

    /// A claim for input `id`, read after this one in the same lane and answered together with
    /// it: a run of inputs with one acknowledgement. If any of them fails, the answer names the
    /// lowest that did, so the inputs before it are still acknowledged one by one.
    pub fn join_at(&self, id: u64) -> Ack {
        if let Some(s) = &self.shared {
            s.inputs.fetch_add(1, Ordering::Relaxed);
            s.channel.budget.input_started();
        }
        Ack {
            shared: self.shared.clone(),
            id,
        }
    }

    /// Whether the bus redelivers this input if it is not acknowledged (a JetStream message below
    /// its delivery limit): an output failure then asks for a redelivery instead of applying the
    /// error policy.
    pub fn redeliverable(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.redeliverable)
    }

    /// Counts the input's `bytes` against the pipeline's in-flight budget until it is finished.
    pub fn charge(&self, bytes: usize) {
        if let Some(s) = &self.shared {
            s.bytes.fetch_add(bytes, Ordering::AcqRel);
            s.channel.budget.charge(bytes);
        }
    }

    /// Gives up this claim with an outcome.
    pub fn complete(mut self, outcome: Outcome) {
        if let Some(s) = self.shared.take() {
            s.settle(self.id, outcome);
        }
    }
}

impl Shared {
    fn settle(&self, id: u64, outcome: Outcome) {
        if outcome == Outcome::Failed {
            self.failed_from.fetch_min(id, Ordering::AcqRel);
        }
        self.outcome.fetch_max(outcome as u8, Ordering::AcqRel);
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(s) = self.shared.take() {
            s.settle(self.id, Outcome::Failed);
        }
    }
}

/// Hands out acks for one source; cheap to clone.
#[derive(Clone)]
pub struct AckSender {
    channel: Arc<Channel>,
}

impl AckSender {
    /// An ack for input `id` of `lane`.
    pub fn ack(&self, lane: u32, id: u64) -> Ack {
        self.ack_with(lane, id, false)
    }

    /// An ack for input `id` of `lane`, saying whether the bus would redeliver the input.
    pub fn ack_with(&self, lane: u32, id: u64, redeliverable: bool) -> Ack {
        self.channel.budget.input_started();
        Ack {
            id,
            shared: Some(Arc::new(Shared {
                lane,
                id,
                redeliverable,
                inputs: AtomicUsize::new(1),
                outcome: AtomicU8::new(Outcome::Delivered as u8),
                failed_from: AtomicU64::new(u64::MAX),
                read_at: Instant::now(),
                bytes: AtomicUsize::new(0),
                channel: self.channel.clone(),
            })),
        }
    }
}

fn sender(
    budget: &Arc<Budget>,
    latency: metrics::Histogram,
    tx: Option<mpsc::UnboundedSender<AckMsg>>,
) -> AckSender {
    AckSender {
        channel: Arc::new(Channel {
            tx,
            latency,
            budget: budget.clone(),
        }),
    }
}

/// A source's ack channel: the sender makes acks, the receiver gets one [`AckMsg`] per input
/// once everything derived from it is done. Inputs in flight count against `budget`; the time
/// from reading an input to its delivery goes to `latency`.
pub fn ack_channel(
    budget: &Arc<Budget>,
    latency: metrics::Histogram,
) -> (AckSender, mpsc::UnboundedReceiver<AckMsg>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (sender(budget, latency, Some(tx)), rx)
}

/// Acks for a source with nothing to acknowledge (core NATS, files, generated events): they
/// only count events in flight and their latency.
pub fn ack_counter(budget: &Arc<Budget>, latency: metrics::Histogram) -> AckSender {
    sender(budget, latency, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn channel() -> (AckSender, mpsc::UnboundedReceiver<AckMsg>) {
        let budget = Arc::new(Budget::new(
            usize::MAX,
            metrics::Gauge::noop(),
            metrics::Gauge::noop(),
        ));
        ack_channel(&budget, metrics::Histogram::noop())
    }

    #[test]
    fn ack_fires_once_with_the_worst_outcome() {
        let (ch, mut rx) = channel();
        let a = ch.ack(3, 42);
        let b = a.fork();
        let c = a.fork();
        a.complete(Outcome::Delivered);
        b.complete(Outcome::Rejected);
        assert!(rx.try_recv().is_err(), "acked before every fork completed");
        c.complete(Outcome::Delivered);
        assert_eq!(
            rx.try_recv().unwrap(),
            AckMsg {
                lane: 3,
                id: 42,
                outcome: Outcome::Rejected,
                failed_from: u64::MAX,
            }
        );
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn joined_inputs_are_counted_in_flight_until_the_last_claim_is_done() {
        let budget = Arc::new(Budget::new(
            usize::MAX,
            metrics::Gauge::noop(),
            metrics::Gauge::noop(),
        ));
        let (ch, mut rx) = ack_channel(&budget, metrics::Histogram::noop());
        let first = ch.ack(0, 7);
        let joined: Vec<Ack> = (0..4).map(|_| first.join()).collect();
        assert_eq!(budget.in_flight().1, 5, "five inputs in flight");
        first.complete(Outcome::Delivered);
        let mut joined = joined.into_iter();
        joined.next().unwrap().complete(Outcome::Rejected);
        for a in joined.by_ref().take(2) {
            a.complete(Outcome::Delivered);
        }
        assert_eq!(budget.in_flight().1, 5, "held until every claim is done");
        assert!(rx.try_recv().is_err());
        joined.next().unwrap().complete(Outcome::Delivered);
        assert_eq!(budget.in_flight().1, 0);
        let msg = rx.try_recv().unwrap();
        assert_eq!((msg.id, msg.outcome), (7, Outcome::Rejected));
        assert!(rx.try_recv().is_err(), "one answer for them all");
    }

    #[test]
    fn a_run_answers_once_naming_its_first_failed_input() {
        let (ch, mut rx) = channel();
        let first = ch.ack(2, 10);
        let run: Vec<Ack> = [11, 12, 13].map(|id| first.join_at(id)).into();
        let mut run = run.into_iter();
        let (a, b, c) = (
            run.next().unwrap(),
            run.next().unwrap(),
            run.next().unwrap(),
        );
        // 13 is dropped (failed), then 12 fails: 12 is the first that failed.
        drop(c);
        b.complete(Outcome::Failed);
        first.complete(Outcome::Delivered);
        assert!(rx.try_recv().is_err());
        a.complete(Outcome::Delivered);
        let msg = rx.try_recv().unwrap();
        assert_eq!(
            (msg.lane, msg.id, msg.outcome, msg.failed_from),
            (2, 10, Outcome::Failed, 12)
        );
        let ok = ch.ack(0, 1);
        ok.join_at(2).complete(Outcome::Delivered);
        ok.complete(Outcome::Delivered);
        assert_eq!(rx.try_recv().unwrap().failed_from, u64::MAX);
    }

    #[test]
    fn a_dropped_fork_fails_the_input() {
        let (ch, mut rx) = channel();
        let a = ch.ack(0, 1);
        let b = a.fork();
        a.complete(Outcome::Delivered);
        drop(b);
        assert_eq!(rx.try_recv().unwrap().outcome, Outcome::Failed);
    }

    proptest! {
        /// Every input delivered through forks is eventually acknowledged exactly once.
        #[test]
        fn every_delivered_input_is_acknowledged(fanouts in prop::collection::vec(0usize..4, 1..50), order in any::<u64>()) {
            let (ch, mut rx) = channel();
            let mut forks = Vec::new();
            for (id, n) in fanouts.iter().enumerate() {
                let ack = ch.ack(0, id as u64);
                for _ in 0..*n { forks.push(ack.fork()); }
                ack.complete(Outcome::Delivered);
            }
            // Complete forks in a scrambled order.
            let len = forks.len();
            let mut idx: Vec<usize> = (0..len).collect();
            let mut s = order;
            for i in (1..len).rev() { s = s.wrapping_mul(6364136223846793005).wrapping_add(1); idx.swap(i, (s % (i as u64 + 1)) as usize); }
            let mut forks: Vec<Option<Ack>> = forks.into_iter().map(Some).collect();
            for i in idx { forks[i].take().unwrap().complete(Outcome::Delivered); }
            let mut seen = std::collections::HashSet::new();
            while let Ok(msg) = rx.try_recv() {
                prop_assert_eq!(msg.outcome, Outcome::Delivered);
                prop_assert!(seen.insert(msg.id), "acknowledged twice: {}", msg.id);
            }
            prop_assert_eq!(seen.len(), fanouts.len());
        }
    }
}
