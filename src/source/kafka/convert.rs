//! Kafka records to events, and what a batch hands on per partition.

use std::collections::HashMap;
use std::sync::Arc;

use rdkafka::Message;
use rdkafka::message::{BorrowedMessage, Headers as _};

use super::lanes::Lanes;
use crate::delivery::AckSender;
use crate::event::{Arena, Event, Position};

/// The event of a record, tracked in its partition's lane; None for a record already read (a
/// refetch after a pause) or without an offset.
pub(super) fn to_event(
    msg: &BorrowedMessage<'_>,
    lanes: &mut Lanes,
    acks: &AckSender,
    arena: &mut Arena,
) -> Option<Event> {
    let lane_id = lanes.lane_for(msg.topic(), msg.partition());
    let lane = lanes.lane_mut(lane_id)?;
    let offset = msg.offset();
    if offset < 0 || !lane.tracker.read(offset as u64) {
        return None;
    }
    let position = Position::Kafka {
        topic: lane.topic.clone(),
        partition: lane.partition,
        offset,
    };
    let mut event = Event::new(
        arena.copy(msg.payload().unwrap_or_default()),
        position,
        acks.ack(lane_id, offset as u64),
    );
    event.key = msg.key().map(|k| arena.copy(k));
    if let Some(headers) = msg.headers() {
        for h in headers.iter() {
            event
                .headers
                .push((h.key.to_string(), arena.copy(h.value.unwrap_or_default())));
        }
    }
    event.timestamp = msg.timestamp().to_millis();
    Some(event)
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
    use crate::delivery::Ack;
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
