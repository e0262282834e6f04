//! The `jetstream` output: publish to a stream and wait for its acknowledgement.

use serde::Deserialize;

use crate::config::Validator;
use crate::source::nats::{NatsAuth, check_subject, check_url};

/// Publishes each event to a subject captured by a stream and waits for the stream's publish
/// acknowledgement before the input is acknowledged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JetStreamOutputConfig {
    /// Server URLs, `nats://host:port[,...]`.
    pub url: String,
    /// Subject for events with no `destination` of their own.
    pub subject: String,
    /// Set `Nats-Msg-Id` from the input's position so that a redelivered input does not create
    /// a duplicate within the stream's duplicate window.
    #[serde(default = "default_true")]
    pub msg_id: bool,
    /// Authentication.
    #[serde(default)]
    pub auth: NatsAuth,
}

fn default_true() -> bool {
    true
}

impl JetStreamOutputConfig {
    /// Checks values serde cannot.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        check_url(&self.url, &format!("{path}.url"), v);
        check_subject(&self.subject, false, &format!("{path}.subject"), v);
        self.auth.validate(&format!("{path}.auth"), v);
    }
}
