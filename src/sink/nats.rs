//! The `nats` output: publish to core NATS subjects.

use serde::Deserialize;
use tokio::sync::mpsc;

use super::{SinkContext, SinkError};
use crate::config::Validator;
use crate::event::Event;
use crate::source::nats::{NatsAuth, check_subject, check_url, connect};

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

/// NATS headers from event headers (values as text).
pub(crate) fn headers(event: &Event) -> async_nats::HeaderMap {
    let mut map = async_nats::HeaderMap::new();
    for (name, value) in &event.headers {
        map.append(name.as_str(), String::from_utf8_lossy(value).as_ref());
    }
    map
}

/// Publishes batches until the channel closes. A batch is confirmed once the server has
/// received it (a flush round trip).
pub async fn run(
    config: &NatsOutputConfig,
    mut rx: mpsc::Receiver<Vec<Event>>,
    ctx: SinkContext,
) -> Result<(), SinkError> {
    let write_error = |m: String| SinkError::Write {
        output: "nats",
        message: m,
    };
    let client = connect(&config.url, &config.auth, ctx.telemetry.pipeline())
        .await
        .map_err(write_error)?;
    while let Some(batch) = rx.recv().await {
        for event in &batch {
            let subject = event
                .destination
                .as_deref()
                .unwrap_or(&config.subject)
                .to_string();
            let published = if event.headers.is_empty() {
                client.publish(subject, event.payload.clone()).await
            } else {
                client
                    .publish_with_headers(subject, headers(event), event.payload.clone())
                    .await
            };
            // Fails only when the client is closed: nothing of this batch is confirmed.
            published.map_err(|e| write_error(e.to_string()))?;
        }
        client
            .flush()
            .await
            .map_err(|e| write_error(e.to_string()))?;
        ctx.confirm(batch);
    }
    Ok(())
}
