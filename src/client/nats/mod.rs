//! The NATS client shared by the NATS and JetStream inputs and outputs: server URLs,
//! authentication, subjects, and what JetStream errors mean. Connecting is in [`connect`],
//! messages to events and back in [`message`].

mod connect;
mod message;

pub use connect::{Connection, Connector};
pub use message::{HeaderError, SubjectMemo, headers, to_event, to_event_at};

use std::sync::Arc;

use serde::Deserialize;

use super::ErrorKind;
use super::tls::TlsConfig;
use crate::config::{Secret, Validator};
use crate::delivery::Cause;

/// Where and how a NATS input or output connects: its `url`, `auth` and `tls` settings.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    /// Server URLs, comma-separated.
    pub url: &'a str,
    /// Authentication.
    pub auth: &'a NatsAuth,
    /// TLS, when the `tls:` block is given.
    pub tls: Option<&'a TlsConfig>,
}

impl Endpoint<'_> {
    /// Builds the client settings without connecting: URLs parsed, authentication checked, and
    /// its files and the TLS files read and parsed, once. Errors are reported under `path`
    /// (`input`, `output`); None when there was one.
    pub fn build(&self, path: &str, v: &mut Validator<'_>) -> Option<Connector> {
        let servers = match parse_servers(self.url) {
            Err(e) => {
                v.error_at(&format!("{path}.url"), e);
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
        let tls = match self.tls {
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
            insecure: self.tls.is_some_and(TlsConfig::is_insecure),
            client_certificate: self.tls.is_some_and(|t| t.cert_file.is_some()),
        })
    }
}

/// NATS authentication: at most one method.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsAuth {
    /// A `.creds` file (JWT and NKey seed).
    #[serde(default)]
    pub credentials_file: Option<std::path::PathBuf>,
    /// A file holding an NKey seed (`SU...`), for servers that list the user's public NKey.
    #[serde(default)]
    pub nkey_file: Option<std::path::PathBuf>,
    /// A token.
    #[serde(default)]
    pub token: Option<Secret>,
    /// User name, with `password`.
    #[serde(default)]
    pub user: Option<String>,
    /// Password, with `user`.
    #[serde(default)]
    pub password: Option<Secret>,
}

impl NatsAuth {
    fn is_set(&self) -> bool {
        self.credentials_file.is_some()
            || self.nkey_file.is_some()
            || self.token.is_some()
            || self.user.is_some()
    }

    /// Checks that the methods given make sense together, and reads the NKey seed and the
    /// credentials file; None when something is wrong.
    fn build(&self, path: &str, v: &mut Validator<'_>) -> Option<Secrets> {
        let before = v.errors.len();
        let methods = [
            self.credentials_file.is_some(),
            self.nkey_file.is_some(),
            self.token.is_some(),
            self.user.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            v.error_at(
                path,
                "give only one of credentials_file, nkey_file, token, or user and password",
            );
        }
        if self.user.is_some() != self.password.is_some() {
            v.error_at(path, "user and password go together");
        }
        let nkey = self.nkey_file.as_ref().and_then(|file| {
            nkey_seed(file)
                .map_err(|e| v.error_at(&format!("{path}.nkey_file"), e))
                .ok()
        });
        let credentials = self.credentials_file.as_ref().and_then(|file| {
            credentials(file)
                .map_err(|e| v.error_at(&format!("{path}.credentials_file"), e))
                .ok()
        });
        (v.errors.len() == before).then_some(Secrets { nkey, credentials })
    }
}

/// What authentication takes from files.
struct Secrets {
    /// The NKey seed of `nkey_file`.
    nkey: Option<String>,
    /// The text of `credentials_file`.
    credentials: Option<String>,
}

/// The text of a `.creds` file, checked to hold a user JWT and NKey seed.
fn credentials(file: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    async_nats::ConnectOptions::new()
        .credentials(&text)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(text)
}

/// Credentials written in a server URL: `nats://user:password@host` or `nats://token@host`.
#[derive(Clone, PartialEq, Eq)]
enum UrlCredentials {
    UserPassword(String, Secret),
    Token(Secret),
}

