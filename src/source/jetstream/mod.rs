//! The `jetstream` input: a durable pull consumer shared by every replica.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{self, pull};
use async_nats::jetstream::context::{ConsumerInfoErrorKind, GetStreamErrorKind};
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::{Client, StatusCode, Subject};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::nats::{SubjectMemo, to_event};
use super::{SourceContext, SourceError};
use crate::client::nats::{Endpoint, NatsAuth, check_subject, connect_notify, unavailable};
use crate::client::tls::TlsConfig;
use crate::codec::Codec;
use crate::config::{HumanDuration, Validator};
use crate::delivery::{AckMsg, AckSender, Outcome};
use crate::event::{Event, Position};

/// Pulls from a durable consumer of a stream; replicas using the same consumer share the work.
/// A message is acknowledged only after everything derived from it is delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JetStreamInputConfig {
    /// Server URLs, `nats://host:port[,...]`.
    pub url: String,
    /// Stream to read.
    pub stream: String,
    /// Durable consumer name.
    pub consumer: String,
    /// Use the existing consumer as it is, instead of creating or updating it from the settings
    /// below.
    #[serde(default)]
    pub bind: bool,
    /// Subjects of the stream this consumer receives; empty means all.
    #[serde(default)]
    pub filter_subjects: Vec<String>,
    /// Where a new consumer starts: `all`, `new`, `last` or `last_per_subject`.
    #[serde(default)]
    pub deliver_policy: DeliverPolicy,
    /// How long the server waits for an acknowledgement before redelivering. Slow events get
    /// in-progress acks so they are not redelivered while still being worked on.
    #[serde(default = "default_ack_wait")]
    pub ack_wait: HumanDuration,
    /// Deliveries of one message before it is dead-lettered with its last failure reason.
    #[serde(default = "default_max_deliver")]
    pub max_deliver: i64,
    /// Most unacknowledged messages the consumer hands out (across replicas).
    #[serde(default = "default_max_ack_pending")]
    pub max_ack_pending: i64,
    /// Delays before redelivery of a message whose output failed, by attempt; the last repeats.
    #[serde(default = "default_backoff")]
    pub backoff: Vec<HumanDuration>,
    /// Messages asked for per fetch.
    #[serde(default = "default_fetch_batch")]
    pub fetch_batch: usize,
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

/// Where a new consumer starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliverPolicy {
    /// Every message in the stream.
    #[default]
    All,
    /// Only messages stored after the consumer is created.
    New,
    /// The last message of the stream, then new ones.
    Last,
    /// The last message of each subject, then new ones.
    LastPerSubject,
}

// The JetStream server default.
fn default_ack_wait() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

// Five attempts ride out a short outage of an output without keeping a poison message forever.
fn default_max_deliver() -> i64 {
    5
}

// The JetStream server default.
fn default_max_ack_pending() -> i64 {
    1000
}

fn default_backoff() -> Vec<HumanDuration> {
    [1, 5, 30]
        .map(|s| HumanDuration(std::time::Duration::from_secs(s)))
        .to_vec()
}

// Large enough to amortise a round trip, small enough to spread a backlog across replicas.
fn default_fetch_batch() -> usize {
    256
}

impl JetStreamInputConfig {
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
        for (field, value) in [("stream", &self.stream), ("consumer", &self.consumer)] {
            if value.is_empty() || value.contains(|c: char| c.is_whitespace() || ".*>".contains(c))
            {
                v.error_at(
                    &format!("{path}.{field}"),
                    format!("{field} must be a name without spaces, `.`, `*` or `>`"),
                );
            }
        }
        for (i, s) in self.filter_subjects.iter().enumerate() {
            check_subject(s, true, &format!("{path}.filter_subjects.{i}"), v);
        }
        if self.max_deliver == 0 || self.max_deliver < -1 {
            v.error_at(
                &format!("{path}.max_deliver"),
                "max_deliver must be at least 1 (or -1 for unlimited)",
            );
        }
        if self.max_ack_pending < 1 {
            v.error_at(
                &format!("{path}.max_ack_pending"),
                "max_ack_pending must be at least 1",
            );
        }
        if self.fetch_batch == 0 {
            v.error_at(
                &format!("{path}.fetch_batch"),
                "fetch_batch must be at least 1",
            );
        }
        if self.ack_wait.0 < std::time::Duration::from_secs(1) {
            v.error_at(&format!("{path}.ack_wait"), "ack_wait must be at least 1s");
        }
    }
}

