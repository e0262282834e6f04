//! Kafka records to events, and what a batch hands on per partition.

use std::collections::HashMap;
use std::sync::Arc;

use rdkafka::Message;
use rdkafka::message::{BorrowedMessage, Headers as _};

use super::lanes::Lanes;
use crate::delivery::{Ack, AckSender};
use crate::event::{Arena, Event, Position};

/// The event of a record, tracked in its partition's lane, with the lane; None for a record
/// already read (a refetch after a pause) or without an offset.
///
/// `run` is the last event of the batch and its lane, when the same poll read it: a record of
/// the same lane joins its acknowledgement. A partition's records read together are then
/// answered by one acknowledgement, completed when the last of them is done, instead of one
/// each. The partition's position moves past all of them at once, where it would be anyway
/// once they are all done; if one fails, the answer names the first that did, and the position
/// stops there as it would have.
pub(super) fn to_event(
    msg: &BorrowedMessage<'_>,
    lanes: &mut Lanes,
    acks: &AckSender,
    arena: &mut Arena,
    run: Option<(u32, &Ack)>,
) -> Option<(u32, Event)> {
    let lane_id = lanes.lane_for(msg.topic(), msg.partition());
    let lane = lanes.lane_mut(lane_id)?;
    let offset = msg.offset();
    if offset < 0 {
        return None;
    }
    let ack = match run {
        Some((run_lane, first)) if run_lane == lane_id && lane.tracker.extend(offset as u64) => {
            first.join_at(offset as u64)
        }
        _ if lane.tracker.read(offset as u64) => acks.ack(lane_id, offset as u64),
        _ => return None,
    };
    let position = Position::Kafka {
        topic: lane.topic.clone(),
        partition: lane.partition,
        offset,
    };
    let mut event = Event::new(arena.copy(msg.payload().unwrap_or_default()), position, ack);
    event.key = msg.key().map(|k| arena.copy(k));
    if let Some(headers) = msg.headers() {
        for h in headers.iter() {
            event
                .headers
                .push((h.key.to_string(), arena.copy(h.value.unwrap_or_default())));
        }
    }
    event.timestamp = msg.timestamp().to_millis();
    Some((lane_id, event))
}

/// The highest offset per partition in a batch.
pub(super) fn handed_upto(batch: &[Event]) -> HashMap<(Arc<str>, i32), u64> {
    let mut last = HashMap::new();
    // Records come in runs of one partition: only a new partition costs a map update.
    let mut run: Option<(&Arc<str>, i32, u64)> = None;
    for e in batch {
        if let Position::Kafka {
            topic,
            partition,
            offset,
        } = &*e.position
        {
            match &mut run {
                Some((t, p, o)) if Arc::ptr_eq(t, topic) && *p == *partition => *o = *offset as u64,
                _ => {
                    if let Some((t, p, o)) = run {
                        last.insert((t.clone(), p), o);
                    }
                    run = Some((topic, *partition, *offset as u64));
                }
            }
        }
    }
    if let Some((t, p, o)) = run {
        last.insert((t.clone(), p), o);
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn event(topic: &Arc<str>, partition: i32, offset: i64) -> Event {
        Event::new(
            Bytes::new(),
            Position::Kafka {
                topic: topic.clone(),
                partition,
                offset,
            },
            Ack::untracked(),
        )
    }

    #[test]
    fn a_batch_hands_on_up_to_its_last_offset_of_each_partition() {
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let batch = [
            event(&a, 0, 5),
            event(&a, 0, 6),
            event(&b, 0, 1),
            event(&a, 1, 9),
            event(&a, 0, 7),
        ];
        let mut got: Vec<_> = handed_upto(&batch)
            .into_iter()
            .map(|((t, p), o)| (t.to_string(), p, o))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [("a".into(), 0, 7), ("a".into(), 1, 9), ("b".into(), 0, 1)]
        );
    }
}
