//! The `nats` output: publish to core NATS subjects.

use super::Batches;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::Subject;
use futures_util::StreamExt;

use super::deliver::{self, Attempt, Protocol};
use super::retry::Held;
use crate::delivery::{Cause, ErrorKind};
use crate::event::Failed;
use crate::policy::fit;

use super::{BuiltOutput, OutputSpec};
use super::{SinkContext, SinkError};
use crate::client::nats::{Client, Connector, NatsError, check_subject, headers, nats_config};
use crate::codec::schema::FormatConfig;
use crate::config::Build;

nats_config! {
    /// Publishes each event to a subject (a `route` step's `destination` overrides it), with its
    /// headers. Core NATS confirms nothing beyond the server having received a message: whether a
    /// subscriber got it is not known.
    pub struct NatsOutputConfig {
        /// Subject for events with no `destination` of their own.
        pub subject: String,
        /// How results are written: `json` (the default), `avro: {...}` or `protobuf: {...}`, with
        /// the schema from a file or the Schema Registry (see "Avro and Protobuf").
        #[serde(default)]
        pub format: Option<crate::codec::schema::FormatConfig>,
    }
}

/// A `nats` output, built.
#[derive(Debug, Clone)]
pub struct NatsOutput {
    subject: String,
    connector: Connector,
}

/// How long the server may take to echo a batch's confirmation before the batch is published
/// again.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

fn write_error(error: impl Into<NatsError>) -> SinkError {
    SinkError::Nats {
        output: "nats",
        source: Box::new(error.into()),
    }
}

/// The connection, and the round trip that confirms a batch.
struct Publisher {
    client: Client,
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
        let connects = self.client.statistics().connects.load(Ordering::Relaxed);
        if self.echoes.is_none() {
            match self.client.subscribe(self.inbox.clone()).await {
                Ok(echoes) => self.echoes = Some(echoes),
                Err(e) => {
                    let reason = e.to_string();
                    batch
                        .into_iter()
                        .for_each(|h| attempt.retry(h, reason.clone()));
                    return Ok(());
                }
            }
        }
        let kept = self.send(batch, attempt).await?;
        if kept.is_empty() {
            return Ok(());
        }
        let failed = self.confirm().await?;
        let failed = failed.or_else(|| {
            (self.client.statistics().connects.load(Ordering::Relaxed) != connects)
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

    /// Publishes each event of the batch; returns those the server took, to be confirmed.
    async fn send(&self, batch: Vec<Held>, attempt: &mut Attempt) -> Result<Vec<Held>, SinkError> {
        let client = &self.client;
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
                Err(e) => {
                    attempt.refused(refusal(held, e.to_string()));
                    continue;
                }
            };
            match published.map_err(NatsError::from) {
                Ok(()) => kept.push(held),
                Err(e) => match e.kind() {
                    ErrorKind::Refused(cause) => {
                        attempt.refused(Failed::at_output(held.event, e.to_string(), cause));
                    }
                    // The client is closed: nothing more can be published.
                    ErrorKind::Retriable | ErrorKind::Fatal => return Err(write_error(e)),
                },
            }
        }
        Ok(kept)
    }

    /// Publishes the next confirmation to the output's own inbox and waits for it to come
    /// back: None once it did, else why it did not.
    async fn confirm(&mut self) -> Result<Option<String>, SinkError> {
        self.sent += 1;
        let token = self.sent.to_string();
        self.client
            .publish(self.inbox.clone(), token.clone().into())
            .await
            .map_err(write_error)?;
        let closed = || Some("the confirmation subscription closed".to_string());
        // Subscribed before the batch was published.
        let Some(echoes) = self.echoes.as_mut() else {
            return Ok(closed());
        };
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
                        break closed();
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
        Ok(failed)
    }
}

/// NATS refuses only what is wrong with the message itself (its size, subject or headers).
fn refusal(held: Held, reason: String) -> Failed {
    Failed::at_output(held.event, reason, Cause::Event)
}

impl OutputSpec for NatsOutputConfig {
    const KIND: &'static str = "nats";
    const REMOTE: bool = true;
    type Built = NatsOutput;

    fn build(&self, b: Build<'_, '_>) -> Option<NatsOutput> {
        let Build { path, v, .. } = b;
        let connector = self.connection.build(path, v);
        check_subject(&self.subject, false, &format!("{path}.subject"), v);
        Some(NatsOutput {
            subject: self.subject.clone(),
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

impl BuiltOutput for NatsOutput {
    /// Publishes batches until the channel closes. A batch is confirmed once the server has
    /// processed it: after the batch, a message to this output's own inbox must come back on the
    /// same connection (the server handles a connection's messages in order). When it does not
    /// come back in time, or the connection was re-established meanwhile, the whole batch is
    /// published again (at least once), with backoff.
    async fn run(self, rx: Batches, ctx: SinkContext) -> Result<(), SinkError> {
        let output = &self;
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
}
