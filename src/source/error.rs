//! Why an input stopped ([`SourceError`]), with the error that stopped it and what that error
//! means ([`ErrorKind`]).

use std::path::PathBuf;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::client::kafka::{ClientError, classify};
use crate::client::nats::NatsError;
use crate::delivery::ErrorKind;

/// Why an input stopped early: the pipeline stops, with what it read and did not acknowledge
/// left to be read again.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading a file or standard input failed, or a thread could not start.
    #[error("{input} input: {}{source}", at(.path))]
    Io {
        /// Input kind.
        input: &'static str,
        /// The file read, if any.
        path: Option<PathBuf>,
        /// What failed.
        source: std::io::Error,
    },
    /// The address to serve could not be listened on.
    #[error("{input} input: cannot listen on {address}: {source}")]
    Listen {
        /// Input kind.
        input: &'static str,
        /// The address.
        address: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A Kafka client (the consumer, its lag probe) could not be made.
    #[error("kafka input: {0}")]
    KafkaClient(#[source] ClientError),
    /// The Kafka consumer refused what it was asked (subscribing to the topics).
    #[error("kafka input: {0}")]
    Kafka(#[source] KafkaError),
    /// librdkafka reported a fatal consumer error: it consumes nothing more.
    #[error("kafka input: fatal consumer error: {reason} ({code:?})")]
    Consumer {
        /// librdkafka's description.
        reason: String,
        /// Its code.
        #[source]
        code: RDKafkaErrorCode,
    },
    /// Connecting to NATS, subscribing, or setting up the JetStream consumer failed for good.
    #[error("{input} input: {source}")]
    Nats {
        /// Input kind.
        input: &'static str,
        /// What failed.
        source: Box<NatsError>,
    },
    /// The input ended in a way that has no error of its own (its thread panicked, it was
    /// handed to a pipeline already).
    #[error("{input} input: {what}")]
    Ended {
        /// Input kind.
        input: &'static str,
        /// What happened.
        what: &'static str,
    },
    /// An error of a type that only one input has (a template that fails): the input's own
    /// module defines it, which this one, shared by every input, cannot name; its kind is
    /// told with it.
    #[error("{input} input: {source}")]
    Input {
        /// Input kind.
        input: &'static str,
        /// What the error means.
        kind: ErrorKind,
        /// What failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl SourceError {
    /// What stopped the input: a failure that may pass (a connection lost, an address still
    /// in use), a refusal, or one that nothing will fix.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SourceError::Io { source, .. } | SourceError::Listen { source, .. } => {
                ErrorKind::of_io(source)
            }
            SourceError::KafkaClient(_) | SourceError::Consumer { .. } => ErrorKind::Fatal,
            SourceError::Kafka(e) => classify(e),
            SourceError::Nats { source, .. } => source.kind(),
            SourceError::Ended { .. } => ErrorKind::Fatal,
            SourceError::Input { kind, .. } => *kind,
        }
    }
}

/// `path: ` before an error about that file.
fn at(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Cause;

    #[test]
    fn each_error_says_what_it_means() {
        use std::io::{Error, ErrorKind as Io};
        let missing = SourceError::Io {
            input: "file",
            path: Some(PathBuf::from("/in/events.jsonl")),
            source: Error::from(Io::NotFound),
        };
        assert_eq!(missing.kind(), ErrorKind::Fatal);
        assert!(
            missing
                .to_string()
                .starts_with("file input: /in/events.jsonl: ")
        );
        let reset = SourceError::Io {
            input: "stdin",
            path: None,
            source: Error::from(Io::ConnectionReset),
        };
        assert_eq!(reset.kind(), ErrorKind::Retriable);

        // An address taken by another process: listening again later will not take it.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap().to_string();
        let again = std::net::TcpListener::bind(&address).expect_err("the address is taken");
        let listen = SourceError::Listen {
            input: "http_server",
            address: address.clone(),
            source: again,
        };
        assert_eq!(listen.kind(), ErrorKind::Fatal);
        let shown = listen.to_string();
        assert!(shown.starts_with(&format!("http_server input: cannot listen on {address}: ")));

        let fatal = SourceError::Consumer {
            reason: "the group's member id is fenced".into(),
            code: RDKafkaErrorCode::Fatal,
        };
        assert_eq!(fatal.kind(), ErrorKind::Fatal);
        let refused = KafkaError::Subscription("^[".into());
        assert_eq!(
            SourceError::Kafka(refused).kind(),
            ErrorKind::Refused(Cause::Output)
        );

        let nats = SourceError::Nats {
            input: "jetstream",
            source: Box::new(NatsError::Closed),
        };
        assert_eq!(nats.kind(), ErrorKind::Fatal);
        assert_eq!(nats.to_string(), "jetstream input: the connection closed");
    }
}
