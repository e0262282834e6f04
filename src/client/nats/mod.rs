//! The NATS client shared by the NATS and JetStream inputs and outputs: server URLs,
//! authentication, subjects, and what JetStream errors mean. Connecting is in [`connect`],
//! messages to events and back in [`message`].

mod auth;
mod connect;
mod message;
mod servers;

pub use auth::{AuthFileError, NatsAuth};
pub use connect::{Client, ConnectError, Connector};
pub use message::{HeaderError, SubjectMemo, headers, to_event, to_event_at};
pub use servers::{ServersError, redact_url};

use std::sync::Arc;

use super::tls::TlsConfig;
use crate::config::Validator;
use crate::delivery::Cause;
use crate::delivery::ErrorKind;
use servers::parse_servers;

/// Declares a NATS or JetStream input's or output's configuration (see
/// [`connected_config`](crate::client::connected_config)): `url` first, then its own keys,
/// then `auth` and `tls`, all read into its `connection`.
macro_rules! nats_config {
    (
        $(#[doc = $doc:tt])*
        pub struct $name:ident { $($own:tt)* }
    ) => {
        $crate::client::connected_config! {
            $(#[doc = $doc])*
            pub struct $name { $($own)* }
            connection $crate::client::nats::Connection {
                first {
                    /// Server URLs, `nats://host:port[,...]`.
                    url: String,
                }
                last {
                    /// Authentication.
                    #[serde(default)]
                    auth: $crate::client::nats::NatsAuth,
                    /// TLS: `tls: {}` for the system's certificate authorities, or `ca_file`, `cert_file` and
                    /// `key_file` (mutual TLS), `server_name`, `insecure_skip_verify`.
                    #[serde(default)]
                    tls: Option<$crate::client::tls::TlsConfig>,
                }
            }
        }
    };
}

pub(crate) use nats_config;

/// Where and how a NATS or JetStream input or output connects: its `url`, `auth` and `tls`
/// settings.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Server URLs, comma-separated.
    pub url: String,
    /// Authentication.
    pub auth: NatsAuth,
    /// TLS, when the `tls:` block is given.
    pub tls: Option<TlsConfig>,
}

impl Connection {
    /// Builds the client settings without connecting: URLs parsed, authentication checked, and
    /// its files and the TLS files read and parsed, once. Errors are reported under `path`
    /// (`input`, `output`); None when there was one.
    pub fn build(&self, path: &str, v: &mut Validator<'_>) -> Option<Connector> {
        let servers = match parse_servers(&self.url) {
            Err(e) => {
                v.error_at(&format!("{path}.url"), e.to_string());
                None
            }
            Ok(servers) if servers.credentials.is_some() && self.auth.is_set() => {
                v.error_at(
                    &format!("{path}.url"),
                    "credentials are given both in url and in auth: give them in one place",
                );
                None
            }
            Ok(servers) => Some(servers),
        };
        let secrets = self.auth.build(&format!("{path}.auth"), v);
        let tls = match &self.tls {
            Some(tls) => tls.build(&format!("{path}.tls"), v).map(Some),
            None => Some(None),
        };
        let (servers, secrets, tls) = (servers?, secrets?, tls?);
        Some(Connector {
            servers: Arc::new(servers),
            auth: self.auth.clone(),
            nkey: secrets.nkey,
            credentials: secrets.credentials,
            tls,
            insecure: self.tls.as_ref().is_some_and(TlsConfig::is_insecure),
            client_certificate: self.tls.as_ref().is_some_and(|t| t.cert_file.is_some()),
        })
    }
}

/// Subjects must be non-empty tokens separated by dots.
pub fn check_subject(subject: &str, wildcards: bool, path: &str, v: &mut Validator<'_>) {
    let tokens: Vec<&str> = subject.split('.').collect();
    let bad_token = tokens.iter().enumerate().any(|(i, t)| {
        t.is_empty()
            || t.contains(char::is_whitespace)
            || (!wildcards && (*t == "*" || *t == ">"))
            || (*t == ">" && i + 1 != tokens.len())
            || (t.len() > 1 && (t.contains('*') || t.contains('>')))
    });
    if bad_token {
        v.error_at(path, format!("`{subject}` is not a valid subject"));
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
pub fn classify_stream_lookup(e: &async_nats::jetstream::context::GetStreamError) -> ErrorKind {
    use async_nats::jetstream::context::GetStreamErrorKind as K;
    match e.kind() {
        K::JetStream(j) if !unavailable(j.error_code()) => ErrorKind::Fatal,
        _ => ErrorKind::Retriable,
    }
}

/// Whether looking up a consumer may succeed later, or not (no such consumer).
pub fn classify_consumer_lookup(
    e: &async_nats::jetstream::context::ConsumerInfoError,
) -> ErrorKind {
    use async_nats::jetstream::context::ConsumerInfoErrorKind as K;
    match e.kind() {
        K::NotFound | K::InvalidName => ErrorKind::Fatal,
        K::JetStream(j) if !unavailable(j.error_code()) => ErrorKind::Fatal,
        _ => ErrorKind::Retriable,
    }
}

/// Whether creating or updating a consumer may succeed later (no answer, JetStream not ready),
/// or not (a configuration the server refuses).
pub fn classify_consumer_create(e: &async_nats::jetstream::stream::ConsumerError) -> ErrorKind {
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
}
