//! The `nats` input: core NATS subjects, optionally in a queue group. At-most-once.

use std::sync::Arc;

use futures_util::StreamExt;
use serde::Deserialize;

use super::intake::Gathered;
use super::{SourceContext, SourceError};
use crate::client::nats::{Connector, Endpoint, NatsAuth, check_subject};
use crate::client::tls::TlsConfig;
use crate::codec::Codec;
use crate::config::Validator;
use crate::delivery::{Ack, Outcome};
use crate::event::{Event, Position};

/// Subscribes to subjects (wildcards allowed). Core NATS is at-most-once: a message published
/// while no replica is subscribed, or dropped because a replica fell behind (a slow consumer),
/// is gone. Use `jetstream` where every event matters.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
    /// TLS: `tls: {}` for the system's certificate authorities, or `ca_file`, `cert_file` and
    /// `key_file` (mutual TLS), `server_name`, `insecure_skip_verify`.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

impl NatsInputConfig {
    /// Where and how it connects.
    pub fn endpoint(&self) -> Endpoint<'_> {
        Endpoint {
            url: &self.url,
            auth: &self.auth,
            tls: self.tls.as_ref(),
        }
    }

    /// Builds the input without connecting; problems are reported under `path`.
    pub fn build(&self, path: &str, v: &mut Validator<'_>) -> Option<NatsInput> {
        let connector = self.endpoint().build(path, v);
        if self.subjects.is_empty() {
            v.error_at(
                &format!("{path}.subjects"),
                "subjects must list at least one subject",
            );
        }
        for (i, s) in self.subjects.iter().enumerate() {
            check_subject(s, true, &format!("{path}.subjects.{i}"), v);
        }
        Some(NatsInput {
            config: self.clone(),
            connector: connector?,
        })
    }
}

/// A `nats` input, built.
#[derive(Debug, Clone)]
pub struct NatsInput {
    config: NatsInputConfig,
    connector: Connector,
}

fn read_error(message: impl std::fmt::Display) -> SourceError {
    SourceError::Read {
        input: "nats",
        message: message.to_string(),
    }
}

/// Distinct subjects remembered, so that events from one subject share its name; past this the
/// memo starts over, so that subjects with ids in them do not grow memory.
const SUBJECT_MEMO: usize = 4096;

/// Shared names of the subjects messages arrive on.
#[derive(Default)]
pub(crate) struct SubjectMemo {
    all: std::collections::HashMap<String, Arc<str>>,
    /// The last one asked for: runs of messages on one subject skip the lookup.
    last: Option<Arc<str>>,
}

impl SubjectMemo {
    /// The shared name of `subject`.
    pub(crate) fn get(&mut self, subject: &str) -> Arc<str> {
        if let Some(last) = &self.last
            && **last == *subject
        {
            return last.clone();
        }
        let s = match self.all.get(subject) {
            Some(s) => s.clone(),
            None => {
                if self.all.len() >= SUBJECT_MEMO {
                    self.all.clear();
                }
                let s: Arc<str> = Arc::from(subject);
                self.all.insert(subject.to_string(), s.clone());
                s
            }
        };
        self.last = Some(s.clone());
        s
    }
}

/// The messages of several subscriptions as one stream, taken in turn. Unlike
/// `futures_util::stream::select_all`, it moves and allocates nothing per message: it polls the
/// subscriptions where they are.
struct Merged {
    subscriptions: Vec<async_nats::Subscriber>,
    /// Where the next poll starts, so that no subscription starves the others.
    next: usize,
}

impl Merged {
    fn new(subscriptions: Vec<async_nats::Subscriber>) -> Merged {
        Merged {
            subscriptions,
            next: 0,
        }
    }
}

