//! What failed talking to a NATS server ([`NatsError`], [`ConsumerError`]) and what each error
//! means ([`ErrorKind`]), decided here once for every NATS and JetStream input and output.

use async_nats::jetstream::context::{ConsumerInfoError, GetStreamError};

use super::ConnectError;
use crate::delivery::{Cause, ErrorKind};

/// Why a NATS or JetStream input or output stopped.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The client did not connect.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Subscribing failed: the client is closed.
    #[error(transparent)]
    Subscribe(#[from] async_nats::SubscribeError),
    /// Waiting for the server to have what was sent failed: the client is closed.
    #[error(transparent)]
    Flush(#[from] async_nats::client::FlushError),
    /// Publishing failed.
    #[error(transparent)]
    Publish(#[from] async_nats::PublishError),
    /// The JetStream consumer could not be found or set up.
    #[error(transparent)]
    Consumer(#[from] ConsumerError),
    /// The subscription ended: the client was closed.
    #[error("the connection closed")]
    Closed,
}

impl NatsError {
    /// A core NATS publish is refused only for what is wrong with the message itself (its size,
    /// subject or headers); every other error here ends the client: connecting failed for a
    /// reason retrying would not fix (the client retries a server that is down by itself), or
    /// the client is closed.
    pub fn kind(&self) -> ErrorKind {
        use async_nats::client::PublishErrorKind as P;
        match self {
            NatsError::Publish(e) => match e.kind() {
                P::MaxPayloadExceeded | P::InvalidSubject => ErrorKind::Refused(Cause::Event),
                P::Send => ErrorKind::Fatal,
            },
            NatsError::Consumer(e) => e.kind(),
            NatsError::Connect(_)
            | NatsError::Subscribe(_)
            | NatsError::Flush(_)
            | NatsError::Closed => ErrorKind::Fatal,
        }
    }
}

/// Why a JetStream input's durable consumer was not found or set up.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// Looking up the stream failed.
    #[error("stream {stream}: {source}")]
    Stream {
        /// The stream.
        stream: String,
        /// The client's error.
        source: GetStreamError,
    },
    /// Looking up a consumer to bind to failed.
    #[error("consumer {consumer} on stream {stream}: {source}{}", bind_hint(.source))]
    Lookup {
        /// The stream.
        stream: String,
        /// The consumer.
        consumer: String,
        /// The client's error.
        source: ConsumerInfoError,
    },
    /// Creating or updating the consumer failed.
    #[error("consumer {consumer} on stream {stream}: {source}")]
    Create {
        /// The stream.
        stream: String,
        /// The consumer.
        consumer: String,
        /// The client's error.
        source: async_nats::jetstream::stream::ConsumerError,
    },
}

impl ConsumerError {
    /// Retriable while the server is unreachable or restarting; fatal when the configuration or
    /// the server's state is wrong (no such stream or consumer, a configuration refused).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ConsumerError::Stream { source, .. } => stream_lookup(source),
            ConsumerError::Lookup { source, .. } => consumer_lookup(source),
            ConsumerError::Create { source, .. } => consumer_create(source),
        }
    }
}

/// Said of a consumer to bind to that is not there for good.
fn bind_hint(e: &ConsumerInfoError) -> &'static str {
    match consumer_lookup(e) {
        ErrorKind::Fatal => " (bind: true needs it to exist)",
        _ => "",
    }
}

/// What a JetStream publish error means, for every JetStream output. "No stream for the
/// subject" is a refusal: retrying would hold the output forever for an event routed where
/// nothing stores it.
pub fn classify_publish(e: &async_nats::jetstream::context::PublishError) -> ErrorKind {
    use async_nats::jetstream::context::PublishErrorKind as K;
    // JetStream's "message size exceeds maximum allowed" (the stream's max_msg_size).
    const MESSAGE_TOO_LARGE: u64 = 10054;
    let code = || {
        std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>())
            .map(|j| j.error_code())
    };
    match e.kind() {
        // No acknowledgement in time, the connection lost, or the server saying it cannot
        // store anything right now.
        K::TimedOut | K::BrokenPipe | K::MaxAckPending => ErrorKind::Retriable,
        K::Other if code().is_some_and(unavailable) => ErrorKind::Retriable,
        // Too large for the server or the stream, or a failed expectation.
        K::MaxPayloadExceeded | K::WrongLastMessageId | K::WrongLastSequence => {
            ErrorKind::Refused(Cause::Event)
        }
        K::Other if code().is_some_and(|c| c.0 == MESSAGE_TOO_LARGE) => {
            ErrorKind::Refused(Cause::Event)
        }
        _ => ErrorKind::Refused(Cause::Output),
    }
}

/// JetStream errors saying the server or cluster cannot answer right now (no leader, JetStream
/// temporarily unavailable, out of resources, a store failure), as opposed to a wrong request.
fn unavailable(code: async_nats::jetstream::ErrorCode) -> bool {
    matches!(code.0, 10004..=10011 | 10023 | 10040 | 10044 | 10077)
}