/// How long the server keeps a pull request waiting for messages. Short, so that a request lost
/// with a server restart is replaced soon.
const PULL_EXPIRES: Duration = Duration::from_secs(2);
/// How long after `PULL_EXPIRES` a request with no answer at all counts as lost.
const PULL_GRACE: Duration = Duration::from_secs(1);
/// Pause before pulling again after JetStream did not answer.
const UNAVAILABLE_PAUSE: Duration = Duration::from_millis(500);
/// Pull requests lost or unanswered in a row before the consumer is looked up (and, unless
/// bound, created) again: the server may have lost it.
const REBIND_AFTER: u32 = 3;
fn read_error(message: impl std::fmt::Display) -> SourceError {
    SourceError::Read {
        input: "jetstream",
        message: message.to_string(),
    }
}

/// Why setting up the consumer failed.
enum SetupError {
    /// Retrying may help (server unreachable or restarting).
    Transient(String),
    /// The configuration or the server's state is wrong; retrying will not help.
    Fatal(String),
}

impl JetStreamInputConfig {
    fn pull_config(&self) -> pull::Config {
        let (filter_subject, filter_subjects) = match self.filter_subjects.as_slice() {
            [one] => (one.clone(), Vec::new()),
            many => (String::new(), many.to_vec()),
        };
        pull::Config {
            durable_name: Some(self.consumer.clone()),
            filter_subject,
            filter_subjects,
            deliver_policy: match self.deliver_policy {
                DeliverPolicy::All => consumer::DeliverPolicy::All,
                DeliverPolicy::New => consumer::DeliverPolicy::New,
                DeliverPolicy::Last => consumer::DeliverPolicy::Last,
                DeliverPolicy::LastPerSubject => consumer::DeliverPolicy::LastPerSubject,
            },
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait.0,
            max_deliver: self.max_deliver,
            max_ack_pending: self.max_ack_pending,
            ..Default::default()
        }
    }

    /// Makes sure the durable consumer exists: looked up when bound, else created or updated to
    /// match this configuration.
    async fn set_up(&self, js: &async_nats::jetstream::Context) -> Result<(), SetupError> {
        let stream = js
            .get_stream(&self.stream)
            .await
            .map_err(|e| match e.kind() {
                GetStreamErrorKind::JetStream(j) if !unavailable(j.error_code()) => {
                    SetupError::Fatal(format!("stream {}: {e}", self.stream))
                }
                _ => SetupError::Transient(format!("stream {}: {e}", self.stream)),
            })?;
        let what = || format!("consumer {} on stream {}", self.consumer, self.stream);
        if self.bind {
            stream
                .consumer_info(&self.consumer)
                .await
                .map_err(|e| match e.kind() {
                    ConsumerInfoErrorKind::NotFound | ConsumerInfoErrorKind::InvalidName => {
                        SetupError::Fatal(format!("{}: {e} (bind: true needs it to exist)", what()))
                    }
                    ConsumerInfoErrorKind::JetStream(j) if !unavailable(j.error_code()) => {
                        SetupError::Fatal(format!("{}: {e}", what()))
                    }
                    _ => SetupError::Transient(format!("{}: {e}", what())),
                })?;
        } else {
            stream
                .create_consumer(self.pull_config())
                .await
                .map_err(|e| match e.kind() {
                    ConsumerErrorKind::TimedOut | ConsumerErrorKind::Request => {
                        SetupError::Transient(format!("{}: {e}", what()))
                    }
                    ConsumerErrorKind::JetStream(j) if unavailable(j.error_code()) => {
                        SetupError::Transient(format!("{}: {e}", what()))
                    }
                    _ => SetupError::Fatal(format!("{}: {e}", what())),
                })?;
        }
        Ok(())
    }