impl futures_util::Stream for Merged {
    type Item = async_nats::Message;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        let n = this.subscriptions.len();
        let mut ended = 0;
        for i in 0..n {
            let at = (this.next + i) % n;
            match this.subscriptions[at].poll_next_unpin(cx) {
                Poll::Ready(Some(m)) => {
                    this.next = (at + 1) % n;
                    return Poll::Ready(Some(m));
                }
                Poll::Ready(None) => ended += 1,
                Poll::Pending => {}
            }
        }
        if ended == n {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

/// The positions of core NATS messages: one per subject, shared by the messages of a run on it.
#[derive(Default)]
struct Positions {
    subjects: SubjectMemo,
    last: Option<Arc<Position>>,
}

impl Positions {
    fn of(&mut self, subject: &str) -> Arc<Position> {
        if let Some(last) = &self.last
            && matches!(&**last, Position::Nats { subject: s, .. } if **s == *subject)
        {
            return last.clone();
        }
        let position = Arc::new(Position::Nats {
            subject: self.subjects.get(subject),
            stream: None,
        });
        self.last = Some(position.clone());
        position
    }
}

/// Builds an event from a NATS message.
pub(crate) fn to_event(msg: async_nats::Message, position: Position, ack: Ack) -> Event {
    to_event_at(msg, Arc::new(position), ack)
}

/// [`to_event`] with a position that may be shared.
fn to_event_at(msg: async_nats::Message, position: Arc<Position>, ack: Ack) -> Event {
    let mut event = Event::at(msg.payload, position, ack);
    if let Some(headers) = &msg.headers {
        for (name, values) in headers.iter() {
            for value in values {
                event.headers.push((
                    name.to_string(),
                    bytes::Bytes::copy_from_slice(value.as_str().as_bytes()),
                ));
            }
        }
    }
    event
}

/// Subscribes and reads until shutdown. Messages already received are delivered; messages in
/// flight on the server at shutdown are not (core NATS keeps nothing).
pub async fn run(input: &NatsInput, ctx: SourceContext) -> Result<(), SourceError> {
    let config = &input.config;
    let subscribe = async {
        let client = input
            .connector
            .connect(ctx.telemetry.pipeline(), ctx.link.clone())
            .await
            .map_err(read_error)?;
        let mut subscriptions = Vec::new();
        for subject in &config.subjects {
            let sub = match &config.queue_group {
                Some(group) => client.queue_subscribe(subject.clone(), group.clone()).await,
                None => client.subscribe(subject.clone()).await,
            }
            .map_err(read_error)?;
            subscriptions.push(sub);
        }
        // Make sure the server has the subscriptions before saying so. This waits for the first
        // connection, however long the server takes to be reachable.
        client.flush().await.map_err(read_error)?;
        Ok::<_, SourceError>((client, subscriptions))
    };
    let (client, subscriptions) = tokio::select! {
        biased;
        // Nothing was read: nothing to finish.
        _ = ctx.shutdown.cancelled() => {
            tracing::info!(pipeline = %ctx.telemetry.pipeline(), "nats input stopped before it subscribed");
            return Ok(());
        }
        subscribed = subscribe => subscribed?,
    };
    tracing::info!(pipeline = %ctx.telemetry.pipeline(), subjects = ?config.subjects, queue_group = ?config.queue_group, "nats subscribed");
    let mut messages = Merged::new(subscriptions);
    let mut positions = Positions::default();
    loop {
        // The messages of a batch share one acknowledgement (nothing is acknowledged to core
        // NATS): it counts them in flight and times them.
        let mut shared: Option<Ack> = None;
        let gathered = ctx
            .intake
            .gather(&mut messages, |m| {
                let ack = match &shared {
                    Some(first) => first.join(),
                    None => shared.insert(ctx.counted.ack(0, 0)).fork(),
                };
                let position = positions.of(&m.subject);
                to_event_at(m, position, ack)
            })
            .await;
        if let Some(first) = shared {
            first.complete(Outcome::Delivered);
        }
        let Gathered::Batch(batch) = gathered else {
            break;
        };
        if !ctx.intake.send(batch).await {
            break;
        }
    }
    // Stop the server sending more; what it already sent is dropped with the subscriptions.
    drop(messages);
    let _ = client.flush().await;
    Ok(())
}
