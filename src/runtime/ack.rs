//! Acknowledgement tracking: an input is done only when every event derived from it is done.
//!
//! A source gives each input an [`Ack`]. Transforms fork it once per output event (fan-out) or
//! complete it at once (filtered out). Outputs complete each fork after confirmed delivery. When
//! the last fork is gone the source receives one [`AckMsg`] with the worst outcome of them all. A
//! fork dropped without being completed counts as [`Outcome::Failed`]: losing track of an event
//! can never acknowledge its input.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;

use crate::observe::{Budget, Telemetry};

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
    outcome: AtomicU8,
    read_at: Instant,
    bytes: AtomicUsize,
    channel: Arc<Channel>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let outcome = Outcome::from_u8(self.outcome.load(Ordering::Acquire));
        let budget = &self.channel.budget;
        budget.release(self.bytes.load(Ordering::Acquire));
        budget.input_finished();
        if outcome == Outcome::Delivered {
            self.channel
                .latency
                .record(self.read_at.elapsed().as_secs_f64());
        }
        // The source may be gone (shutdown deadline passed); then nobody needs the answer.
        if let Some(tx) = &self.channel.tx {
            let _ = tx.send(AckMsg {
                lane: self.lane,
                id: self.id,
                outcome,
            });
        }
    }
}

/// A claim on an input's acknowledgement, held by an event derived from it.
pub struct Ack {
    shared: Option<Arc<Shared>>,
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.shared {
            Some(s) => write!(f, "Ack({}/{})", s.lane, s.id),
            None => f.write_str("Ack(untracked)"),
        }
    }
}

impl Ack {
    /// An ack nobody waits for.
    pub fn untracked() -> Ack {
        Ack { shared: None }
    }

    /// Another claim on the same input, for one more derived event.
    pub fn fork(&self) -> Ack {
        Ack {
            shared: self.shared.clone(),
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
            s.outcome.fetch_max(outcome as u8, Ordering::AcqRel);
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(s) = self.shared.take() {
            s.outcome.fetch_max(Outcome::Failed as u8, Ordering::AcqRel);
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
            shared: Some(Arc::new(Shared {
                lane,
                id,
                redeliverable,
                outcome: AtomicU8::new(Outcome::Delivered as u8),
                read_at: Instant::now(),
                bytes: AtomicUsize::new(0),
                channel: self.channel.clone(),
            })),
        }
    }
}

fn sender(telemetry: &Telemetry, tx: Option<mpsc::UnboundedSender<AckMsg>>) -> AckSender {
    AckSender {
        channel: Arc::new(Channel {
            tx,
            latency: telemetry.latency_histogram(),
            budget: telemetry.budget().clone(),
        }),
    }
}

/// A source's ack channel: the sender makes acks, the receiver gets one [`AckMsg`] per input
/// once everything derived from it is done.
pub fn ack_channel(telemetry: &Telemetry) -> (AckSender, mpsc::UnboundedReceiver<AckMsg>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (sender(telemetry, Some(tx)), rx)
}

/// Acks for a source with nothing to acknowledge (core NATS, files, generated events): they
/// only count events in flight and their latency.
pub fn ack_counter(telemetry: &Telemetry) -> AckSender {
    sender(telemetry, None)
}

/// Ordered acknowledgement for one lane (a Kafka partition, a file): ids are read in increasing
/// order, complete in any order, and the position to resume from only moves past a contiguous
/// prefix of inputs that are done and may be acknowledged.
#[derive(Debug, Default, Clone)]
pub struct OrderedTracker {
    /// Read and not yet released, in read order, with their outcome once known.
    pending: VecDeque<(u64, Option<Outcome>)>,
    /// One past the highest id read, once anything was read.
    next: Option<u64>,
}

/// A completion for an id the tracker does not hold (already released, or never read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("input {0} is not pending in this lane")]
pub struct UnknownId(pub u64);

impl OrderedTracker {
    /// A tracker with nothing read yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// One past the highest id read, once anything was read.
    pub fn next_read(&self) -> Option<u64> {
        self.next
    }

    /// Records that `id` was read. Ids must increase; a repeated or lower id is ignored and
    /// returns false (a duplicate delivery by the bus).
    pub fn read(&mut self, id: u64) -> bool {
        if self.next.is_some_and(|n| id < n) {
            return false;
        }
        self.pending.push_back((id, None));
        self.next = Some(id + 1);
        true
    }

    /// Records how `id` ended, then releases the done prefix.
    pub fn complete(&mut self, id: u64, outcome: Outcome) -> Result<(), UnknownId> {
        let idx = self
            .pending
            .binary_search_by_key(&id, |(i, _)| *i)
            .map_err(|_| UnknownId(id))?;
        let slot = &mut self.pending[idx].1;
        *slot = Some(slot.map_or(outcome, |o| o.max(outcome)));
        while let Some((_, Some(o))) = self.pending.front() {
            if !o.is_ack() {
                break;
            }
            self.pending.pop_front();
        }
        Ok(())
    }

    /// The id to resume from: every id read below it is done and may be acknowledged. `None`
    /// until something was read.
    pub fn position(&self) -> Option<u64> {
        match self.pending.front() {
            Some((id, _)) => Some(*id),
            None => self.next,
        }
    }

