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

    /// Records that `id` was read as part of the last input read, which is pending: a run of
    /// ids answered by one acknowledgement, completed under the run's first id. Returns false,
    /// recording nothing, when the last input read is already done, or `id` is not above it.
    pub fn extend(&mut self, id: u64) -> bool {
        let run_open = matches!(self.pending.back(), Some((_, None)));
        if !run_open || self.next.is_some_and(|n| id < n) {
            return false;
        }
        self.next = Some(id + 1);
        true
    }

    /// Records how `id` ended, then releases the done prefix.
    pub fn complete(&mut self, id: u64, outcome: Outcome) -> Result<(), UnknownId> {
        self.complete_run(id, outcome, id)
    }

    /// Records how the run read from `id` (see [`OrderedTracker::extend`]) ended, when the
    /// lowest id of the run that failed (if the outcome is failed) is `failed_from`: the ids
    /// before it are done, and the lane stops at it.
    pub fn complete_run(
        &mut self,
        id: u64,
        outcome: Outcome,
        failed_from: u64,
    ) -> Result<(), UnknownId> {
        let idx = self
            .pending
            .binary_search_by_key(&id, |(i, _)| *i)
            .map_err(|_| UnknownId(id))?;
        let limit = self
            .pending
            .get(idx + 1)
            .map_or(self.next, |(i, _)| Some(*i));
        let entry = &mut self.pending[idx];
        if outcome == Outcome::Failed
            && failed_from > id
            && entry.1.is_none()
            && limit.is_some_and(|l| failed_from < l)
        {
            // The run's ids below `failed_from` are done: it now starts at the failed one.
            entry.0 = failed_from;
        }
        let slot = &mut entry.1;
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

    #[test]
    fn a_run_moves_the_position_past_it_or_up_to_its_first_failure() {
        let mut t = OrderedTracker::new();
        assert!(!t.extend(5), "nothing read: no run to extend");
        assert!(t.read(10));
        for id in [11, 13, 14] {
            assert!(t.extend(id));
        }
        assert!(!t.extend(14), "a repeated id is a duplicate");
        assert!(t.read(20));
        assert!(t.extend(21));
        t.complete_run(20, Outcome::Delivered, u64::MAX).unwrap();
        assert_eq!(t.position(), Some(10), "the first run is not done");
        assert!(!t.extend(22), "the last run is done: it takes no more ids");
        t.complete_run(10, Outcome::Failed, 13).unwrap();
        assert_eq!(t.position(), Some(13), "10, 11 delivered; 13 failed");
        assert_eq!(t.blocked_by(), Some(13));
        assert_eq!(t.in_flight(), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Read(u64),
        /// Read as part of the last input read, when it is still outstanding.
        Extend(u64),
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
                (1u64..4).prop_map(Op::Extend),
                (any::<usize>(), outcome()).prop_map(|(i, o)| Op::Complete(i, o))
            ],
            0..200,
        )
    }

    proptest! {
        /// The position never passes an input whose outputs are not all delivered, and once every
        /// input read is done (and none failed), the position is past all of them; inputs read
        /// on their own or in runs answered together.
        #[test]
        fn position_never_passes_an_unfinished_input(ops in ops()) {
            let mut t = OrderedTracker::new();
            let mut next_id = 100u64;
            // Model: every id read -> its outcome so far (None: outstanding).
            let mut model: BTreeMap<u64, Option<Outcome>> = BTreeMap::new();
            // The ids answered by each outstanding input: itself, then its run.
            let mut runs: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Read(gap) => {
                        next_id += gap; // sparse ids, as with compacted topics
                        prop_assert!(t.read(next_id));
                        model.insert(next_id, None);
                        runs.insert(next_id, vec![next_id]);
                    }
                    Op::Extend(gap) => {
                        prop_assert!(!t.extend(next_id), "an id read already never extends");
                        let extended = t.extend(next_id + gap);
                        let last_open = runs.keys().next_back().is_some_and(|head| {
                            model.range(head..).next_back().is_some_and(|(id, _)| runs[head].contains(id))
                        });
                        if last_open {
                            prop_assert!(extended);
                            next_id += gap;
                            model.insert(next_id, None);
                            runs.values_mut().next_back().unwrap().push(next_id);
                        } else {
                            prop_assert!(!extended, "nothing outstanding to extend");
                        }
                    }
                    Op::Complete(pick, outcome) => {
                        let heads: Vec<u64> = runs.keys().copied().collect();
                        if heads.is_empty() { continue; }
                        let head = heads[pick % heads.len()];
                        let ids = runs.remove(&head).unwrap();
                        // A failure is the failure of one of the run's ids: those before it
                        // were delivered.
                        let failed_from = if outcome == Outcome::Failed {
                            ids[(pick / heads.len()) % ids.len()]
                        } else {
                            u64::MAX
                        };
                        t.complete_run(head, outcome, failed_from).unwrap();
                        for id in ids {
                            let o = if id < failed_from { outcome.min(Outcome::Rejected) } else { outcome };
                            model.insert(id, Some(o));
                        }
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
            // The first not-done input (outstanding or failed) is exactly where the position
            // stops, when it is the first of its run or the first of its run to fail.
            if let Some((first_open, o)) = model.iter().find(|(_, o)| !matches!(o, Some(o) if o.is_ack())) {
                let head = runs.range(..=*first_open).next_back().map(|(h, _)| *h);
                let expected = match o {
                    None => head.unwrap_or(*first_open),
                    Some(_) => *first_open,
                };
                prop_assert_eq!(t.position(), Some(expected));
            }
        }
    }
}
