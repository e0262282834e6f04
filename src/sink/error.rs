//! Why an output stopped ([`SinkError`]), with the error that stopped it and what that error
//! means ([`ErrorKind`]).

use std::path::PathBuf;

use rdkafka::error::KafkaError;

use crate::client::kafka::{ClientError, classify};
use crate::client::nats::NatsError;
use crate::delivery::{ErrorKind, MustStop};

/// Why an output stopped: nothing more can be delivered. The events it did not confirm are not
/// acknowledged, so their input reads them again after a restart.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The Kafka producer could not be made.
    #[error("kafka output: {0}")]
    KafkaClient(#[source] ClientError),
    /// The Kafka producer failed for good (a fatal idempotence error): it delivers nothing more.
    #[error("kafka output: the producer failed: {0}")]
    Producer(#[source] KafkaError),
    /// Connecting to NATS, or publishing, failed for good.
    #[error("{output} output: {source}")]
    Nats {
        /// Output kind.
        output: &'static str,
        /// What failed.
        source: Box<NatsError>,
    },
    /// Writing to a file or standard output failed.
    #[error("{output} output: {}{source}", at(.path))]
    Io {
        /// Output kind.
        output: &'static str,
        /// The file written, if any.
        path: Option<PathBuf>,
        /// What failed.
        source: std::io::Error,
    },
    /// The HTTP client could not be made.
    #[error("{output} output: {source}")]
    HttpClient {
        /// Output kind.
        output: &'static str,
        /// What failed.
        source: reqwest::Error,
    },
    /// TLS could not be set up.
    #[error("{output} output: {source}")]
    Tls {
        /// Output kind.
        output: &'static str,
        /// What failed.
        source: rustls::Error,
    },
    /// An error of a type that only one output has (a file whose contents it cannot append
    /// to): the output's own module defines it, which this one, shared by every output, cannot
    /// name; its kind is told with it.
    #[error("{output} output: {}{source}", at(.path))]
    Output {
        /// Output kind.
        output: &'static str,
        /// The file written, if any.
        path: Option<PathBuf>,
        /// What the error means.
        kind: ErrorKind,
        /// What failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An event the output refused stops the pipeline (`errors: stop`, or the dead-letter
    /// output failed).
    #[error(transparent)]
    Stopped(#[from] MustStop),
}

impl SinkError {
    /// What stopped the output: a failure that may pass (the disk full, a connection lost), a
    /// refusal of an event or of where it goes, or one that nothing will fix.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SinkError::KafkaClient(_) => ErrorKind::Fatal,
            SinkError::Producer(e) => classify(e),
            SinkError::Nats { source, .. } => source.kind(),
            SinkError::Io { source, .. } => ErrorKind::of_io(source),
            SinkError::HttpClient { .. } | SinkError::Tls { .. } => ErrorKind::Fatal,
            SinkError::Output { kind, .. } => *kind,
            SinkError::Stopped(e) => e.kind(),
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
    use rdkafka::error::RDKafkaErrorCode;

    use super::*;
    use crate::delivery::{Cause, Step};

    #[test]
    fn each_error_says_what_it_means() {
        use std::io::{Error, ErrorKind as Io};
        let io = |kind, path: Option<&str>| SinkError::Io {
            output: "file",
            path: path.map(PathBuf::from),
            source: Error::from(kind),
        };
        let full = io(Io::StorageFull, Some("/data/out.jsonl"));
        assert_eq!(full.kind(), ErrorKind::Retriable);
        assert!(
            full.to_string()
                .starts_with("file output: /data/out.jsonl: ")
        );
        assert_eq!(io(Io::PermissionDenied, None).kind(), ErrorKind::Fatal);

        let fatal = KafkaError::MessageProduction(RDKafkaErrorCode::Fatal);
        assert_eq!(SinkError::Producer(fatal).kind(), ErrorKind::Fatal);
        let refused = rdkafka::ClientConfig::new()
            .set("no.such.property", "x")
            .create::<rdkafka::producer::BaseProducer>()
            .map(|_| ())
            .map_err(|e| SinkError::KafkaClient(e.into()));
        let refused = refused.expect_err("librdkafka refuses a property it does not know");
        assert_eq!(refused.kind(), ErrorKind::Fatal);
        assert_eq!(
            refused.to_string(),
            "kafka output: unknown librdkafka property `no.such.property`"
        );

        let closed = async_nats::PublishError::new(async_nats::client::PublishErrorKind::Send);
        let nats = SinkError::Nats {
            output: "nats",
            source: Box::new(closed.into()),
        };
        assert_eq!(nats.kind(), ErrorKind::Fatal);

        let stop = |cause| {
            SinkError::from(MustStop {
                position: "stdin:3".into(),
                step: Step::Output,
                reason: "too large".into(),
                why: "errors: stop",
                cause,
            })
        };
        assert_eq!(stop(Cause::Event).kind(), ErrorKind::Refused(Cause::Event));
        assert_eq!(
            stop(Cause::Output).kind(),
            ErrorKind::Refused(Cause::Output)
        );
    }
}