    /// The lowest input that failed and now blocks the lane, if any.
    pub fn blocked_by(&self) -> Option<u64> {
        match self.pending.front() {
            Some((id, Some(o))) if !o.is_ack() => Some(*id),
            _ => None,
        }
    }

    /// Inputs read whose outcome is not known yet, or that block the lane.
    pub fn in_flight(&self) -> usize {
        self.pending.iter().filter(|(_, o)| o.is_none()).count()
    }

    /// Inputs with ids up to `max` whose outcome is not known yet.
    pub fn in_flight_upto(&self, max: u64) -> usize {
        self.pending
            .iter()
            .take_while(|(id, _)| *id <= max)
            .filter(|(_, o)| o.is_none())
            .count()
    }

    /// Whether nothing is pending (everything read was released).
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn ack_fires_once_with_the_worst_outcome() {
        let (ch, mut rx) = ack_channel(&Telemetry::new("test", usize::MAX));
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
                outcome: Outcome::Rejected
            }
        );
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn an_event_holds_its_payload_and_overhead_against_the_budget_until_done() {
        use crate::event::{EVENT_OVERHEAD, Event, Position};
        let t = Telemetry::new("test", 5 + EVENT_OVERHEAD);
        let (ch, _rx) = ack_channel(&t);
        let e = Event::new(
            bytes::Bytes::from_static(b"12345"),
            Position::Generated { seq: 0 },
            ch.ack(0, 1),
        );
        assert!(t.budget().is_full(), "payload plus overhead is counted");
        let fork = e.ack.fork();
        e.ack.complete(Outcome::Delivered);
        assert!(
            t.budget().is_full(),
            "held until every derived event is done"
        );
        fork.complete(Outcome::Delivered);
        assert!(!t.budget().is_full());
    }

    #[test]
    fn a_dropped_fork_fails_the_input() {
        let (ch, mut rx) = ack_channel(&Telemetry::new("test", usize::MAX));
        let a = ch.ack(0, 1);
        let b = a.fork();
        a.complete(Outcome::Delivered);
        drop(b);
        assert_eq!(rx.try_recv().unwrap().outcome, Outcome::Failed);
    }

    #[test]
    fn tracker_moves_only_past_contiguous_done_inputs() {
        let mut t = OrderedTracker::new();
        assert_eq!(t.position(), None);
        for id in [10, 11, 15] {
            assert!(t.read(id));
        }
        assert!(!t.read(11), "a lower id is a duplicate");
        t.complete(11, Outcome::Delivered).unwrap();
        assert_eq!(t.position(), Some(10));
        t.complete(10, Outcome::Rejected).unwrap();
        assert_eq!(t.position(), Some(15));
        t.complete(15, Outcome::Failed).unwrap();
        assert_eq!(t.position(), Some(15));
        assert_eq!(t.blocked_by(), Some(15));
        assert_eq!(t.complete(12, Outcome::Delivered), Err(UnknownId(12)));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Read(u64),
        Complete(usize, Outcome),
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            8 => Just(Outcome::Delivered),
            1 => Just(Outcome::Rejected),
            1 => Just(Outcome::Failed),
        ]
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                (1u64..4).prop_map(Op::Read),
                (any::<usize>(), outcome()).prop_map(|(i, o)| Op::Complete(i, o))
            ],
            0..200,
        )
    }

    proptest! {
        /// The position never passes an input whose outputs are not all delivered, and once every
        /// input read is done (and none failed), the position is past all of them.
        #[test]
        fn position_never_passes_an_unfinished_input(ops in ops()) {
            let mut t = OrderedTracker::new();
            let mut next_id = 100u64;
            // Model: id -> outcome so far (None: outstanding).
            let mut model: BTreeMap<u64, Option<Outcome>> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Read(gap) => {
                        next_id += gap; // sparse ids, as with compacted topics
                        prop_assert!(t.read(next_id));
                        model.insert(next_id, None);
                    }
                    Op::Complete(pick, outcome) => {
                        let open: Vec<u64> = model.iter().filter(|(_, o)| o.is_none()).map(|(id, _)| *id).collect();
                        if open.is_empty() { continue; }
                        let id = open[pick % open.len()];
                        t.complete(id, outcome).unwrap();
                        model.insert(id, Some(outcome));
                    }
                }
                if let Some(pos) = t.position() {
                    for (id, o) in model.range(..pos) {
                        prop_assert!(matches!(o, Some(o) if o.is_ack()), "position {} passed id {} ({:?})", pos, id, o);
                    }
                }
            }
            // Everything done and nothing failed: the position is past the last read input.
            let all_ok = model.values().all(|o| matches!(o, Some(o) if o.is_ack()));
            if all_ok {
                prop_assert_eq!(t.position(), model.keys().next_back().map(|id| id + 1));
                prop_assert!(t.is_idle());
            }
            // The first not-done input (outstanding or failed) is exactly where the position stops.
            if let Some((first_open, _)) = model.iter().find(|(_, o)| !matches!(o, Some(o) if o.is_ack())) {
                prop_assert_eq!(t.position(), Some(*first_open));
            }
        }

        /// Every input delivered through forks is eventually acknowledged exactly once.
        #[test]
        fn every_delivered_input_is_acknowledged(fanouts in prop::collection::vec(0usize..4, 1..50), order in any::<u64>()) {
            let (ch, mut rx) = ack_channel(&Telemetry::new("test", usize::MAX));
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
