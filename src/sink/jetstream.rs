//! The `jetstream` output: publish to a stream and wait for its acknowledgement.

use super::Batches;

use super::deliver::{self, Attempt, Protocol};
use super::retry::Held;
use super::{BuiltOutput, OutputSpec};
use super::{SinkContext, SinkError};
use crate::client::nats::{
    Client, Connector, check_subject, classify_publish, headers, nats_config,
};
use crate::codec::schema::FormatConfig;
use crate::config::Build;
use crate::delivery::Cause;
use crate::delivery::ErrorKind;
use crate::event::Event;
use crate::event::Failed;
use crate::policy::fit;

nats_config! {
    /// Publishes each event to a subject captured by a stream and waits for the stream's publish
    /// acknowledgement before the input is acknowledged.
    pub struct JetStreamOutputConfig {
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
    }
}

fn default_true() -> bool {
    true
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
    _connection: Client,
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
                let mut headers = match headers(event) {
                    Ok(h) => h,
                    Err(e) => {
                        let reason = e.to_string();
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

impl OutputSpec for JetStreamOutputConfig {
    const KIND: &'static str = "jetstream";
    const REMOTE: bool = true;
    type Built = JetStreamOutput;

    fn build(&self, b: Build<'_, '_>) -> Option<JetStreamOutput> {
        let Build { path, v, .. } = b;
        let connector = self.connection.build(path, v);
        check_subject(&self.subject, false, &format!("{path}.subject"), v);
        Some(JetStreamOutput {
            config: self.clone(),
            connector: connector?,
        })
    }

    fn format(&self) -> Option<std::borrow::Cow<'_, FormatConfig>> {
        self.format.as_ref().map(std::borrow::Cow::Borrowed)
    }

    fn destination(&self) -> Option<&str> {
        Some(&self.subject)
    }
}

impl BuiltOutput for JetStreamOutput {
    /// Publishes batches until the channel closes. All events of a batch are published, then each
    /// is confirmed by the stream's acknowledgement. Publishes that failed for a passing reason (no
    /// acknowledgement in time, connection lost) are retried; one the stream refuses follows the
    /// error policy.
    async fn run(self, rx: Batches, ctx: SinkContext) -> Result<(), SinkError> {
        let output = &self;
        let connection = output
            .connector
            .connect(ctx.telemetry.pipeline(), ctx.link.clone())
            .await
            .map_err(|e| SinkError::Nats {
                output: "jetstream",
                source: Box::new(e.into()),
            })?;
        let publisher = Publisher {
            js: async_nats::jetstream::new(connection.clone()),
            config: &output.config,
            _connection: connection,
        };
        deliver::run(publisher, rx, ctx).await
    }
}