    /// Sets up the consumer, retrying while the server is unreachable. `Ok(false)` when shutdown
    /// came first.
    async fn set_up_until_ready(
        &self,
        js: &async_nats::jetstream::Context,
        ctx: &SourceContext,
    ) -> Result<bool, SourceError> {
        let mut pause = Duration::from_millis(250);
        loop {
            // A request to a server that does not answer waits for its timeout: shutdown may
            // not.
            let set_up = tokio::select! {
                biased;
                _ = ctx.shutdown.cancelled() => return Ok(false),
                set_up = self.set_up(js) => set_up,
            };
            match set_up {
                Ok(()) => return Ok(true),
                Err(SetupError::Fatal(m)) => return Err(read_error(m)),
                Err(SetupError::Transient(m)) => {
                    tracing::warn!(pipeline = %ctx.telemetry.pipeline(), error = %m, "jetstream consumer not ready; retrying");
                }
            }
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(false),
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }
}

/// What a JetStream message's reply subject says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Delivery {
    /// Delivery attempt, from 1.
    delivered: i64,
    /// Stream sequence.
    stream_seq: u64,
    /// When the stream stored it, nanoseconds since the Unix epoch.
    stored_ns: i64,
    /// Messages left for the consumer.
    pending: u64,
}

/// Parses `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, or the form with
/// a domain and account hash before the stream name (and maybe a token after).
fn parse_reply(reply: &str) -> Option<Delivery> {
    let rest = reply.strip_prefix("$JS.ACK.")?;
    let tokens: Vec<&str> = rest.split('.').collect();
    let numbers = match tokens.len() {
        7 => &tokens[2..],
        9.. => &tokens[4..9],
        _ => return None,
    };
    Some(Delivery {
        delivered: numbers[0].parse().ok()?,
        stream_seq: numbers[1].parse().ok()?,
        stored_ns: numbers[3].parse().ok()?,
        pending: numbers[4].parse().ok()?,
    })
}

/// A message handed on and not yet settled with the server.
struct Unsettled {
    reply: Subject,
    delivered: i64,
    touched: Instant,
}

/// An open pull request.
struct Pull {
    id: u64,
    remaining: usize,
    deadline: Instant,
}

/// The consuming side of one durable consumer on one connection.
struct Reader<'a> {
    config: &'a JetStreamInputConfig,
    ctx: &'a SourceContext,
    client: Client,
    js: async_nats::jetstream::Context,
    next_subject: Subject,
    inbox: String,
    pulls: VecDeque<Pull>,
    next_pull: u64,
    unanswered: u32,
    paused_until: Option<Instant>,
    unsettled: HashMap<u64, Unsettled>,
    next_ticket: u64,
    acks: AckSender,
    batch: Vec<Event>,
    /// Set once stopping: how long in-flight events may still take.
    drain_until: Option<Instant>,
    /// The pipeline takes no more events.
    out_closed: bool,
    stream: Arc<str>,
    subjects: SubjectMemo,
    metrics: Metrics,
}

struct Metrics {
    pending: metrics::Gauge,
    redelivered: metrics::Counter,
    acked: metrics::Counter,
    naked: metrics::Counter,
    in_progress: metrics::Counter,
    lost_pulls: metrics::Counter,
}

