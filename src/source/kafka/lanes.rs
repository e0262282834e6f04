//! The consumer's bookkeeping of its assigned partitions, without a client: one lane per
//! partition with an [`OrderedTracker`], what was handed on and committed, and which offsets a
//! commit would move.

use std::collections::HashMap;
use std::sync::Arc;

use rdkafka::{Offset, TopicPartitionList};

use crate::delivery::{AckMsg, OrderedTracker};
use crate::observe::events::emit;
use crate::observe::events::kafka_input::{AckNotPending, CommitNotPrepared, PartitionRevoked};

/// One assigned partition.
pub(super) struct Lane {
    pub(super) topic: Arc<str>,
    pub(super) partition: i32,
    pub(super) tracker: OrderedTracker,
    /// Last offset committed (the next offset to read).
    pub(super) committed: Option<u64>,
    /// Highest offset handed on to the pipeline; later ones are still in the consumer thread.
    handed: Option<u64>,
}

/// Offsets a commit would move: the partition list to send, and the lanes' new positions.
pub(super) struct Commit {
    pub(super) offsets: TopicPartitionList,
    moved: Vec<(u32, u64)>,
}

/// The lanes of the current and past assignments.
pub(super) struct Lanes {
    pub(super) pipeline: Arc<str>,
    lanes: HashMap<u32, Lane>,
    /// Lane ids of the current assignment, by topic and partition (keyed by topic first, so a
    /// record's `&str` topic finds its lane without an allocation).
    current: HashMap<Arc<str>, HashMap<i32, u32>>,
    next_lane: u32,
    /// Bumped on every revocation, so the poll loop knows to drop events of revoked partitions.
    pub(super) revocations: u64,
}

impl Lanes {
    pub(super) fn new(pipeline: Arc<str>) -> Lanes {
        Lanes {
            pipeline,
            lanes: HashMap::new(),
            current: HashMap::new(),
            next_lane: 0,
            revocations: 0,
        }
    }

    /// The lane of a partition, made when the partition is new to the current assignment.
    pub(super) fn lane_for(&mut self, topic: &str, partition: i32) -> u32 {
        if let Some(id) = self.current_lane(topic, partition) {
            return id;
        }
        let id = self.next_lane;
        self.next_lane = self.next_lane.wrapping_add(1);
        let topic: Arc<str> = Arc::from(topic);
        self.lanes.insert(
            id,
            Lane {
                topic: topic.clone(),
                partition,
                tracker: OrderedTracker::new(),
                committed: None,
                handed: None,
            },
        );
        self.current.entry(topic).or_default().insert(partition, id);
        id
    }

    /// The lane of a partition in the current assignment.
    pub(super) fn current_lane(&self, topic: &str, partition: i32) -> Option<u32> {
        self.current.get(topic)?.get(&partition).copied()
    }

    pub(super) fn lane_mut(&mut self, id: u32) -> Option<&mut Lane> {
        self.lanes.get_mut(&id)
    }

    /// Every lane's id.
    pub(super) fn ids(&self) -> Vec<u32> {
        self.lanes.keys().copied().collect()
    }

    /// Records an input's outcome; one of a lane already revoked is ignored.
    pub(super) fn apply(&mut self, msg: AckMsg) {
        if let Some(lane) = self.lanes.get_mut(&msg.lane)
            && lane
                .tracker
                .complete_run(msg.id, msg.outcome, msg.failed_from)
                .is_err()
        {
            emit(AckNotPending {
                pipeline: &self.pipeline,
                lane: msg.lane,
                id: msg.id,
            });
        }
    }

    /// The pipeline has everything of the partition up to `offset`.
    pub(super) fn handed(&mut self, topic: &str, partition: i32, offset: u64) {
        if let Some(id) = self.current_lane(topic, partition)
            && let Some(lane) = self.lanes.get_mut(&id)
        {
            lane.handed = Some(offset);
        }
    }

    /// Inputs of `lanes` handed on and not finished. Only those can finish: events still in
    /// the consumer thread never will.
    pub(super) fn busy(&self, lanes: &[u32]) -> usize {
        lanes
            .iter()
            .filter_map(|l| self.lanes.get(l))
            .map(|l| l.handed.map_or(0, |h| l.tracker.in_flight_upto(h)))
            .sum()
    }

    /// What committing the done position of `only` (every lane when None) would move; None when
    /// nothing moved.
    pub(super) fn commit(&self, only: Option<&[u32]>) -> Option<Commit> {
        let mut offsets = TopicPartitionList::new();
        let mut moved = Vec::new();
        for (id, lane) in &self.lanes {
            if only.is_some_and(|o| !o.contains(id)) {
                continue;
            }
            if let Some(pos) = lane.tracker.position()
                && lane.committed != Some(pos)
            {
                if let Err(e) = offsets.add_partition_offset(
                    &lane.topic,
                    lane.partition,
                    Offset::Offset(pos as i64),
                ) {
                    emit(CommitNotPrepared {
                        pipeline: &self.pipeline,
                        error: &e,
                    });
                    continue;
                }
                moved.push((*id, pos));
            }
        }
        (!moved.is_empty()).then_some(Commit { offsets, moved })
    }

    /// A commit went through.
    pub(super) fn committed(&mut self, commit: Commit) {
        for (id, pos) in commit.moved {
            if let Some(lane) = self.lanes.get_mut(&id) {
                lane.committed = Some(pos);
            }
        }
    }

    /// A commit failed after it was sent: forget what we believe committed, so the next commit
    /// sends every position again.
    pub(super) fn commit_failed(&mut self) {
        for lane in self.lanes.values_mut() {
            lane.committed = None;
        }
    }

