//! Ordered acknowledgement of one lane: where a source may resume once inputs finish out of order.

use std::collections::VecDeque;

use super::ack::Outcome;

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
    }
}