impl Metrics {
    fn new(pipeline: &str, config: &JetStreamInputConfig) -> Metrics {
        let labels = [
            ("pipeline", pipeline.to_string()),
            ("stream", config.stream.clone()),
            ("consumer", config.consumer.clone()),
        ];
        let acks = |kind: &'static str| {
            let mut l = labels.to_vec();
            l.push(("kind", kind.to_string()));
            metrics::counter!(crate::observe::names::JETSTREAM_ACKS_TOTAL, &l)
        };
        Metrics {
            pending: metrics::gauge!(crate::observe::names::JETSTREAM_PENDING, &labels),
            redelivered: metrics::counter!(
                crate::observe::names::JETSTREAM_REDELIVERED_TOTAL,
                &labels
            ),
            acked: acks("ack"),
            naked: acks("nak"),
            in_progress: acks("in_progress"),
            lost_pulls: metrics::counter!(
                crate::observe::names::JETSTREAM_LOST_PULLS_TOTAL,
                &labels
            ),
        }
    }
}

impl Reader<'_> {
    /// Opens pull requests while there is room downstream (and in the in-flight byte budget): at
    /// most two at a time, the second once the first is half served, so messages keep flowing
    /// without piling up.
    async fn pull(&mut self) {
        let now = Instant::now();
        if self.paused_until.is_some_and(|t| now < t)
            || self.batch.len() >= self.ctx.batch_size
            || self.ctx.telemetry.budget().is_full()
        {
            return;
        }
        let batch = self.config.fetch_batch;
        let outstanding: usize = self.pulls.iter().map(|p| p.remaining).sum();
        if self.pulls.len() >= 2 || outstanding > batch / 2 {
            return;
        }
        let id = self.next_pull;
        self.next_pull += 1;
        let body = format!(
            "{{\"batch\":{batch},\"expires\":{}}}",
            PULL_EXPIRES.as_nanos()
        );
        let reply = format!("{}.{id}", self.inbox);
        match self
            .client
            .publish_with_reply(self.next_subject.clone(), reply, body.into())
            .await
        {
            Ok(()) => self.pulls.push_back(Pull {
                id,
                remaining: batch,
                deadline: now + PULL_EXPIRES + PULL_GRACE,
            }),
            Err(e) => {
                tracing::debug!(error = %e, "jetstream pull request not sent");
                self.paused_until = Some(now + UNAVAILABLE_PAUSE);
            }
        }
    }

    fn close_pull(&mut self, subject: &str) {
        let id = subject
            .strip_prefix(self.inbox.as_str())
            .and_then(|s| s.strip_prefix('.'))
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(id) = id {
            self.pulls.retain(|p| p.id != id);
        }
    }

    /// Forgets pull requests the server never finished: it restarted, or the connection dropped.
    fn expire_pulls(&mut self) {
        let now = Instant::now();
        let before = self.pulls.len();
        self.pulls.retain(|p| p.deadline > now);
        let lost = before - self.pulls.len();
        if lost > 0 {
            self.metrics.lost_pulls.increment(lost as u64);
            self.unanswered += lost as u32;
        }
    }

    /// Handles one message on the inbox: a status about a pull request, or a stream message.
    async fn on_message(&mut self, msg: async_nats::Message) {
        if let Some(status) = msg.status {
            match status {
                StatusCode::IDLE_HEARTBEAT => {}
                // The request expired, or ended for a reason the description gives.
                StatusCode::TIMEOUT | StatusCode::NOT_FOUND => {
                    self.unanswered = 0;
                    self.close_pull(&msg.subject);
                }
                StatusCode::NO_RESPONDERS => {
                    // JetStream is not serving this consumer (yet): the server restarts, or the
                    // consumer is gone.
                    self.unanswered += 1;
                    self.close_pull(&msg.subject);
                    self.paused_until = Some(Instant::now() + UNAVAILABLE_PAUSE);
                }
                _ => {
                    let description = msg.description.as_deref().unwrap_or("");
                    tracing::warn!(pipeline = %self.ctx.telemetry.pipeline(), status = %status, description, "jetstream pull request ended");
                    if description.contains("Consumer Deleted") {
                        self.unanswered = REBIND_AFTER;
                    }
                    self.close_pull(&msg.subject);
                }
            }
            return;
        }
        let Some(reply) = msg.reply.clone() else {
            return;
        };
        let Some(delivery) = parse_reply(&reply) else {
            tracing::warn!(pipeline = %self.ctx.telemetry.pipeline(), reply = %reply, "message on the pull inbox without a JetStream reply subject; ignored");
            return;
        };
        self.unanswered = 0;
        if let Some(front) = self.pulls.front_mut() {
            front.remaining = front.remaining.saturating_sub(1);
            if front.remaining == 0 {
                self.pulls.pop_front();
            }
        }
        self.metrics.pending.set(delivery.pending as f64);
        if delivery.delivered > 1 {
            self.metrics.redelivered.increment(1);
        }
        if self.out_closed {
            // Nothing takes events any more: give it back so another replica takes it.
            self.publish(reply, stop_nak()).await;
            self.metrics.naked.increment(1);
            return;
        }
        if delivery.delivered > 1 {
            self.ctx.telemetry.redelivered();
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let max = self.config.max_deliver;
        let redeliverable = max < 0 || delivery.delivered < max;
        let subject = self.subjects.get(msg.subject.as_str());
        let position = Position::Nats {
            subject,
            stream: Some((self.stream.clone(), delivery.stream_seq)),
        };
        let mut event = to_event(msg, position, self.acks.ack_with(0, ticket, redeliverable));
        event.timestamp = Some(delivery.stored_ns.div_euclid(1_000_000));
        self.unsettled.insert(
            ticket,
            Unsettled {
                reply,
                delivered: delivery.delivered,
                touched: Instant::now(),
            },
        );
        self.batch.push(event);
    }

    async fn publish(&self, subject: Subject, payload: Bytes) {
        // A lost acknowledgement only means a redelivery, which the outputs deduplicate.
        if let Err(e) = self.client.publish(subject, payload).await {
            tracing::debug!(error = %e, "jetstream acknowledgement not sent");
        }
    }

    /// Acknowledges an input whose events are all done, or asks for its redelivery after a
    /// backoff when one of them failed.
    async fn settle(&mut self, msg: AckMsg) {
        let Some(u) = self.unsettled.remove(&msg.id) else {
            return;
        };
        match msg.outcome {
            Outcome::Delivered | Outcome::Rejected => {
                self.metrics.acked.increment(1);
                self.publish(u.reply, Bytes::from_static(b"+ACK")).await;
            }
            Outcome::Failed => {
                self.metrics.naked.increment(1);
                let payload = if self.out_closed {
                    stop_nak()
                } else {
                    nak(&self.config.backoff, u.delivered)
                };
                self.publish(u.reply, payload).await;
            }
        }
    }

    /// Tells the server that messages held longer than half the ack wait are still being worked
    /// on, so it does not redeliver them meanwhile.
    async fn keep_alive(&mut self) {
        let now = Instant::now();
        let half = self.config.ack_wait.0 / 2;
        let mut due = Vec::new();
        for u in self.unsettled.values_mut() {
            if now.duration_since(u.touched) >= half {
                u.touched = now;
                due.push(u.reply.clone());
            }
        }
        for reply in due {
            self.metrics.in_progress.increment(1);
            self.publish(reply, Bytes::from_static(b"+WPI")).await;
        }
    }

    /// Looks the consumer up again after pull requests went unanswered.
    async fn rebind(&mut self) -> Result<(), SourceError> {
        tracing::warn!(pipeline = %self.ctx.telemetry.pipeline(), stream = %self.config.stream, consumer = %self.config.consumer, "jetstream pull requests unanswered; checking the consumer");
        self.unanswered = 0;
        match self.config.set_up(&self.js).await {
            Ok(()) => Ok(()),
            Err(SetupError::Fatal(m)) => Err(read_error(m)),
            Err(SetupError::Transient(m)) => {
                tracing::warn!(pipeline = %self.ctx.telemetry.pipeline(), error = %m, "jetstream consumer not reachable; retrying");
                self.paused_until = Some(Instant::now() + UNAVAILABLE_PAUSE);
                Ok(())
            }
        }
    }

    fn stopping(&self) -> bool {
        self.drain_until.is_some()
    }

    /// Stops pulling. Messages of the pull requests still open are handed on like any other:
    /// giving them back instead would have them redelivered to those same requests, each time
    /// using up one of their `max_deliver` attempts.
    fn stop(&mut self) {
        self.drain_until = Some(Instant::now() + self.ctx.drain_timeout);
    }

    /// The pipeline takes no more events: stop, and give back what was read and not handed on.
    fn close_out(&mut self) {
        self.stop();
        self.out_closed = true;
        for event in std::mem::take(&mut self.batch) {
            event.ack.complete(Outcome::Failed);
        }
    }

    /// Nothing left to wait for once stopping: no open pull request, nothing read.
    fn drained(&self) -> bool {
        self.pulls.is_empty() && self.batch.is_empty() && self.unsettled.is_empty()
    }
}

