//! NATS messages and events, both ways: a message's payload, headers and subject as an event,
//! and an event's headers as NATS headers.

use std::sync::Arc;

use crate::delivery::Ack;
use crate::event::{Event, Position};

/// Distinct subjects remembered, so that events from one subject share its name; past this the
/// memo starts over, so that subjects with ids in them do not grow memory.
const SUBJECT_MEMO: usize = 4096;

/// What is kept per subject that messages arrive on, shared by the events from it: its name
/// (the default), or something made from the name.
pub struct SubjectMemo<T = Arc<str>> {
    all: std::collections::HashMap<Arc<str>, T>,
    /// The last one asked for: runs of messages on one subject skip the lookup.
    last: Option<(Arc<str>, T)>,
}

impl<T> Default for SubjectMemo<T> {
    fn default() -> Self {
        SubjectMemo {
            all: std::collections::HashMap::new(),
            last: None,
        }
    }
}

impl<T: Clone> SubjectMemo<T> {
    /// What is kept for `subject`, made from its shared name the first time it is seen.
    pub fn get_with(&mut self, subject: &str, make: impl FnOnce(&Arc<str>) -> T) -> T {
        if let Some((name, kept)) = &self.last
            && **name == *subject
        {
            return kept.clone();
        }
        let (name, kept) = match self.all.get_key_value(subject) {
            Some((name, kept)) => (name.clone(), kept.clone()),
            None => {
                if self.all.len() >= SUBJECT_MEMO {
                    self.all.clear();
                }
                let name: Arc<str> = Arc::from(subject);
                let kept = make(&name);
                self.all.insert(name.clone(), kept.clone());
                (name, kept)
            }
        };
        self.last = Some((name, kept.clone()));
        kept
    }
}

impl SubjectMemo {
    /// The shared name of `subject`.
    pub fn get(&mut self, subject: &str) -> Arc<str> {
        self.get_with(subject, Arc::clone)
    }
}

/// Builds an event from a NATS message.
pub fn to_event(msg: async_nats::Message, position: Position, ack: Ack) -> Event {
    to_event_at(msg, Arc::new(position), ack)
}

/// [`to_event`] with a position that may be shared.
pub fn to_event_at(msg: async_nats::Message, position: Arc<Position>, ack: Ack) -> Event {
    let mut event = Event::at(msg.payload, position, ack);
    if let Some(headers) = &msg.headers {
        for (name, values) in headers.iter() {
            for value in values {
                event.headers.push((
                    name.to_string(),
                    bytes::Bytes::copy_from_slice(value.as_str().as_bytes()),
                ));
            }
        }
    }
    event
}

/// An event header NATS cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A name with spaces, `:` or control characters.
    #[error("header name {0:?} is not valid in NATS")]
    Name(String),
    /// A value with a line break.
    #[error("header {name} has a value NATS cannot carry: {text:?}")]
    Value {
        /// The header's name.
        name: String,
        /// The value, as text.
        text: String,
    },
}

/// NATS headers from event headers (values as text).
pub fn headers(event: &Event) -> Result<async_nats::HeaderMap, HeaderError> {
    let mut map = async_nats::HeaderMap::new();
    for (name, value) in &event.headers {
        let header: async_nats::HeaderName =
            name.parse().map_err(|_| HeaderError::Name(name.clone()))?;
        let text = String::from_utf8_lossy(value);
        let value: async_nats::HeaderValue = text.parse().map_err(|_| HeaderError::Value {
            name: name.clone(),
            text: text.to_string(),
        })?;
        map.append(header, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_is_made_once_and_shared_by_every_message_on_it() {
        let mut memo: SubjectMemo<Arc<Position>> = SubjectMemo::default();
        let mut made = 0;
        let mut position = |memo: &mut SubjectMemo<Arc<Position>>, subject: &str| {
            memo.get_with(subject, |name| {
                made += 1;
                Arc::new(Position::Nats {
                    subject: name.clone(),
                    stream: None,
                })
            })
        };
        let a = position(&mut memo, "orders.eu");
        let a_again = position(&mut memo, "orders.eu");
        let b = position(&mut memo, "orders.us");
        let a_after_b = position(&mut memo, "orders.eu");
        assert!(Arc::ptr_eq(&a, &a_again) && Arc::ptr_eq(&a, &a_after_b));
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(
            matches!(&*b, Position::Nats { subject, stream: None } if &**subject == "orders.us")
        );
        assert_eq!(made, 2, "one position per subject");
        let mut names = SubjectMemo::default();
        let name = names.get("orders.eu");
        assert!(Arc::ptr_eq(&name, &names.get("orders.eu")));
        assert_eq!(&*name, "orders.eu");
    }
}
