//! The consumer's client context: librdkafka's callbacks (rebalances, commits, statistics,
//! errors) acting on the lanes, shared with the poll loop under a lock, and on the lag.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};
use tokio::sync::mpsc;

use super::REVOKE_TIMEOUT;
use super::lag::Lag;
use super::lanes::Lanes;
use crate::client::kafka::BrokerLink;
use crate::context::{PipelineContext, Signal};
use crate::delivery::AckMsg;
use crate::observe::events::emit;
use crate::observe::events::kafka_input::{
    AsyncCommitRefused, InFlightAbandoned, OffsetCommitFailed, OffsetsCommitted, PartitionAssigned,
    RebalanceError,
};

/// The lanes, and where their acknowledgements arrive.
pub(super) struct State {
    pub(super) lanes: Lanes,
    acks: mpsc::UnboundedReceiver<AckMsg>,
    runtime: tokio::runtime::Handle,
    /// Where the outputs are told of partitions changing.
    pipeline: PipelineContext,
    lag: Arc<Lag>,
}

impl State {
    pub(super) fn new(
        lanes: Lanes,
        acks: mpsc::UnboundedReceiver<AckMsg>,
        runtime: tokio::runtime::Handle,
        pipeline: PipelineContext,
        lag: Arc<Lag>,
    ) -> State {
        State {
            lanes,
            acks,
            runtime,
            pipeline,
            lag,
        }
    }

    /// Applies every acknowledgement that arrived.
    pub(super) fn drain_acks(&mut self) {
        while let Ok(msg) = self.acks.try_recv() {
            self.lanes.apply(msg);
        }
    }

    /// Waits until `lanes` have nothing handed on in flight, or the deadline.
    pub(super) fn wait_idle(&mut self, lanes: &[u32], deadline: Instant) -> bool {
        loop {
            self.drain_acks();
            let busy = self.lanes.busy(lanes);
            if busy == 0 {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                emit(InFlightAbandoned {
                    pipeline: &self.lanes.pipeline,
                    in_flight: busy,
                });
                return false;
            }
            let runtime = self.runtime.clone();
            let next = runtime
                .block_on(async { tokio::time::timeout(deadline - now, self.acks.recv()).await });
            if let Ok(Some(msg)) = next {
                self.lanes.apply(msg);
            }
        }
    }

    /// Commits the done position of `only` (every lane when None) where it moved; false when
    /// the commit failed.
    pub(super) fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        only: Option<&[u32]>,
        mode: CommitMode,
    ) -> bool {
        let Some(commit) = self.lanes.commit(only) else {
            return true;
        };
        let pipeline = &*self.lanes.pipeline;
        match consumer.commit(&commit.offsets, mode) {
            Ok(()) => {
                // An asynchronous commit is only sent: the commit callback says how it went.
                if matches!(mode, CommitMode::Sync) {
                    committed_to(&self.lag, &commit.offsets);
                }
                emit(OffsetsCommitted { pipeline });
                self.lanes.committed(commit);
                true
            }
            Err(e) => {
                emit(OffsetCommitFailed {
                    pipeline,
                    error: &e,
                });
                false
            }
        }
    }

    /// Partitions are taken away: wait (up to [`REVOKE_TIMEOUT`]) for their events in flight,
    /// commit what is done, and forget them.
    fn revoke<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
        let lanes: Vec<u32> = tpl
            .elements()
            .iter()
            .filter_map(|e| self.lanes.current_lane(e.topic(), e.partition()))
            .collect();
        // Outputs that hold events back for larger writes write them now, so the events are
        // delivered and committed before the partitions go to another member.
        self.pipeline.signal(Signal::Rebalance);
        self.wait_idle(&lanes, Instant::now() + REVOKE_TIMEOUT);
        self.commit(consumer, Some(&lanes), CommitMode::Sync);
        self.lanes.revoked(&lanes);
        for e in tpl.elements() {
            self.lag.revoked(e.topic(), e.partition());
        }
    }
}

/// Offsets the broker took, for the lag.
fn committed_to(lag: &Lag, offsets: &TopicPartitionList) {
    for e in offsets.elements() {
        if let (Offset::Offset(o), Ok(())) = (e.offset(), e.error()) {
            lag.committed(e.topic(), e.partition(), o);
        }
    }
}

/// What librdkafka calls back into.
pub(super) struct KafkaContext {
    pub(super) state: Mutex<State>,
    pub(super) link: BrokerLink,
    pub(super) lag: Arc<Lag>,
}

impl KafkaContext {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a bug; the state is still consistent enough to commit.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientContext for KafkaContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.link.error(&error, reason);
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        self.link.log(level, fac, message);
    }

    fn stats(&self, statistics: Statistics) {
        self.link.stats(&statistics);
        for (name, topic) in statistics.topics {
            for (partition, p) in topic.partitions {
                // Partition -1 is librdkafka's internal one; hi_offset is -1 until fetched.
                if partition >= 0 {
                    self.lag.high(&name, partition, p.hi_offset);
                }
            }
        }
    }
}

impl ConsumerContext for KafkaContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => self.state().revoke(consumer, tpl),
            Rebalance::Assign(tpl) => {
                let mut state = self.state();
                for e in tpl.elements() {
                    state.lanes.lane_for(e.topic(), e.partition());
                    self.lag.assigned(e.topic(), e.partition());
                    emit(PartitionAssigned {
                        pipeline: &state.lanes.pipeline,
                        topic: e.topic(),
                        partition: e.partition(),
                    });
                }
                // Outputs that keep what they know of stored events per partition (an object
                // store) learn it again: another member may have written to these partitions.
                state.pipeline.signal(Signal::Rebalance);
                // A commit sent while the group was rebalancing may have been refused without
                // saying so to this member: the next commit sends every partition's offset again.
                state.lanes.commit_failed();
            }
            Rebalance::Error(e) => emit(RebalanceError { error: e }),
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        // A commit refused during a rebalance can report success overall and the refusal per
        // partition: either way nothing counts as committed, and the next commit sends it again
        // (even when no new event arrives).
        let refused = offsets.elements().iter().find_map(|e| e.error().err());
        if result.is_ok() {
            committed_to(&self.lag, offsets);
        }
        let error = result.err().or(refused);
        if let Some(e) = error {
            self.state().lanes.commit_failed();
            emit(AsyncCommitRefused { error: &e });
        }
    }
}