/// The servers of a `url` setting. Credentials written in the URLs are taken out of them and
/// returned apart, so that the client sends them as authentication and never shows them (it
/// logs server addresses; it does not authenticate with a URL's credentials itself).
#[derive(Clone)]
struct Servers {
    addrs: Vec<async_nats::ServerAddr>,
    credentials: Option<UrlCredentials>,
    /// The URLs as written, without their credentials, for logs.
    shown: String,
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses `nats://host:port[,...]` (the scheme may be left out, or be `tls`, `ws`, `wss`).
/// Errors show the URL with its password replaced.
fn parse_servers(url: &str) -> Result<Servers, String> {
    let mut addrs = Vec::new();
    let mut credentials = None;
    let mut shown = Vec::new();
    for server in url.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        shown.push(redact_url(server));
        let invalid =
            |e: &dyn std::fmt::Display| format!("invalid server `{}`: {e}", redact_url(server));
        let text = if server.contains("://") {
            server.to_string()
        } else {
            format!("nats://{server}")
        };
        let mut parsed = url::Url::parse(&text).map_err(|e| invalid(&e))?;
        let user = decode(parsed.username());
        let these = match (user.is_empty(), parsed.password()) {
            (true, None) => None,
            (false, None) => Some(UrlCredentials::Token(Secret(user))),
            (_, Some(password)) => {
                Some(UrlCredentials::UserPassword(user, Secret(decode(password))))
            }
        };
        if these.is_some() {
            if credentials.is_some() && credentials != these {
                return Err("the servers in url give different credentials".into());
            }
            credentials = these;
            // Only fails for URLs that cannot have credentials, which these had.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
        }
        addrs.push(async_nats::ServerAddr::from_url(parsed).map_err(|e| invalid(&e))?);
    }
    if addrs.is_empty() {
        return Err("url must name at least one server".into());
    }
    Ok(Servers {
        addrs,
        credentials,
        shown: shown.join(","),
    })
}

/// A server URL as it may be shown: the password in it (or a token, written as a user) is
/// replaced by `<redacted>`.
pub fn redact_url(server: &str) -> String {
    let (scheme, rest) = match server.find("://") {
        Some(i) => server.split_at(i + 3),
        None => ("", server),
    };
    let authority = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority].rfind('@') {
        Some(at) => {
            let shown = match rest[..at].split_once(':') {
                Some((user, _)) => format!("{user}:<redacted>"),
                None => "<redacted>".to_string(),
            };
            format!("{scheme}{shown}{}", &rest[at..])
        }
        None => server.to_string(),
    }
}

/// The NKey seed in `file`: its first line that is a seed (nsc writes comments around it).
fn nkey_seed(file: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let seed = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("SU"))
        .ok_or_else(|| format!("{}: no user NKey seed (a line starting SU)", file.display()))?;
    nkeys::KeyPair::from_seed(seed)
        .map_err(|e| format!("{}: not a valid NKey seed: {e}", file.display()))?;
    Ok(seed.to_string())
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

    #[test]
    fn credentials_come_out_of_urls_and_urls_are_shown_without_them() {
        let servers = parse_servers("nats://bob:p%40ss@a:4222, b:4223").unwrap();
        assert_eq!(servers.addrs.len(), 2);
        assert!(matches!(
            servers.credentials,
            Some(UrlCredentials::UserPassword(ref u, ref p)) if u == "bob" && p.0 == "p@ss"
        ));
        assert!(!format!("{:?}", servers.addrs).contains("p%40ss"));
        assert!(matches!(
            parse_servers("tok3n@a").unwrap().credentials,
            Some(UrlCredentials::Token(ref t)) if t.0 == "tok3n"
        ));
        assert_eq!(
            redact_url("nats://bob:secret@a:4222/x"),
            "nats://bob:<redacted>@a:4222/x"
        );
        assert_eq!(redact_url("tok3n@a:4222"), "<redacted>@a:4222");
        assert_eq!(redact_url("nats://a:4222"), "nats://a:4222");
        assert!(parse_servers("nats://u:1@a,nats://u:2@b").is_err());
        assert!(parse_servers(" , ").is_err());
    }
}
