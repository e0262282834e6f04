//! The consumer thread's loop: poll a batch, hand it on when there is room, pause fetching
//! while the pipeline stays full, commit delivered offsets, and at shutdown wait for what is in
//! flight and commit a last time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;

use super::context::KafkaContext;
use super::convert::{handed_upto, to_event};
use crate::delivery::AckSender;
use crate::event::{Arena, Event, Position};
use crate::observe::events::emit;
use crate::observe::events::kafka_input::{
    ConsumerError, FetchPaused, FetchResumed, KafkaInputSeries,
};
use crate::source::intake::Room;
use crate::source::{SourceContext, SourceError};

/// How long a batch waits for room downstream before the loop polls again: longer while
/// fetching runs (a pause drops what librdkafka prefetched, so pausing at every brief stall
/// would refetch constantly), shorter once paused (polling serves rebalances).
const ROOM_WAIT: Duration = Duration::from_millis(200);
const ROOM_WAIT_PAUSED: Duration = Duration::from_millis(50);

/// How long reading waits for the in-flight budget before polling again, until fetching pauses.
const BUDGET_WAIT: Duration = Duration::from_millis(50);

/// How long a poll waits for the first record of a batch: while fetching, and while paused (the
/// poll then only serves rebalances and keeps the member in the group).
const POLL_WAIT: Duration = Duration::from_millis(100);
const POLL_WAIT_PAUSED: Duration = Duration::from_millis(50);

/// How long the pipeline must stay full before fetching pauses (the member keeps polling, so it
/// stays in the group while the output is slow or down).
const PAUSE_AFTER: Duration = Duration::from_secs(1);

/// Time kept at shutdown for the last commit, retried every [`COMMIT_RETRY`]: after a broker
/// outage the group coordinator can take a moment to come back.
const FINAL_COMMIT: Duration = Duration::from_secs(2);
const COMMIT_RETRY: Duration = Duration::from_millis(100);

/// The loop's state between polls.
pub(super) struct Loop<'a> {
    consumer: &'a BaseConsumer<KafkaContext>,
    ctx: &'a SourceContext,
    acks: AckSender,
    waiter: tokio::runtime::Handle,
    pipeline: Arc<str>,
    commit_every: Duration,
    last_commit: Instant,
    /// A batch read and not yet handed on.
    pending: Option<Vec<Event>>,
    paused: bool,
    /// 1 while fetching is paused.
    series: KafkaInputSeries,
    full_since: Option<Instant>,
    /// Revocations seen so far (see `Lanes::revocations`).
    revocations: u64,
    /// Where records' payloads and keys are copied to.
    arena: Arena,
}

