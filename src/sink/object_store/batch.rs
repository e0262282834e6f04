//! The events waiting to become one object (one folder, one input lane), the object's name from
//! what it holds, and its bytes (NDJSON, compressed).

use tokio::time::Instant;

use crate::event::{Event, Position};

/// Where an event sits in its input lane: the input's place (a Kafka offset, a JetStream stream
/// sequence, a line) and the event's index among those derived from that input.
pub type Place = (u64, u32);

/// The input lane of an event and its place in it; no place for inputs whose messages have no
/// order to name them by (core NATS, HTTP requests).
pub fn lane(position: &Position, derived: u32) -> (String, Option<Place>) {
    let mut lane = String::new();
    let place = lane_into(position, derived, &mut lane);
    (lane, place)
}

/// [`lane`], the lane appended to `out`: for every event, without a new string each time.
pub fn lane_into(position: &Position, derived: u32, out: &mut String) -> Option<Place> {
    use std::fmt::Write;
    match position {
        Position::Kafka {
            topic,
            partition,
            offset,
        } => {
            let _ = write!(out, "{topic}-{partition}");
            Some((*offset as u64, derived))
        }
        Position::Nats {
            stream: Some((stream, seq)),
            ..
        } => {
            out.push_str(stream);
            Some((*seq, derived))
        }
        Position::Nats { stream: None, .. } => {
            out.push_str("nats");
            None
        }
        Position::Line { source, line } => {
            out.push_str(source.rsplit('/').next().unwrap_or("lines"));
            Some((*line, derived))
        }
        Position::Generated { seq } => {
            out.push_str("generate");
            Some((*seq, derived))
        }
        Position::Request { source, .. } => {
            out.push_str(source);
            None
        }
    }
}

/// Events of one folder and lane, in arrival order, waiting to be written.
pub struct Open {
    /// The folder, under the output's prefix.
    pub folder: String,
    /// The input lane.
    pub lane: String,
    /// The events.
    pub events: Vec<Event>,
    /// Payload bytes held.
    pub bytes: usize,
    /// When the first event arrived: the object is written `max_age` later at the latest.
    pub since: Instant,
    first: Option<Place>,
    last: Option<Place>,
    /// Whether every event had a place (else the name cannot come from the places).
    placed: bool,
}

impl Open {
    /// An empty object for `folder` and `lane`.
    pub fn new(folder: String, lane: String) -> Open {
        Open {
            folder,
            lane,
            events: Vec::new(),
            bytes: 0,
            since: Instant::now(),
            first: None,
            last: None,
            placed: true,
        }
    }

    /// Adds `event`, at `place` in its lane.
    pub fn push(&mut self, event: Event, place: Option<Place>) {
        if self.events.is_empty() {
            self.since = Instant::now();
            self.first = place;
        }
        self.placed &= place.is_some();
        self.last = place;
        self.bytes += event.payload.len() + 1;
        self.events.push(event);
    }

    /// The object's file name (see [`name`]), ending in `ext`.
    pub fn name(&self, pipeline: &str, ext: &str) -> String {
        let places = self.placed.then_some((self.first, self.last));
        name(
            pipeline,
            &self.lane,
            places.and_then(|(f, l)| Some((f?, l?))),
            ext,
        )
    }
}

/// An object's file name: `<pipeline>-<lane>-<first>-<last>.<ext>` from the places of its first
/// and last events (zero-padded, so names sort in lane order), so that the same events written
/// again make the same name; a unique id when not every event has a place (`places` None).
pub fn name(pipeline: &str, lane: &str, places: Option<(Place, Place)>, ext: &str) -> String {
    match places {
        Some((first, last)) => format!(
            "{pipeline}-{lane}-{:020}.{}-{:020}.{}.{ext}",
            first.0, first.1, last.0, last.1
        ),
        None => format!("{pipeline}-{lane}-{}.{ext}", nuid::next()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Ack;
    use std::sync::Arc;

    fn kafka(offset: i64) -> Position {
        Position::Kafka {
            topic: Arc::from("orders"),
            partition: 3,
            offset,
        }
    }

    #[test]
    fn a_name_comes_from_the_first_and_last_places_of_a_lane() {
        let mut open = Open::new("dt=2026-11-29".into(), "orders-3".into());
        for offset in [1042, 1043, 1090] {
            let (lane, place) = lane(&kafka(offset), 0);
            assert_eq!(lane, "orders-3");
            let e = Event::new(
                bytes::Bytes::from_static(b"{}"),
                kafka(offset),
                Ack::untracked(),
            );
            open.push(e, place);
        }
        assert_eq!(
            open.name("archive", "ndjson.zst"),
            "archive-orders-3-00000000000000001042.0-00000000000000001090.0.ndjson.zst"
        );
        assert_eq!(open.bytes, 9);
    }

    #[test]
    fn events_without_places_get_a_unique_name() {
        let mut open = Open::new(String::new(), "nats".into());
        let position = Position::Nats {
            subject: Arc::from("a"),
            stream: None,
        };
        let (_, place) = lane(&position, 0);
        open.push(
            Event::new(bytes::Bytes::new(), position, Ack::untracked()),
            place,
        );
        let (a, b) = (open.name("p", "ndjson"), open.name("p", "ndjson"));
        assert!(a.starts_with("p-nats-") && a.ends_with(".ndjson"), "{a}");
        assert_ne!(a, b);
    }
}
