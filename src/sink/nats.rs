//! The `nats` output: publish to core NATS subjects.

use serde::Deserialize;

use crate::config::Validator;
use crate::source::nats::{NatsAuth, check_subject, check_url};

/// Publishes each event to a subject (a `route` step's `destination` overrides it), with its
/// headers. Core NATS has no delivery confirmation beyond the server receiving the message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsOutputConfig {
    /// Server URLs, `nats://host:port[,...]`.
    pub url: String,
    /// Subject for events with no `destination` of their own.
    pub subject: String,
    /// Authentication.
    #[serde(default)]
    pub auth: NatsAuth,
}

impl NatsOutputConfig {
    /// Checks values serde cannot.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        check_url(&self.url, &format!("{path}.url"), v);
        check_subject(&self.subject, false, &format!("{path}.subject"), v);
        self.auth.validate(&format!("{path}.auth"), v);
    }
}