impl<'a> Loop<'a> {
    pub(super) fn new(
        consumer: &'a BaseConsumer<KafkaContext>,
        ctx: &'a SourceContext,
        acks: AckSender,
        waiter: tokio::runtime::Handle,
        commit_every: Duration,
    ) -> Loop<'a> {
        Loop {
            consumer,
            ctx,
            acks,
            waiter,
            pipeline: Arc::from(ctx.telemetry.pipeline()),
            commit_every,
            last_commit: Instant::now(),
            pending: None,
            paused: false,
            series: KafkaInputSeries::new(ctx.telemetry.pipeline()),
            full_since: None,
            revocations: 0,
            arena: Arena::default(),
        }
    }

    /// Consumes until shutdown, the pipeline closing, or a fatal client error; then waits for
    /// what is in flight (up to `drain`) and commits.
    pub(super) fn run(mut self, drain: Duration) -> Result<(), SourceError> {
        let result = loop {
            if self.ctx.shutdown.is_cancelled() {
                break Ok(());
            }
            if let Some((code, reason)) = self.consumer.client().fatal_error() {
                break Err(SourceError::Consumer { reason, code });
            }
            self.commit_when_due();
            if self.hand_on().is_err() {
                break Ok(());
            }
            let budget_full = self.pause_or_resume();
            let batch = self.poll(budget_full);
            self.keep(batch);
        };
        self.finish(drain);
        result
    }

    fn commit_when_due(&mut self) {
        let mut state = self.consumer.context().state();
        state.drain_acks();
        if self.last_commit.elapsed() >= self.commit_every {
            state.commit(self.consumer, None, CommitMode::Async);
            self.last_commit = Instant::now();
        }
    }

    /// Hands the waiting batch on if there is room (waiting a little for it); Err when the
    /// pipeline is gone.
    fn hand_on(&mut self) -> Result<(), ()> {
        let Some(batch) = self.pending.take() else {
            return Ok(());
        };
        let intake = &self.ctx.intake;
        let room = match intake.try_reserve() {
            Room::Full => {
                let wait = if self.paused {
                    ROOM_WAIT_PAUSED
                } else {
                    ROOM_WAIT
                };
                self.waiter.block_on(intake.reserve_within(wait))
            }
            room => room,
        };
        let permit = match room {
            Room::Free(permit) => permit,
            Room::Closed => return Err(()),
            Room::Full => {
                self.pending = Some(batch);
                return Ok(());
            }
        };
        let last = handed_upto(&batch);
        permit.send(batch);
        self.full_since = None;
        let mut state = self.consumer.context().state();
        for ((topic, partition), offset) in last {
            state.lanes.handed(&topic, partition, offset);
        }
        Ok(())
    }

    /// Pauses fetching once the pipeline has stayed full for [`PAUSE_AFTER`] (a batch waits for
    /// room downstream, or the in-flight budget is used up), and resumes once it is not; returns
    /// whether the budget is used up (a batch already read is still handed on: only reading
    /// more waits for the budget).
    fn pause_or_resume(&mut self) -> bool {
        let intake = &self.ctx.intake;
        let mut budget_full = intake.budget_full();
        if budget_full && !self.paused {
            // Until fetching pauses, wait a little for room rather than read on.
            budget_full = self
                .waiter
                .block_on(async { tokio::time::timeout(BUDGET_WAIT, intake.room()).await })
                .is_err();
        }
        if self.pending.is_some() || budget_full {
            let since = *self.full_since.get_or_insert_with(Instant::now);
            if !self.paused && since.elapsed() >= PAUSE_AFTER {
                if let Ok(assignment) = self.consumer.assignment() {
                    let _ = self.consumer.pause(&assignment);
                }
                self.paused = true;
                self.series.emit(FetchPaused);
            }
        } else {
            self.full_since = None;
            if self.paused {
                if let Ok(assignment) = self.consumer.assignment() {
                    let _ = self.consumer.resume(&assignment);
                }
                self.paused = false;
                self.series.emit(FetchResumed);
            }
        }
        budget_full
    }

    /// Polls records into the waiting batch (or a new one). While paused it polls anyway: that
    /// serves rebalances and keeps the member in the group; a record fetched before the pause is
    /// kept in the batch.
    fn poll(&mut self, budget_full: bool) -> Vec<Event> {
        let mut batch = self
            .pending
            .take()
            .unwrap_or_else(|| self.ctx.intake.batch());
        if budget_full && !self.paused {
            // Every record polled now would be read past the budget, and, handed on at once
            // (the channel has room: only the budget is used up), it would restart the wait
            // before pausing: reading would trickle on a record at a time for as long as the
            // output is down. Until fetching pauses, do not poll: the wait for the budget in
            // `pause_or_resume` paces the loop, and a second is well within the poll interval
            // the group allows.
            return batch;
        }
        let mut timeout = if self.paused {
            POLL_WAIT_PAUSED
        } else {
            POLL_WAIT
        };
        // The lane of the batch's last event, when this poll read it: a record of the same lane
        // joins its acknowledgement. Runs end with the poll, so that no run spans a batch
        // handed on and one still here.
        let mut run: Option<u32> = None;
        loop {
            // A batch still waiting for room may be full already: reading more would make it
            // larger than a batch gets. Paused, the poll reads nothing but serves the group.
            if !self.paused && self.ctx.intake.is_full(&batch) {
                break;
            }
            match self.consumer.poll(timeout) {
                None => break,
                Some(Ok(msg)) => {
                    let mut state = self.consumer.context().state();
                    let last = run.zip(batch.last().map(|e| &e.ack));
                    match to_event(&msg, &mut state.lanes, &self.acks, &mut self.arena, last) {
                        Some((lane, event)) => {
                            batch.push(event);
                            run = Some(lane);
                        }
                        None => run = None,
                    }
                }
                Some(Err(e)) => {
                    // Broker connection failures were logged by the client context already.
                    let connection = matches!(
                        e.rdkafka_error_code(),
                        Some(
                            RDKafkaErrorCode::BrokerTransportFailure
                                | RDKafkaErrorCode::AllBrokersDown
                        )
                    );
                    emit(ConsumerError {
                        pipeline: &self.pipeline,
                        error: &e,
                        connection,
                    });
                    break;
                }
            }
            if self.paused || budget_full {
                break;
            }
            timeout = Duration::ZERO;
        }
        batch
    }

    /// Keeps a batch to hand on, without the events of partitions revoked meanwhile: those
    /// belong to their new owner now.
    fn keep(&mut self, mut batch: Vec<Event>) {
        let state = self.consumer.context().state();
        if state.lanes.revocations != self.revocations {
            self.revocations = state.lanes.revocations;
            batch.retain(|e| match &*e.position {
                Position::Kafka {
                    topic, partition, ..
                } => state.lanes.current_lane(topic, *partition).is_some(),
                _ => true,
            });
        }
        if !batch.is_empty() {
            self.pending = Some(batch);
        }
    }

    /// Waits up to `drain` for the events handed on, and commits what is done. Events read but
    /// not handed on are not acknowledged: they are read again after a restart.
    fn finish(mut self, drain: Duration) {
        self.pending = None;
        self.series.emit(FetchResumed);
        let deadline = Instant::now()
            + drain
                .saturating_sub(FINAL_COMMIT)
                .max(Duration::from_secs(1));
        let mut state = self.consumer.context().state();
        let lanes = state.lanes.ids();
        state.wait_idle(&lanes, deadline);
        let give_up = Instant::now() + FINAL_COMMIT;
        while !state.commit(self.consumer, None, CommitMode::Sync) && Instant::now() < give_up {
            std::thread::sleep(COMMIT_RETRY);
        }
    }
}
