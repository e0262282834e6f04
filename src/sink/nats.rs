//! The `nats` output: publish to core NATS subjects.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::Subject;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::retry::{Held, Retry};
use crate::delivery::Cause;
use crate::event::Failed;
use crate::policy::fit;
use async_nats::client::PublishErrorKind;

use super::{SinkContext, SinkError};
use crate::client::nats::{Endpoint, NatsAuth, check_subject, connect};
use crate::client::tls::TlsConfig;
use crate::config::Validator;
use crate::event::Event;

/// Publishes each event to a subject (a `route` step's `destination` overrides it), with its
/// headers. Core NATS confirms nothing beyond the server having received a message: whether a
/// subscriber got it is not known.
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

    /// Checks values serde cannot.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        self.endpoint().validate(path, v);
        check_subject(&self.subject, false, &format!("{path}.subject"), v);
    }
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
    config: &NatsOutputConfig,
    mut rx: mpsc::Receiver<Vec<Event>>,
    ctx: SinkContext,
) -> Result<(), SinkError> {
    let write_error = |m: String| SinkError::Write {
        output: "nats",
        message: m,
    };
    let client = connect(
        config.endpoint(),
        ctx.telemetry.pipeline(),
        ctx.link.clone(),
    )
    .await
    .map_err(write_error)?;
    let mut confirm = Confirm {
        inbox: Subject::from(client.new_inbox()),
        subject: Subject::from(config.subject.as_str()),
        echoes: None,
        sent: 0,
    };
    let mut retry = Retry::new(&ctx);
    while let Some(batch) = super::next_write(&mut rx).await {
        let mut todo: Vec<Held> = batch.into_iter().map(Held::new).collect();
        // A dead letter is cut to what the server takes (0 until connected: nothing to go by).
        // Asked only here: the server's information is cloned for every question.
        let max_payload = match ctx.dead_letter {
            true => client.server_info().max_payload,
            false => 0,
        };
        if max_payload > 0 {
            for held in &mut todo {
                fit(&mut held.event, max_payload);
            }
        }
        while !todo.is_empty() {
            match publish(&client, &mut confirm, &mut todo).await {
                Ok(refused) => {
                    ctx.failures.handle(refused).await?;
                    if !todo.is_empty() {
                        retry.succeeded();
                        ctx.confirm(todo.into_iter().map(|h| h.event));
                    }
                    break;
                }
                Err(Attempt::Failed(reason)) => {
                    let failed = todo.into_iter().map(|h| (h, reason.clone())).collect();
                    todo = retry.after_attempt(failed, &ctx).await?;
                }
                Err(Attempt::Closed(reason)) => return Err(write_error(reason)),
            }
        }
    }
    Ok(())
}

/// The round trip that confirms a batch.
struct Confirm {
    inbox: Subject,
    /// The output's subject, made once: cloning it shares it.
    subject: Subject,
    echoes: Option<async_nats::Subscriber>,
    sent: u64,
}

/// One attempt at a batch: publish it, then wait for the server to echo the confirmation.
/// Events NATS refuses (a subject or header it cannot carry, a payload over the server's
/// maximum) are taken out of the batch and returned with the reason; the rest is confirmed.
async fn publish(
    client: &async_nats::Client,
    confirm: &mut Confirm,
    batch: &mut Vec<Held>,
) -> Result<Vec<Failed>, Attempt> {
    let connects = client.statistics().connects.load(Ordering::Relaxed);
    let echoes = match &mut confirm.echoes {
        Some(echoes) => echoes,
        None => confirm.echoes.insert(
            client
                .subscribe(confirm.inbox.clone())
                .await
                .map_err(|e| Attempt::Failed(e.to_string()))?,
        ),
    };
    let mut refused = Vec::new();
    let mut kept = Vec::with_capacity(batch.len());
    let mut events = std::mem::take(batch).into_iter();
    while let Some(held) = events.next() {
        let event = &held.event;
        let subject = match &event.destination {
            Some(d) => Subject::from(&**d),
            None => confirm.subject.clone(),
        };
        let published = match headers(event) {
            Ok(h) if h.is_empty() => client.publish(subject, event.payload.clone()).await,
            Ok(h) => {
                client
                    .publish_with_headers(subject, h, event.payload.clone())
                    .await
            }
            Err(reason) => {
                refused.push(refusal(held, reason));
                continue;
            }
        };
        match published {
            Ok(()) => kept.push(held),
            Err(e) if matches!(e.kind(), PublishErrorKind::Send) => {
                kept.push(held);
                kept.extend(events);
                *batch = kept;
                return Err(Attempt::Closed(e.to_string()));
            }
            Err(e) => refused.push(refusal(held, e.to_string())),
        }
    }
    *batch = kept;
    if batch.is_empty() {
        return Ok(refused);
    }
    confirm.sent += 1;
    let token = confirm.sent.to_string();
    client
        .publish(confirm.inbox.clone(), token.clone().into())
        .await
        .map_err(|e| Attempt::Closed(e.to_string()))?;
    let deadline = tokio::time::sleep(CONFIRM_TIMEOUT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            echo = echoes.next() => match echo {
                // Echoes of earlier, timed-out attempts are skipped.
                Some(m) if m.payload == token.as_bytes() => break,
                Some(_) => {}
                None => {
                    confirm.echoes = None;
                    return Err(Attempt::Failed("the confirmation subscription closed".into()));
                }
            },
            _ = &mut deadline => {
                return Err(Attempt::Failed(format!(
                    "the server did not confirm the batch within {} s",
                    CONFIRM_TIMEOUT.as_secs()
                )));
            }
        }
    }
    if client.statistics().connects.load(Ordering::Relaxed) != connects {
        return Err(Attempt::Failed(
            "the connection was re-established during the batch".into(),
        ));
    }
    Ok(refused)
}

/// Why an attempt at a batch failed.
enum Attempt {
    /// It may pass: publish the batch again after the backoff.
    Failed(String),
    /// The client is closed: nothing more can be published.
    Closed(String),
}

/// NATS refuses only what is wrong with the message itself (its size, subject or headers).
fn refusal(held: Held, reason: String) -> Failed {
    Failed::at_output(held.event, reason, Cause::Event)
}
