//! The `nats` output: publish to core NATS subjects.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::Subject;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::deliver::{self, Attempt, Protocol};
use super::retry::Held;
use crate::delivery::Cause;
use crate::event::Failed;
use crate::policy::fit;
use async_nats::client::PublishErrorKind;

use super::{SinkContext, SinkError};
use crate::client::nats::{Connection, Connector, Endpoint, NatsAuth, check_subject};
use crate::client::tls::TlsConfig;
use crate::config::Validator;
use crate::event::Event;

/// Publishes each event to a subject (a `route` step's `destination` overrides it), with its
/// headers. Core NATS confirms nothing beyond the server having received a message: whether a
/// subscriber got it is not known.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsOutputConfig {
    /// Server URLs, `nats://host:port[,...]`.
    pub url: String,
    /// Subject for events with no `destination` of their own.
    pub subject: String,
    /// How results are written: `json` (the default), `avro: {...}` or `protobuf: {...}`, with
    /// the schema from a file or the Schema Registry (see "Avro and Protobuf").
    #[serde(default)]
    pub format: Option<crate::codec::schema::FormatConfig>,
    /// Authentication.
    #[serde(default)]
    pub auth: NatsAuth,
    /// TLS: `tls: {}` for the system's certificate authorities, or `ca_file`, `cert_file` and
    /// `key_file` (mutual TLS), `server_name`, `insecure_skip_verify`.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

impl NatsOutputConfig {
    /// Where and how it connects.
    pub fn endpoint(&self) -> Endpoint<'_> {
        Endpoint {
            url: &self.url,
            auth: &self.auth,
            tls: self.tls.as_ref(),
        }
    }

    /// Builds the output without connecting; problems are reported under `path`.
    pub fn build(&self, path: &str, v: &mut Validator<'_>) -> Option<NatsOutput> {
        let connector = self.endpoint().build(path, v);
        check_subject(&self.subject, false, &format!("{path}.subject"), v);
        Some(NatsOutput {
            subject: self.subject.clone(),
            connector: connector?,
        })
    }
}

/// A `nats` output, built.
#[derive(Debug, Clone)]
pub struct NatsOutput {
    subject: String,
    connector: Connector,
}

/// NATS headers from event headers (values as text); an error names a header NATS cannot carry
/// (a name with spaces, `:` or control characters, a value with a line break).
pub(crate) fn headers(event: &Event) -> Result<async_nats::HeaderMap, String> {
    let mut map = async_nats::HeaderMap::new();
    for (name, value) in &event.headers {
        let header: async_nats::HeaderName = name
            .parse()
            .map_err(|_| format!("header name {name:?} is not valid in NATS"))?;
        let text = String::from_utf8_lossy(value);
        let value: async_nats::HeaderValue = text
            .parse()
            .map_err(|_| format!("header {name} has a value NATS cannot carry: {text:?}"))?;
        map.append(header, value);
    }
    Ok(map)
}

/// How long the server may take to echo a batch's confirmation before the batch is published
/// again.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes batches until the channel closes. A batch is confirmed once the server has
/// processed it: after the batch, a message to this output's own inbox must come back on the
/// same connection (the server handles a connection's messages in order). When it does not
/// come back in time, or the connection was re-established meanwhile, the whole batch is
/// published again (at least once), with backoff.
pub async fn run(
    output: &NatsOutput,
    rx: mpsc::Receiver<Vec<Event>>,
    ctx: SinkContext,
) -> Result<(), SinkError> {
    let client = output
        .connector
        .connect(ctx.telemetry.pipeline(), ctx.link.clone())
        .await
        .map_err(write_error)?;
    let publisher = Publisher {
        inbox: Subject::from(client.new_inbox()),
        subject: Subject::from(output.subject.as_str()),
        echoes: None,
        sent: 0,
        client,
    };
    deliver::run(publisher, rx, ctx).await
}

fn write_error(message: impl std::fmt::Display) -> SinkError {
    SinkError::Write {
        output: "nats",
        message: message.to_string(),
    }
}

