//! The consuming side of one durable consumer on one connection: pull requests, messages
//! handed on in batches, and settling each with the server once its events are done.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::{Client, StatusCode, Subject};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::protocol::{PULL_EXPIRES, PULL_GRACE, nak, parse_reply, stop_nak};
use super::{JetStreamInputConfig, read_error};
use crate::client::nats::{NatsError, SubjectMemo, to_event};
use crate::delivery::{AckMsg, AckSender, Outcome};
use crate::event::{Event, Position};
use crate::observe::events::emit;
use crate::observe::events::jetstream::{
    AckKind, AckNotSent, AckSent, FlushAsked, JetStreamSeries, MessageRead, PullEnded, PullNotSent,
    PullsLost, ReplyMissing, StoppingUnfinished,
};
use crate::observe::events::pipeline::Redelivered;
use crate::source::SourceContext;
use crate::source::SourceError;

/// Pause before pulling again after JetStream did not answer.
const UNAVAILABLE_PAUSE: Duration = Duration::from_millis(500);
/// Pull requests lost or unanswered in a row before the consumer is looked up (and, unless
/// bound, created) again: the server may have lost it.
const REBIND_AFTER: u32 = 3;
/// How soon the outputs are asked again to write what they gather while no message is
/// acknowledged: the request may have overtaken the last events on their way to the output.
const FLUSH_AGAIN: Duration = Duration::from_millis(200);

mod upkeep;

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
pub(super) struct Reader<'a> {
    config: &'a JetStreamInputConfig,
    ctx: &'a SourceContext,
    client: Client,
    js: async_nats::jetstream::Context,
    next_subject: Subject,
    inbox: String,
    pulls: VecDeque<Pull>,
    next_pull: u64,
    unanswered: u32,
    /// Connections the client had made when the pull requests were last opened on a new one.
    connects: u64,
    paused_until: Option<Instant>,
    unsettled: HashMap<u64, Unsettled>,
    /// The consumer's `max_ack_pending` (None: unlimited): holding this many unsettled
    /// messages, this reader is given no more until some are acknowledged.
    pub(super) ack_limit: Option<usize>,
    /// Messages left for the consumer, as the last one delivered said.
    left: u64,
    /// When the outputs were last asked to write what they gather, since a message was last
    /// settled.
    flush_asked: Option<Instant>,
    next_ticket: u64,
    acks: AckSender,
    batch: Vec<Event>,
    /// Set once stopping: how long in-flight events may still take.
    drain_until: Option<Instant>,
    /// The pipeline takes no more events.
    out_closed: bool,
    stream: Arc<str>,
    subjects: SubjectMemo,
    series: JetStreamSeries,
}

impl<'a> Reader<'a> {
    pub(super) fn new(
        config: &'a JetStreamInputConfig,
        ctx: &'a SourceContext,
        client: Client,
        js: async_nats::jetstream::Context,
        inbox: String,
        acks: AckSender,
    ) -> Reader<'a> {
        let connects = client.statistics().connects.load(Ordering::Relaxed);
        Reader {
            connects,
            config,
            ctx,
            client,
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
            ack_limit: None,
            left: 0,
            flush_asked: None,
            next_ticket: 0,
            acks,
            batch: Vec::new(),
            drain_until: None,
            out_closed: false,
            stream: Arc::from(config.stream.as_str()),
            subjects: SubjectMemo::default(),
            series: JetStreamSeries::new(
                ctx.telemetry.pipeline(),
                &config.stream,
                &config.consumer,
            ),
        }
    }
}

