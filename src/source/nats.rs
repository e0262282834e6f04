//! The `nats` input: core NATS subjects, optionally in a queue group. At-most-once.

use serde::Deserialize;

use crate::codec::Codec;
use crate::config::{Secret, Validator};

/// Subscribes to subjects (wildcards allowed). Core NATS is at-most-once: a message published
/// while no replica is subscribed, or dropped because a replica fell behind (a slow consumer),
/// is gone. Use `jetstream` where every event matters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsInputConfig {
    /// Server URLs, `nats://host:port[,nats://host:port...]`.
    pub url: String,
    /// Subjects to subscribe to; `*` and `>` wildcards allowed.
    pub subjects: Vec<String>,
    /// Queue group: replicas in the same group share the messages, each handled by one.
    #[serde(default)]
    pub queue_group: Option<String>,
    /// `json` or `raw`.
    #[serde(default)]
    pub codec: Codec,
    /// Authentication.
    #[serde(default)]
    pub auth: NatsAuth,
}

/// NATS authentication: at most one method.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsAuth {
    /// A `.creds` file (JWT and NKey seed).
    #[serde(default)]
    pub credentials_file: Option<std::path::PathBuf>,
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
    /// Checks that the methods given make sense together.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        let methods = [
            self.credentials_file.is_some(),
            self.token.is_some(),
            self.user.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            v.error_at(
                path,
                "give only one of credentials_file, token, or user and password",
            );
        }
        if self.user.is_some() != self.password.is_some() {
            v.error_at(path, "user and password go together");
        }
    }
}

/// URLs must be nats:// (or tls://) URLs or host:port.
pub(crate) fn check_url(url: &str, path: &str, v: &mut Validator<'_>) {
    if url.trim().is_empty() {
        v.error_at(path, "url must not be empty");
    }
}

/// Subjects must be non-empty tokens separated by dots.
pub(crate) fn check_subject(subject: &str, wildcards: bool, path: &str, v: &mut Validator<'_>) {
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

impl NatsInputConfig {
    /// Checks values serde cannot.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        check_url(&self.url, &format!("{path}.url"), v);
        if self.subjects.is_empty() {
            v.error_at(
                &format!("{path}.subjects"),
                "subjects must list at least one subject",
            );
        }
        for (i, s) in self.subjects.iter().enumerate() {
            check_subject(s, true, &format!("{path}.subjects.{i}"), v);
        }
        self.auth.validate(&format!("{path}.auth"), v);
    }
}