/// Whether looking up a stream may succeed later (the server unreachable or restarting) or not
/// (no such stream).
fn stream_lookup(e: &GetStreamError) -> ErrorKind {
    use async_nats::jetstream::context::GetStreamErrorKind as K;
    match e.kind() {
        K::JetStream(j) if !unavailable(j.error_code()) => ErrorKind::Fatal,
        _ => ErrorKind::Retriable,
    }
}

/// Whether looking up a consumer may succeed later, or not (no such consumer).
fn consumer_lookup(e: &ConsumerInfoError) -> ErrorKind {
    use async_nats::jetstream::context::ConsumerInfoErrorKind as K;
    match e.kind() {
        K::NotFound | K::InvalidName => ErrorKind::Fatal,
        K::JetStream(j) if !unavailable(j.error_code()) => ErrorKind::Fatal,
        _ => ErrorKind::Retriable,
    }
}

/// Whether creating or updating a consumer may succeed later (no answer, JetStream not ready),
/// or not (a configuration the server refuses).
fn consumer_create(e: &async_nats::jetstream::stream::ConsumerError) -> ErrorKind {
    use async_nats::jetstream::stream::ConsumerErrorKind as K;
    match e.kind() {
        K::TimedOut | K::Request => ErrorKind::Retriable,
        K::JetStream(j) if unavailable(j.error_code()) => ErrorKind::Retriable,
        _ => ErrorKind::Fatal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_errors_are_retriable_or_refused_for_the_event_or_the_output() {
        use async_nats::jetstream::context::{PublishError, PublishErrorKind as K};
        let kind = |k| classify_publish(&PublishError::new(k));
        assert_eq!(kind(K::TimedOut), ErrorKind::Retriable);
        assert_eq!(kind(K::BrokenPipe), ErrorKind::Retriable);
        assert_eq!(
            kind(K::MaxPayloadExceeded),
            ErrorKind::Refused(Cause::Event)
        );
        assert_eq!(kind(K::WrongLastSequence), ErrorKind::Refused(Cause::Event));
        assert_eq!(kind(K::StreamNotFound), ErrorKind::Refused(Cause::Output));
        assert_eq!(kind(K::Other), ErrorKind::Refused(Cause::Output));
    }

    #[test]
    fn core_publishes_are_refused_for_the_message_and_a_closed_client_is_fatal() {
        use async_nats::client::PublishErrorKind as K;
        let kind = |k| NatsError::from(async_nats::PublishError::new(k)).kind();
        assert_eq!(
            kind(K::MaxPayloadExceeded),
            ErrorKind::Refused(Cause::Event)
        );
        assert_eq!(kind(K::InvalidSubject), ErrorKind::Refused(Cause::Event));
        assert_eq!(kind(K::Send), ErrorKind::Fatal);
        assert_eq!(NatsError::Closed.kind(), ErrorKind::Fatal);
        let closed =
            async_nats::client::FlushError::new(async_nats::client::FlushErrorKind::SendError);
        assert_eq!(NatsError::from(closed).kind(), ErrorKind::Fatal);
    }

    #[test]
    fn a_consumer_not_reachable_yet_is_retriable_one_not_there_is_fatal() {
        use async_nats::jetstream::context::ConsumerInfoErrorKind as I;
        use async_nats::jetstream::context::GetStreamErrorKind as S;
        use async_nats::jetstream::stream::{ConsumerError as Create, ConsumerErrorKind as C};
        let stream = |k| ConsumerError::Stream {
            stream: "orders".into(),
            source: GetStreamError::new(k),
        };
        let lookup = |k| ConsumerError::Lookup {
            stream: "orders".into(),
            consumer: "c".into(),
            source: ConsumerInfoError::new(k),
        };
        let create = |k| ConsumerError::Create {
            stream: "orders".into(),
            consumer: "c".into(),
            source: Create::new(k),
        };
        assert_eq!(stream(S::Request).kind(), ErrorKind::Retriable);
        assert_eq!(lookup(I::TimedOut).kind(), ErrorKind::Retriable);
        assert_eq!(lookup(I::NotFound).kind(), ErrorKind::Fatal);
        assert_eq!(create(C::TimedOut).kind(), ErrorKind::Retriable);
        assert_eq!(create(C::InvalidName).kind(), ErrorKind::Fatal);
        // Through NatsError, as an input stops with it.
        assert_eq!(
            NatsError::from(lookup(I::NotFound)).kind(),
            ErrorKind::Fatal
        );
        // Only a consumer that is not there is told to exist.
        assert!(
            lookup(I::NotFound)
                .to_string()
                .ends_with(" (bind: true needs it to exist)")
        );
        assert!(!lookup(I::TimedOut).to_string().contains("bind: true"));
    }
}