impl Reader<'_> {
    /// Consumes until shutdown (and the drain after it), the pipeline closing, or the connection
    /// closing.
    pub(super) async fn run(
        &mut self,
        sub: &mut async_nats::Subscriber,
        ack_rx: &mut mpsc::UnboundedReceiver<AckMsg>,
        reconnected: &Notify,
    ) -> Result<(), SourceError> {
        // Often enough to keep slow messages alive and to notice lost pull requests promptly.
        let period =
            (self.config.ack_wait.0 / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ctx = self.ctx;
        loop {
            let stopping = self.stopping();
            if stopping && self.drained() {
                return Ok(());
            }
            if !stopping {
                if self.unanswered >= REBIND_AFTER {
                    self.rebind().await?;
                }
                self.pull().await;
            }
            tokio::select! {
                biased;
                _ = ctx.shutdown.cancelled(), if !stopping => self.stop(),
                msg = sub.next(), if self.out_closed || !ctx.intake.is_full(&self.batch) => match msg {
                    Some(msg) => self.on_message(msg).await,
                    None => return Err(read_error(NatsError::Closed)),
                },
                permit = ctx.intake.reserve(), if !self.out_closed && !self.batch.is_empty() => match permit {
                    Some(permit) => {
                        permit.send(std::mem::take(&mut self.batch));
                        if self.at_ack_limit() {
                            self.ask_flush();
                        }
                    }
                    // The pipeline stopped taking events: drain what it has.
                    None => self.close_out(),
                },
                Some(first) = ack_rx.recv() => {
                    self.settle(first).await;
                    while let Ok(next) = ack_rx.try_recv() {
                        self.settle(next).await;
                    }
                }
                _ = reconnected.notified() => self.on_connected(),
                _ = tick.tick() => {
                    self.expire_pulls();
                    self.keep_alive().await;
                    // Again, in case the last request overtook the last events.
                    let waiting = self.at_ack_limit() || self.stopping();
                    if waiting && self.batch.is_empty() && !self.unsettled.is_empty() {
                        self.ask_flush();
                    }
                    if self.drain_until.is_some_and(|t| Instant::now() >= t) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Settles what finished, and gives back whatever is still in flight, so that another
    /// replica takes it soon rather than after the ack wait.
    pub(super) async fn finish(&mut self, ack_rx: &mut mpsc::UnboundedReceiver<AckMsg>) {
        while let Ok(msg) = ack_rx.try_recv() {
            self.settle(msg).await;
        }
        let left: Vec<Subject> = self.unsettled.drain().map(|(_, u)| u.reply).collect();
        if !left.is_empty() {
            emit(StoppingUnfinished {
                pipeline: self.ctx.telemetry.pipeline(),
                unfinished: left.len(),
            });
        }
        for reply in left {
            self.publish(reply, stop_nak()).await;
        }
    }
    /// Opens pull requests while there is room downstream (and in the in-flight byte budget): at
    /// most two at a time, the second once the first is half served, so messages keep flowing
    /// without piling up.
    async fn pull(&mut self) {
        let now = Instant::now();
        if self.paused_until.is_some_and(|t| now < t)
            || self.ctx.intake.is_full(&self.batch)
            || self.ctx.intake.budget_full()
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
                emit(PullNotSent { error: &e });
                self.paused_until = Some(now + UNAVAILABLE_PAUSE);
            }
        }
    }

    /// The client connected: after a reconnection, the pull requests lived on the old
    /// connection. The notice of the first connection may arrive after reading began: the
    /// requests open then are live, and forgetting them would have more pulled at once than the
    /// in-flight budget allows.
    fn on_connected(&mut self) {
        let connects = self.client.statistics().connects.load(Ordering::Relaxed);
        if connects != self.connects {
            self.connects = connects;
            self.pulls.clear();
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
            self.series.emit(PullsLost { count: lost });
            self.unanswered += lost as u32;
        }
    }

    /// A status about a pull request: it expired or ended, or JetStream is not serving the
    /// consumer.
    fn on_status(&mut self, status: StatusCode, msg: &async_nats::Message) {
        match status {
            StatusCode::IDLE_HEARTBEAT => {}
            // The request expired, or ended for a reason the description gives.
            StatusCode::TIMEOUT | StatusCode::NOT_FOUND => {
                self.unanswered = 0;
                self.close_pull(&msg.subject);
                // Messages are left, yet none came: the server holds them back until some
                // are acknowledged (the consumer's max_ack_pending, reached across replicas).
                if status == StatusCode::TIMEOUT && self.left > 0 && !self.unsettled.is_empty() {
                    self.ask_flush();
                }
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
                emit(PullEnded {
                    pipeline: self.ctx.telemetry.pipeline(),
                    status: &status,
                    description,
                });
                if description.contains("Consumer Deleted") {
                    self.unanswered = REBIND_AFTER;
                }
                self.close_pull(&msg.subject);
            }
        }
    }

    /// Handles one message on the inbox: a status about a pull request, or a stream message.
    async fn on_message(&mut self, msg: async_nats::Message) {
        if let Some(status) = msg.status {
            self.on_status(status, &msg);
            return;
        }
        let Some(reply) = msg.reply.clone() else {
            return;
        };
        let Some(delivery) = parse_reply(&reply) else {
            emit(ReplyMissing {
                pipeline: self.ctx.telemetry.pipeline(),
                reply: &reply,
            });
            return;
        };
        self.unanswered = 0;
        if let Some(front) = self.pulls.front_mut() {
            front.remaining = front.remaining.saturating_sub(1);
            if front.remaining == 0 {
                self.pulls.pop_front();
            }
        }
        self.series.emit(MessageRead {
            pending: delivery.pending,
            redelivered: delivery.delivered > 1,
        });
        self.left = delivery.pending;
        if self.out_closed {
            // Nothing takes events any more: give it back so another replica takes it.
            self.publish(reply, stop_nak()).await;
            self.series.emit(AckSent(AckKind::Nak));
            return;
        }
        if delivery.delivered > 1 {
            self.ctx.telemetry.emit(Redelivered);
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
            emit(AckNotSent { error: &e });
        }
    }

    /// Acknowledges an input whose events are all done, or asks for its redelivery after a
    /// backoff when one of them failed.
    async fn settle(&mut self, msg: AckMsg) {
        let Some(u) = self.unsettled.remove(&msg.id) else {
            return;
        };
        self.flush_asked = None;
        match msg.outcome {
            Outcome::Delivered | Outcome::Rejected => {
                self.series.emit(AckSent(AckKind::Ack));
                self.publish(u.reply, Bytes::from_static(b"+ACK")).await;
            }
            Outcome::Failed => {
                self.series.emit(AckSent(AckKind::Nak));
                let payload = if self.out_closed {
                    stop_nak()
                } else {
                    nak(&self.config.backoff, u.delivered)
                };
                self.publish(u.reply, payload).await;
            }
        }
    }

    /// Whether this reader holds as many unsettled messages as the consumer hands out.
    fn at_ack_limit(&self) -> bool {
        self.ack_limit.is_some_and(|n| self.unsettled.len() >= n)
    }

    /// Asks the outputs that gather events into larger writes (an object store output) to write
    /// what they hold now: no more messages come until some are acknowledged, and they would
    /// otherwise wait for the output's `max_age`. Asked again after [`FLUSH_AGAIN`] while none
    /// is settled.
    fn ask_flush(&mut self) {
        let now = Instant::now();
        if self.flush_asked.is_some_and(|t| now < t + FLUSH_AGAIN) {
            return;
        }
        self.flush_asked = Some(now);
        emit(FlushAsked {
            pipeline: self.ctx.telemetry.pipeline(),
            unsettled: self.unsettled.len(),
        });
        self.ctx.pipeline.signal(crate::context::Signal::Flush);
    }

    fn stopping(&self) -> bool {
        self.drain_until.is_some()
    }

    /// Stops pulling. Messages of the pull requests still open are handed on like any other:
    /// giving them back instead would have them redelivered to those same requests, each time
    /// using up one of their `max_deliver` attempts.
    /// The outputs that gather events are asked to write what they hold: nothing more comes to
    /// fill it, and its messages are acknowledged only once it is stored.
    fn stop(&mut self) {
        self.drain_until = Some(Instant::now() + self.ctx.drain_timeout);
        self.ask_flush();
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
