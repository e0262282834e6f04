//! The `jetstream` output: publish to a stream and wait for its acknowledgement.

use serde::Deserialize;
use tokio::sync::mpsc;

use super::deliver::{self, Attempt, Protocol};
use super::retry::Held;
use super::{SinkContext, SinkError};
use crate::client::ErrorKind;
use crate::client::nats::{
    Connection, Connector, Endpoint, NatsAuth, check_subject, classify_publish,
};
use crate::client::tls::TlsConfig;
use crate::config::Validator;
use crate::delivery::Cause;
use crate::event::Event;
use crate::event::Failed;
use crate::policy::fit;

/// Publishes each event to a subject captured by a stream and waits for the stream's publish
/// acknowledgement before the input is acknowledged.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JetStreamOutputConfig {
    /// Server URLs, `nats://host:port[,...]`.
    pub url: String,
    /// Subject for events with no `destination` of their own.
    pub subject: String,
    /// How results are written: `json` (the default), `avro: {...}` or `protobuf: {...}`, with
    /// the schema from a file or the Schema Registry (see "Avro and Protobuf").
    #[serde(default)]
    pub format: Option<crate::codec::schema::FormatConfig>,
    /// Set `Nats-Msg-Id` from the input's position so that a redelivered input does not create
    /// a duplicate within the stream's duplicate window.
    #[serde(default = "default_true")]
    pub msg_id: bool,
    /// Authentication.
    #[serde(default)]
    pub auth: NatsAuth,
    /// TLS: `tls: {}` for the system's certificate authorities, or `ca_file`, `cert_file` and
    /// `key_file` (mutual TLS), `server_name`, `insecure_skip_verify`.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

fn default_true() -> bool {
    true
}

impl JetStreamOutputConfig {
    /// Where and how it connects.
    pub fn endpoint(&self) -> Endpoint<'_> {
        Endpoint {
            url: &self.url,
            auth: &self.auth,
            tls: self.tls.as_ref(),
        }
    }

    /// Builds the output without connecting; problems are reported under `path`.
    pub fn build(&self, path: &str, v: &mut Validator<'_>) -> Option<JetStreamOutput> {
        let connector = self.endpoint().build(path, v);
        check_subject(&self.subject, false, &format!("{path}.subject"), v);
        Some(JetStreamOutput {
            config: self.clone(),
            connector: connector?,
        })
    }
}

/// A `jetstream` output, built.
#[derive(Debug, Clone)]
pub struct JetStreamOutput {
    config: JetStreamOutputConfig,
    connector: Connector,
}

/// The `Nats-Msg-Id` of an event: its input's position and its index among the events derived
/// from that input, so a redelivered input publishes the same ids and the stream drops the
/// copies within its duplicate window.
pub fn msg_id(event: &Event, dead_letter: bool) -> String {
    let kind = if dead_letter { "dead-letter:" } else { "" };
    format!("{kind}{}#{}", event.position, event.derived)
}

/// Publishes batches until the channel closes. All events of a batch are published, then each
/// is confirmed by the stream's acknowledgement. Publishes that failed for a passing reason (no
/// acknowledgement in time, connection lost) are retried; one the stream refuses follows the
/// error policy.
pub async fn run(
    output: &JetStreamOutput,
    rx: mpsc::Receiver<Vec<Event>>,
    ctx: SinkContext,
) -> Result<(), SinkError> {
    let connection = output
        .connector
        .connect(ctx.telemetry.pipeline(), ctx.link.clone())
        .await
        .map_err(|m| SinkError::Write {
            output: "jetstream",
            message: m,
        })?;
    let publisher = Publisher {
        js: async_nats::jetstream::new(connection.clone()),
        config: &output.config,
        _connection: connection,
    };
    deliver::run(publisher, rx, ctx).await
}

/// The header JetStream deduplicates by.
const NATS_MSG_ID: &str = "Nats-Msg-Id";

/// Most publishes awaiting their acknowledgement at once: below async-nats' limit of pending
/// acknowledgements (5,000), past which a publish would wait for an acknowledgement nobody
/// awaits yet.
const ACK_WINDOW: usize = 1_000;

/// A stream's publisher.
struct Publisher<'a> {
    js: async_nats::jetstream::Context,
    config: &'a JetStreamOutputConfig,
    /// Keeps readiness in line with the connection.
    _connection: Connection,
}

impl Protocol for Publisher<'_> {
    /// Publishes `todo` a window at a time, awaiting each window's acknowledgements together.
    async fn attempt(
        &mut self,
        todo: Vec<Held>,
        attempt: &mut Attempt,
        ctx: &SinkContext,
    ) -> Result<(), SinkError> {
        let (js, config) = (&self.js, self.config);
        let mut todo = todo.into_iter().peekable();
        while todo.peek().is_some() {
            let mut pending = Vec::with_capacity(ACK_WINDOW);
            // A dead letter is cut to what the server takes (0 until connected: nothing to go by).
            let max_payload = match ctx.dead_letter {
                true => js.client().server_info().max_payload,
                false => 0,
            };
            for mut held in todo.by_ref().take(ACK_WINDOW) {
                let id = config.msg_id.then(|| msg_id(&held.event, ctx.dead_letter));
                if max_payload > 0 {
                    let header = id.as_ref().map_or(0, |id| NATS_MSG_ID.len() + id.len() + 8);
                    fit(&mut held.event, max_payload.saturating_sub(header));
                }
                let event = &held.event;
                let subject = event
                    .destination
                    .as_deref()
                    .unwrap_or(&config.subject)
                    .to_string();
                let mut headers = match super::nats::headers(event) {
                    Ok(h) => h,
                    Err(reason) => {
                        attempt.refused(Failed::at_output(held.event, reason, Cause::Event));
                        continue;
                    }
                };
                if let Some(id) = &id {
                    headers.insert(NATS_MSG_ID, id.as_str());
                }
                let published = js
                    .publish_with_headers(subject, headers, event.payload.clone())
                    .await;
                pending.push((held, published));
            }
            // Await the acknowledgements together: each has its own timeout, and after a server
            // restart none of the lost ones may hold up the rest.
            let acked = futures_util::future::join_all(pending.into_iter().map(
                |(held, published)| async move {
                    let acked = match published {
                        Ok(ack) => ack.await,
                        Err(e) => Err(e),
                    };
                    (held, acked)
                },
            ))
            .await;
            for (held, acked) in acked {
                match acked {
                    Ok(_) => attempt.delivered(held.event),
                    Err(e) => match classify_publish(&e) {
                        ErrorKind::Refused(cause) => {
                            attempt.refused(Failed::at_output(held.event, e.to_string(), cause));
                        }
                        // A publish has no fatal error: every other is worth another attempt.
                        ErrorKind::Retriable | ErrorKind::Fatal => {
                            attempt.retry(held, e.to_string())
                        }
                    },
                }
            }
        }
        Ok(())
    }
}