/// `-NAK` for a message given back at shutdown, delayed until this process's pull requests have
/// expired so that it goes to another replica instead of back to this one.
fn stop_nak() -> Bytes {
    Bytes::from(format!(
        "-NAK {{\"delay\":{}}}",
        (PULL_EXPIRES + PULL_GRACE).as_nanos()
    ))
}

/// `-NAK` with the backoff for the given delivery attempt.
fn nak(backoff: &[HumanDuration], delivered: i64) -> Bytes {
    let attempt = usize::try_from(delivered.max(1) - 1).unwrap_or(0);
    match backoff.get(attempt).or(backoff.last()) {
        Some(delay) => Bytes::from(format!("-NAK {{\"delay\":{}}}", delay.0.as_nanos())),
        None => Bytes::from_static(b"-NAK"),
    }
}

/// Consumes until shutdown; then stops pulling, waits for in-flight events (up to the drain
/// timeout), acknowledges what was delivered and gives back the rest.
pub async fn run(config: &JetStreamInputConfig, ctx: SourceContext) -> Result<(), SourceError> {
    let pipeline = ctx.telemetry.pipeline().to_string();
    let reconnected = Arc::new(Notify::new());
    let client = connect_notify(
        config.endpoint(),
        &pipeline,
        ctx.link.clone(),
        Some(reconnected.clone()),
    )
    .await
    .map_err(read_error)?;
    let js = async_nats::jetstream::new(client.clone());
    if !config.set_up_until_ready(&js, &ctx).await? {
        tracing::info!(pipeline = %pipeline, "jetstream input stopped before it consumed");
        return Ok(());
    }
    let inbox = client.new_inbox();
    let mut sub = client
        .subscribe(format!("{inbox}.*"))
        .await
        .map_err(read_error)?;
    let (acks, mut ack_rx) = ctx.telemetry.ack_channel();
    let mut r = Reader {
        config,
        ctx: &ctx,
        client: client.clone(),
        js,
        next_subject: Subject::from(format!(
            "$JS.API.CONSUMER.MSG.NEXT.{}.{}",
            config.stream, config.consumer
        )),
        inbox,
        pulls: VecDeque::new(),
        next_pull: 0,
        unanswered: 0,
        paused_until: None,
        unsettled: HashMap::new(),
        next_ticket: 0,
        acks,
        batch: Vec::new(),
        drain_until: None,
        out_closed: false,
        stream: Arc::from(config.stream.as_str()),
        subjects: SubjectMemo::default(),
        metrics: Metrics::new(&pipeline, config),
    };
    tracing::info!(pipeline, stream = %config.stream, consumer = %config.consumer, "jetstream consuming");
    // Often enough to keep slow messages alive and to notice lost pull requests promptly.
    let period = (config.ack_wait.0 / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let out: &mpsc::Sender<Vec<Event>> = &ctx.out;
    let result = loop {
        let stopping = r.stopping();
        if stopping && r.drained() {
            break Ok(());
        }
        if !stopping {
            if r.unanswered >= REBIND_AFTER
                && let Err(e) = r.rebind().await
            {
                break Err(e);
            }
            r.pull().await;
        }
        tokio::select! {
            biased;
            _ = ctx.shutdown.cancelled(), if !stopping => r.stop(),
            msg = sub.next(), if r.out_closed || r.batch.len() < ctx.batch_size => match msg {
                Some(msg) => r.on_message(msg).await,
                None => break Err(read_error("the connection closed")),
            },
            permit = out.reserve(), if !r.out_closed && !r.batch.is_empty() => match permit {
                Ok(permit) => {
                    let batch = std::mem::take(&mut r.batch);
                    ctx.telemetry.received(batch.len());
                    permit.send(batch);
                }
                // The pipeline stopped taking events: drain what it has.
                Err(_) => r.close_out(),
            },
            Some(first) = ack_rx.recv() => {
                r.settle(first).await;
                while let Ok(next) = ack_rx.try_recv() {
                    r.settle(next).await;
                }
            }
            _ = reconnected.notified() => {
                // Pull requests lived on the old connection.
                r.pulls.clear();
            }
            _ = tick.tick() => {
                r.expire_pulls();
                r.keep_alive().await;
                if r.drain_until.is_some_and(|t| Instant::now() >= t) {
                    break Ok(());
                }
            }
        }
    };
    // Whatever is still in flight at the deadline is given back, so that another replica takes
    // it soon rather than after the ack wait.
    while let Ok(msg) = ack_rx.try_recv() {
        r.settle(msg).await;
    }
    let left: Vec<Subject> = r.unsettled.drain().map(|(_, u)| u.reply).collect();
    if !left.is_empty() {
        tracing::warn!(pipeline = %ctx.telemetry.pipeline(), unfinished = left.len(), "jetstream input stopping with unfinished messages; they will be redelivered");
    }
    for reply in left {
        r.publish(reply, stop_nak()).await;
    }
    drop(sub);
    if let Err(e) = client.flush().await {
        tracing::warn!(pipeline = %ctx.telemetry.pipeline(), error = %e, "jetstream acknowledgements may not have reached the server");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subjects_in_both_formats() {
        let v1 = parse_reply("$JS.ACK.ORDERS.proc.3.1042.1040.1700000000123456789.17").unwrap();
        assert_eq!(
            v1,
            Delivery {
                delivered: 3,
                stream_seq: 1042,
                stored_ns: 1_700_000_000_123_456_789,
                pending: 17
            }
        );
        let v2 =
            parse_reply("$JS.ACK.hub.ACCHASH.ORDERS.proc.1.7.7.1700000000000000000.0.tok").unwrap();
        assert_eq!((v2.delivered, v2.stream_seq, v2.pending), (1, 7, 0));
        assert_eq!(parse_reply("$JS.ACK.ORDERS.proc.x.1.1.1.1"), None);
        assert_eq!(parse_reply("_INBOX.abc"), None);
    }

    #[test]
    fn nak_delay_follows_the_backoff_by_attempt() {
        let backoff: Vec<HumanDuration> = [1, 5]
            .map(|s| HumanDuration(Duration::from_secs(s)))
            .to_vec();
        assert_eq!(nak(&backoff, 1), "-NAK {\"delay\":1000000000}");
        assert_eq!(nak(&backoff, 2), "-NAK {\"delay\":5000000000}");
        assert_eq!(nak(&backoff, 9), "-NAK {\"delay\":5000000000}");
        assert_eq!(nak(&[], 1), "-NAK");
    }
}
