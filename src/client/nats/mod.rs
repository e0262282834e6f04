//! The NATS client shared by the NATS and JetStream inputs and outputs: server URLs,
//! authentication, subjects, and what its errors mean ([`NatsError`]). Connecting is in
//! [`connect`], messages to events and back in [`message`].

mod auth;
mod connect;
mod error;
mod message;
mod servers;

pub use auth::{AuthFileError, NatsAuth};
pub use connect::{Client, ConnectError, Connector};
pub use error::{ConsumerError, NatsError, classify_publish};
pub use message::{HeaderError, SubjectMemo, headers, to_event, to_event_at};
pub use servers::{ServersError, redact_url};

use std::sync::Arc;

use super::tls::TlsConfig;
use crate::config::Validator;
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