/// The connection, and the round trip that confirms a batch.
struct Publisher {
    client: Connection,
    inbox: Subject,
    /// The output's subject, made once: cloning it shares it.
    subject: Subject,
    echoes: Option<async_nats::Subscriber>,
    sent: u64,
}

impl Protocol for Publisher {
    async fn attempt(
        &mut self,
        mut batch: Vec<Held>,
        attempt: &mut Attempt,
        ctx: &SinkContext,
    ) -> Result<(), SinkError> {
        // A dead letter is cut to what the server takes (0 until connected: nothing to go by).
        // Asked once per attempt: the server's information is cloned for every question.
        let max_payload = match ctx.dead_letter {
            true => self.client.server_info().max_payload,
            false => 0,
        };
        if max_payload > 0 {
            for held in &mut batch {
                fit(&mut held.event, max_payload);
            }
        }
        self.publish(batch, attempt).await
    }
}

impl Publisher {
    /// Publishes the batch, then waits for the server to echo the confirmation. Events NATS
    /// refuses (a subject or header it cannot carry, a payload over the server's maximum) are
    /// refused at once; the rest are delivered once confirmed, or retried.
    async fn publish(&mut self, batch: Vec<Held>, attempt: &mut Attempt) -> Result<(), SinkError> {
        let client = &self.client;
        let connects = client.statistics().connects.load(Ordering::Relaxed);
        let echoes = match &mut self.echoes {
            Some(echoes) => echoes,
            None => match client.subscribe(self.inbox.clone()).await {
                Ok(echoes) => self.echoes.insert(echoes),
                Err(e) => {
                    let reason = e.to_string();
                    batch
                        .into_iter()
                        .for_each(|h| attempt.retry(h, reason.clone()));
                    return Ok(());
                }
            },
        };
        let mut kept = Vec::with_capacity(batch.len());
        for held in batch {
            let event = &held.event;
            let subject = match &event.destination {
                Some(d) => Subject::from(&**d),
                None => self.subject.clone(),
            };
            let published = match headers(event) {
                Ok(h) if h.is_empty() => client.publish(subject, event.payload.clone()).await,
                Ok(h) => {
                    client
                        .publish_with_headers(subject, h, event.payload.clone())
                        .await
                }
                Err(reason) => {
                    attempt.refused(refusal(held, reason));
                    continue;
                }
            };
            match published {
                Ok(()) => kept.push(held),
                // The client is closed: nothing more can be published.
                Err(e) if matches!(e.kind(), PublishErrorKind::Send) => {
                    return Err(write_error(e));
                }
                Err(e) => attempt.refused(refusal(held, e.to_string())),
            }
        }
        if kept.is_empty() {
            return Ok(());
        }
        self.sent += 1;
        let token = self.sent.to_string();
        client
            .publish(self.inbox.clone(), token.clone().into())
            .await
            .map_err(write_error)?;
        let deadline = tokio::time::sleep(CONFIRM_TIMEOUT);
        tokio::pin!(deadline);
        let failed = loop {
            tokio::select! {
                echo = echoes.next() => match echo {
                    // Echoes of earlier, timed-out attempts are skipped.
                    Some(m) if m.payload == token.as_bytes() => break None,
                    Some(_) => {}
                    None => {
                        self.echoes = None;
                        break Some("the confirmation subscription closed".to_string());
                    }
                },
                _ = &mut deadline => {
                    break Some(format!(
                        "the server did not confirm the batch within {} s",
                        CONFIRM_TIMEOUT.as_secs()
                    ));
                }
            }
        };
        let failed = failed.or_else(|| {
            (client.statistics().connects.load(Ordering::Relaxed) != connects)
                .then(|| "the connection was re-established during the batch".to_string())
        });
        match failed {
            Some(reason) => kept
                .into_iter()
                .for_each(|h| attempt.retry(h, reason.clone())),
            None => attempt.delivered_all(kept),
        }
        Ok(())
    }
}

/// NATS refuses only what is wrong with the message itself (its size, subject or headers).
fn refusal(held: Held, reason: String) -> Failed {
    Failed::at_output(held.event, reason, Cause::Event)
}