    /// Forgets revoked lanes: acknowledgements arriving for them later are ignored, so they can
    /// never commit over the partitions' new owner.
    pub(super) fn revoked(&mut self, lanes: &[u32]) {
        self.revocations += 1;
        for id in lanes {
            if let Some(lane) = self.lanes.remove(id) {
                if let Some(partitions) = self.current.get_mut(&lane.topic) {
                    partitions.remove(&lane.partition);
                    if partitions.is_empty() {
                        self.current.remove(&lane.topic);
                    }
                }
                emit(PartitionRevoked {
                    pipeline: &self.pipeline,
                    topic: &lane.topic,
                    partition: lane.partition,
                    committed: lane.committed,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Outcome;

    fn ack(lane: u32, id: u64, outcome: Outcome) -> AckMsg {
        AckMsg {
            lane,
            id,
            outcome,
            failed_from: id,
        }
    }

    /// (topic, partition, offset) of every partition a commit would move, sorted.
    fn offsets(commit: &Commit) -> Vec<(String, i32, i64)> {
        let mut v: Vec<_> = commit
            .offsets
            .elements()
            .iter()
            .map(|e| {
                let Offset::Offset(o) = e.offset() else {
                    panic!("not an offset: {:?}", e.offset())
                };
                (e.topic().to_string(), e.partition(), o)
            })
            .collect();
        v.sort();
        v
    }

    fn read(lanes: &mut Lanes, topic: &str, partition: i32, from: u64, to: u64) -> u32 {
        let id = lanes.lane_for(topic, partition);
        for offset in from..=to {
            assert!(lanes.lane_mut(id).unwrap().tracker.read(offset));
        }
        id
    }

    #[test]
    fn a_commit_moves_each_partition_past_its_delivered_prefix_only() {
        let mut lanes = Lanes::new("p".into());
        let a = read(&mut lanes, "t", 0, 10, 14);
        let b = read(&mut lanes, "t", 1, 0, 2);
        assert_eq!(lanes.lane_for("t", 0), a, "one lane per partition");
        // Nothing done yet: a commit says where to resume, the first input read.
        let commit = lanes.commit(None).unwrap();
        assert_eq!(offsets(&commit), [("t".into(), 0, 10), ("t".into(), 1, 0)]);
        lanes.committed(commit);
        assert!(
            lanes.commit(None).is_none(),
            "committed positions are not sent again"
        );
        for id in [10, 11, 13] {
            lanes.apply(ack(a, id, Outcome::Delivered));
        }
        lanes.apply(ack(b, 0, Outcome::Rejected));
        let commit = lanes.commit(None).unwrap();
        assert_eq!(
            offsets(&commit),
            [("t".into(), 0, 12), ("t".into(), 1, 1)],
            "12 is not done: 13 waits behind it"
        );
        lanes.committed(commit);
        assert!(
            lanes.commit(None).is_none(),
            "committed positions are not sent again"
        );
        lanes.apply(ack(a, 12, Outcome::Delivered));
        let only_b = lanes.commit(Some(&[b]));
        assert!(only_b.is_none(), "b did not move");
        let commit = lanes.commit(Some(&[a])).unwrap();
        assert_eq!(offsets(&commit), [("t".into(), 0, 14)]);
        // A failed input holds its partition's position, whatever finishes after it.
        lanes.apply(ack(a, 14, Outcome::Failed));
        lanes.committed(commit);
        assert!(lanes.commit(None).is_none());
    }

    #[test]
    fn after_a_failed_commit_every_position_is_sent_again() {
        let mut lanes = Lanes::new("p".into());
        let a = read(&mut lanes, "t", 0, 0, 0);
        lanes.apply(ack(a, 0, Outcome::Delivered));
        let commit = lanes.commit(None).unwrap();
        lanes.committed(commit);
        lanes.commit_failed();
        assert_eq!(offsets(&lanes.commit(None).unwrap()), [("t".into(), 0, 1)]);
    }

    #[test]
    fn only_inputs_handed_on_count_as_busy() {
        let mut lanes = Lanes::new("p".into());
        let a = read(&mut lanes, "t", 0, 0, 9);
        assert_eq!(lanes.busy(&[a]), 0, "nothing handed on: nothing can finish");
        lanes.handed("t", 0, 4);
        assert_eq!(lanes.busy(&[a]), 5);
        for id in 0..5 {
            lanes.apply(ack(a, id, Outcome::Delivered));
        }
        assert_eq!(lanes.busy(&[a]), 0);
    }

    #[test]
    fn a_revoked_lane_is_forgotten_and_its_late_acknowledgements_ignored() {
        let mut lanes = Lanes::new("p".into());
        let a = read(&mut lanes, "t", 0, 0, 1);
        let b = read(&mut lanes, "u", 3, 0, 0);
        lanes.revoked(&[a]);
        assert_eq!(lanes.revocations, 1);
        assert_eq!(lanes.current_lane("t", 0), None);
        assert_eq!(lanes.current_lane("u", 3), Some(b));
        lanes.apply(ack(a, 0, Outcome::Delivered));
        lanes.apply(ack(b, 0, Outcome::Delivered));
        assert_eq!(
            offsets(&lanes.commit(None).unwrap()),
            [("u".into(), 3, 1)],
            "the revoked partition never commits again"
        );
        // Assigned again later: a new lane, starting afresh.
        let again = lanes.lane_for("t", 0);
        assert_ne!(again, a);
        assert_eq!(lanes.ids().len(), 2);
    }
}
