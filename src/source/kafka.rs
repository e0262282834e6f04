//! The `kafka` input: a consumer in a consumer group, committing only delivered offsets.
//!
//! The consumer runs on its own thread (librdkafka's poll loop and rebalance callbacks are
//! blocking). Each assigned partition is a lane with an [`OrderedTracker`]: the committed offset
//! only moves past inputs whose outputs are all delivered. On revocation the consumer waits for
//! the revoked partitions' in-flight events, commits what is done, and forgets the lanes, so a
//! late acknowledgement can never commit over the partition's new owner.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers as _};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, Statistics, TopicPartitionList};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::{SourceContext, SourceError};
use crate::client::kafka::{
    BrokerLink, STATS_INTERVAL_MS, SaslConfig, Security, check_brokers, check_options, client_error,
};
use crate::client::tls::TlsConfig;
use crate::codec::Codec;
use crate::config::{ClientOptions, HumanDuration, Validator};
use crate::delivery::{AckMsg, AckSender, OrderedTracker};
use crate::event::{Event, Position};

/// Reads topics as a member of a consumer group; replicas with the same `group_id` share the
/// partitions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaInputConfig {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Topics to read. An entry starting with `^` is a regular expression over topic names.
    pub topics: Vec<String>,
    /// Consumer group id.
    pub group_id: String,
    /// Where a group with no committed offset starts: `earliest` or `latest`.
    #[serde(default)]
    pub start_from: StartFrom,
    /// How often offsets of delivered events are committed (also on rebalance and shutdown).
    #[serde(default = "default_commit_interval")]
    pub commit_interval: HumanDuration,
    /// `json` or `raw`.
    #[serde(default)]
    pub codec: Codec,
    /// librdkafka consumer properties (see the librdkafka documentation).
    #[serde(default)]
    pub options: ClientOptions,
    /// TLS to the brokers: `ca_file`, `cert_file` + `key_file` (with `key_password` for an
    /// encrypted key), `insecure_skip_verify`.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// SASL authentication: `mechanism` (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`),
    /// `username`, `password`.
    #[serde(default)]
    pub sasl: Option<SaslConfig>,
}

/// Start position of a new consumer group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    /// The oldest retained record.
    #[default]
    Earliest,
    /// Only records produced after the group first joins.
    Latest,
}

// librdkafka's auto-commit default is 5 s; committing delivered offsets as often keeps replays
// after a crash as short as users expect from a Kafka consumer.
fn default_commit_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(5))
}

impl KafkaInputConfig {
    /// The `tls` and `sasl` blocks.
    pub fn security(&self) -> Security<'_> {
        Security {
            tls: self.tls.as_ref(),
            sasl: self.sasl.as_ref(),
        }
    }

    /// Checks values serde cannot.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        check_brokers(&self.brokers, &format!("{path}.brokers"), v);
        self.security().validate(&self.options, path, v);
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            v.error_at(
                &format!("{path}.topics"),
                "topics must list at least one non-empty topic name or ^regex",
            );
        }
        if self.group_id.trim().is_empty() {
            v.error_at(&format!("{path}.group_id"), "group_id must not be empty");
        }
        check_options(
            &self.options,
            &["group.id", "bootstrap.servers", "enable.auto.offset.store"],
            &format!("{path}.options"),
            v,
        );
    }
}

/// How long a revocation waits for the revoked partitions' in-flight events before committing
/// what is done and letting the partitions go. The whole group waits for this callback, so it is
/// kept well under the default `max.poll.interval.ms` (300 s) and rebalance timeouts.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the pipeline must stay full before fetching pauses (the member keeps polling, so it
/// stays in the group while the output is slow or down).
const PAUSE_AFTER: Duration = Duration::from_secs(1);

fn read_error(message: impl std::fmt::Display) -> SourceError {
    SourceError::Read {
        input: "kafka",
        message: message.to_string(),
    }
}

/// The librdkafka consumer configuration of a pipeline.
pub fn consumer_config(config: &KafkaInputConfig, pipeline: &str) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group_id)
        .set("client.id", format!("sluice-{pipeline}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.offset.reset",
            match config.start_from {
                StartFrom::Earliest => "earliest",
                StartFrom::Latest => "latest",
            },
        )
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("statistics.interval.ms", STATS_INTERVAL_MS);
    for (k, v) in config.security().properties() {
        cc.set(k, v);
    }
    for (k, v) in &config.options.0 {
        cc.set(k, v);
    }
    cc
}

/// One assigned partition.
struct Lane {
    topic: Arc<str>,
    partition: i32,
    tracker: OrderedTracker,
    /// Last offset committed (the next offset to read).
    committed: Option<u64>,
    /// Highest offset handed on to the pipeline; later ones are still in the consumer thread.
    handed: Option<u64>,
    lag: metrics::Gauge,
}

struct State {
    pipeline: Arc<str>,
    lanes: HashMap<u32, Lane>,
    /// Lane ids of the current assignment, by topic and partition (keyed by topic first, so a
    /// record's `&str` topic finds its lane without an allocation).
    current: HashMap<Arc<str>, HashMap<i32, u32>>,
    next_lane: u32,
    acks: mpsc::UnboundedReceiver<AckMsg>,
    high_watermarks: HashMap<(String, i32), i64>,
    runtime: tokio::runtime::Handle,
    /// Bumped on every revocation, so the poll loop knows to drop events of revoked partitions.
    revocations: u64,
}

impl State {
    fn lane_for(&mut self, topic: &str, partition: i32) -> u32 {
        if let Some(id) = self.current_lane(topic, partition) {
            return id;
        }
        let id = self.next_lane;
        self.next_lane = self.next_lane.wrapping_add(1);
        let topic: Arc<str> = Arc::from(topic);
        let lag = metrics::gauge!(crate::observe::names::KAFKA_CONSUMER_LAG,
            "pipeline" => self.pipeline.to_string(),
            "topic" => topic.to_string(),
            "partition" => partition.to_string()
        );
        self.lanes.insert(
            id,
            Lane {
                topic: topic.clone(),
                partition,
                tracker: OrderedTracker::new(),
                committed: None,
                handed: None,
                lag,
            },
        );
        self.current.entry(topic).or_default().insert(partition, id);
        id
    }

    /// The lane of a partition in the current assignment.
    fn current_lane(&self, topic: &str, partition: i32) -> Option<u32> {
        self.current.get(topic)?.get(&partition).copied()
    }

    fn apply(&mut self, msg: AckMsg) {
        // An ack for a lane that is gone belongs to a revoked assignment: ignore it.
        if let Some(lane) = self.lanes.get_mut(&msg.lane)
            && lane.tracker.complete(msg.id, msg.outcome).is_err()
        {
            tracing::debug!(pipeline = %self.pipeline, lane = msg.lane, id = msg.id, "acknowledgement for an input not pending");
        }
    }

    fn drain_acks(&mut self) {
        while let Ok(msg) = self.acks.try_recv() {
            self.apply(msg);
        }
    }

    /// Waits until the lanes have nothing in flight, or the deadline.
    fn wait_idle(&mut self, lanes: &[u32], deadline: Instant) -> bool {
        loop {
            self.drain_acks();
            // Only events handed on can finish; ones still in the consumer thread never will.
            let busy: usize = lanes
                .iter()
                .filter_map(|l| self.lanes.get(l))
                .map(|l| l.handed.map_or(0, |h| l.tracker.in_flight_upto(h)))
                .sum();
            if busy == 0 {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                tracing::warn!(pipeline = %self.pipeline, in_flight = busy, "gave up waiting for in-flight events; they will be read again");
                return false;
            }
            let runtime = self.runtime.clone();
            let next = runtime
                .block_on(async { tokio::time::timeout(deadline - now, self.acks.recv()).await });
            if let Ok(Some(msg)) = next {
                self.apply(msg);
            }
        }
    }

    /// Commits the done position of the lanes (all when `only` is None) that moved; false when
    /// the commit failed.
    fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        only: Option<&[u32]>,
        mode: CommitMode,
    ) -> bool {
        let mut tpl = TopicPartitionList::new();
        let mut moved = Vec::new();
        for (id, lane) in &self.lanes {
            if only.is_some_and(|o| !o.contains(id)) {
                continue;
            }
            if let Some(pos) = lane.tracker.position()
                && lane.committed != Some(pos)
            {
                if let Err(e) = tpl.add_partition_offset(
                    &lane.topic,
                    lane.partition,
                    Offset::Offset(pos as i64),
                ) {
                    tracing::warn!(pipeline = %self.pipeline, error = %e, "cannot prepare commit");
                    continue;
                }
                moved.push((*id, pos));
            }
        }
        if moved.is_empty() {
            return true;
        }
        match consumer.commit(&tpl, mode) {
            Ok(()) => {
                for (id, pos) in moved {
                    if let Some(lane) = self.lanes.get_mut(&id) {
                        lane.committed = Some(pos);
                    }
                }
                metrics::counter!(crate::observe::names::KAFKA_COMMITS_TOTAL, "pipeline" => self.pipeline.to_string()).increment(1);
                true
            }
            Err(e) => {
                metrics::counter!(crate::observe::names::KAFKA_COMMIT_ERRORS_TOTAL, "pipeline" => self.pipeline.to_string()).increment(1);
                tracing::warn!(pipeline = %self.pipeline, error = %e, "offset commit failed; retrying");
                false
            }
        }
    }

    fn update_lag(&self) {
        for lane in self.lanes.values() {
            let Some(next) = lane.tracker.next_read().or(lane.committed) else {
                continue;
            };
            if let Some(high) = self
                .high_watermarks
                .get(&(lane.topic.to_string(), lane.partition))
                && *high >= 0
            {
                // Never negative: the watermark in statistics can lag behind what was read.
                lane.lag.set((*high - next as i64).max(0) as f64);
            }
        }
    }

    fn revoke<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
        let lanes: Vec<u32> = tpl
            .elements()
            .iter()
            .filter_map(|e| self.current_lane(e.topic(), e.partition()))
            .collect();
        self.wait_idle(&lanes, Instant::now() + REVOKE_TIMEOUT);
        self.commit(consumer, Some(&lanes), CommitMode::Sync);
        self.revocations += 1;
        for id in &lanes {
            if let Some(lane) = self.lanes.remove(id) {
                if let Some(partitions) = self.current.get_mut(&lane.topic) {
                    partitions.remove(&lane.partition);
                    if partitions.is_empty() {
                        self.current.remove(&lane.topic);
                    }
                }
                lane.lag.set(0.0);
                tracing::info!(pipeline = %self.pipeline, topic = %lane.topic, partition = lane.partition, committed = ?lane.committed, "partition revoked");
            }
        }
    }
}

struct KafkaContext {
    state: Mutex<State>,
    link: BrokerLink,
}

impl KafkaContext {
    fn state(&self) -> MutexGuard<'_, State> {
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
        let mut state = self.state();
        for (name, topic) in statistics.topics {
            for (partition, p) in topic.partitions {
                if partition >= 0 {
                    state
                        .high_watermarks
                        .insert((name.clone(), partition), p.hi_offset);
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
                    state.lane_for(e.topic(), e.partition());
                    tracing::info!(pipeline = %state.pipeline, topic = e.topic(), partition = e.partition(), "partition assigned");
                }
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _offsets: &TopicPartitionList,
    ) {
        if let Err(e) = result {
            // Forget what we believe committed, so the next commit sends every position again.
            let mut state = self.state();
            for lane in state.lanes.values_mut() {
                lane.committed = None;
            }
            tracing::warn!(error = %e, "offset commit failed; retrying at the next commit");
        }
    }
}

fn to_event(msg: &BorrowedMessage<'_>, state: &mut State, acks: &AckSender) -> Option<Event> {
    let lane_id = state.lane_for(msg.topic(), msg.partition());
    let lane = state.lanes.get_mut(&lane_id)?;
    let offset = msg.offset();
    if offset < 0 || !lane.tracker.read(offset as u64) {
        return None;
    }
    let position = Position::Kafka {
        topic: lane.topic.clone(),
        partition: lane.partition,
        offset,
    };
    let mut event = Event::new(
        Bytes::copy_from_slice(msg.payload().unwrap_or_default()),
        position,
        acks.ack(lane_id, offset as u64),
    );
    event.key = msg.key().map(Bytes::copy_from_slice);
    if let Some(headers) = msg.headers() {
        for h in headers.iter() {
            event.headers.push((
                h.key.to_string(),
                Bytes::copy_from_slice(h.value.unwrap_or_default()),
            ));
        }
    }
    event.timestamp = msg.timestamp().to_millis();
    Some(event)
}

/// The highest offset per partition in a batch.
fn handed_upto(batch: &[Event]) -> HashMap<(Arc<str>, i32), u64> {
    let mut last = HashMap::new();
    // Records come in runs of one partition: only a new partition costs a map update.
    let mut run: Option<(&Arc<str>, i32, u64)> = None;
    for e in batch {
        if let Position::Kafka {
            topic,
            partition,
            offset,
        } = &*e.position
        {
            match &mut run {
                Some((t, p, o)) if Arc::ptr_eq(t, topic) && *p == *partition => *o = *offset as u64,
                _ => {
                    if let Some((t, p, o)) = run {
                        last.insert((t.clone(), p), o);
                    }
                    run = Some((topic, *partition, *offset as u64));
                }
            }
        }
    }
    if let Some((t, p, o)) = run {
        last.insert((t.clone(), p), o);
    }
    last
}

/// Consumes until shutdown, then waits for in-flight events and commits.
pub async fn run(config: &KafkaInputConfig, ctx: SourceContext) -> Result<(), SourceError> {
    config.security().warn(ctx.telemetry.pipeline());
    let config = config.clone();
    let runtime = tokio::runtime::Handle::current();
    let thread = std::thread::Builder::new()
        .name(format!("{}-kafka", ctx.telemetry.pipeline()))
        .spawn(move || consume(&config, &ctx, runtime))
        .map_err(read_error)?;
    // Wait for the thread without blocking the runtime.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(thread.join());
    });
    match rx.await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(read_error("the consumer thread panicked")),
        Err(_) => Err(read_error("the consumer thread vanished")),
    }
}

fn consume(
    config: &KafkaInputConfig,
    ctx: &SourceContext,
    runtime: tokio::runtime::Handle,
) -> Result<(), SourceError> {
    let waiter = runtime.clone();
    let pipeline: Arc<str> = Arc::from(ctx.telemetry.pipeline());
    let (acks, ack_rx) = ctx.telemetry.ack_channel();
    let context = KafkaContext {
        state: Mutex::new(State {
            pipeline: pipeline.clone(),
            lanes: HashMap::new(),
            current: HashMap::new(),
            next_lane: 0,
            acks: ack_rx,
            high_watermarks: HashMap::new(),
            runtime,
            revocations: 0,
        }),
        link: BrokerLink::new(ctx.link.clone(), &pipeline, "consumer"),
    };
    let consumer: BaseConsumer<KafkaContext> = consumer_config(config, &pipeline)
        .create_with_context(context)
        .map_err(|e| read_error(client_error(&e)))?;
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(read_error)?;
    tracing::info!(pipeline = %pipeline, topics = ?config.topics, group = %config.group_id, "kafka consumer subscribed");

    let commit_every = config.commit_interval.0;
    let mut last_commit = Instant::now();
    let mut pending: Option<Vec<Event>> = None;
    let mut paused = false;
    let mut full_since: Option<Instant> = None;
    let mut revocations = 0;
    let result = loop {
        if ctx.shutdown.is_cancelled() {
            break Ok(());
        }
        if let Some(err) = consumer.client().fatal_error() {
            break Err(read_error(format!("fatal consumer error: {err:?}")));
        }
        {
            let mut state = consumer.context().state();
            state.drain_acks();
            if last_commit.elapsed() >= commit_every {
                state.commit(&consumer, None, CommitMode::Async);
                state.update_lag();
                last_commit = Instant::now();
            }
        }
        // Hand the last batch on; while the pipeline is full, pause fetching but keep polling so
        // the group sees us alive and rebalances are served.
        if let Some(batch) = pending.take() {
            // Wait a little for room before pausing: a pause drops what librdkafka prefetched,
            // so pausing at every brief stall would refetch constantly.
            let permit = match ctx.out.try_reserve() {
                Ok(permit) => Some(permit),
                Err(TrySendError::Closed(())) => break Ok(()),
                Err(TrySendError::Full(())) => {
                    let wait = if paused {
                        Duration::from_millis(50)
                    } else {
                        Duration::from_millis(200)
                    };
                    match waiter
                        .block_on(async { tokio::time::timeout(wait, ctx.out.reserve()).await })
                    {
                        Ok(Ok(permit)) => Some(permit),
                        Ok(Err(_)) => break Ok(()),
                        Err(_) => None,
                    }
                }
            };
            match permit {
                Some(permit) => {
                    let n = batch.len();
                    let last = handed_upto(&batch);
                    permit.send(batch);
                    ctx.telemetry.received(n);
                    full_since = None;
                    let mut state = consumer.context().state();
                    for ((topic, partition), offset) in last {
                        if let Some(id) = state.current_lane(&topic, partition)
                            && let Some(lane) = state.lanes.get_mut(&id)
                        {
                            lane.handed = Some(offset);
                        }
                    }
                }
                None => pending = Some(batch),
            }
        }
        // Full: a batch waits for room downstream, or the in-flight byte budget is used up (a
        // batch already read is still handed on: only reading more waits for the budget).
        let budget = ctx.telemetry.budget();
        let mut budget_full = budget.is_full();
        if budget_full && !paused {
            // Until fetching pauses, wait a little for room rather than read on.
            budget_full = waiter
                .block_on(async {
                    tokio::time::timeout(Duration::from_millis(50), budget.room()).await
                })
                .is_err();
        }
        if pending.is_some() || budget_full {
            let since = *full_since.get_or_insert_with(Instant::now);
            if !paused && since.elapsed() >= PAUSE_AFTER {
                if let Ok(assignment) = consumer.assignment() {
                    let _ = consumer.pause(&assignment);
                }
                paused = true;
                tracing::debug!(pipeline = %pipeline, "pipeline full: fetching paused");
            }
        } else {
            full_since = None;
            if paused {
                if let Ok(assignment) = consumer.assignment() {
                    let _ = consumer.resume(&assignment);
                }
                paused = false;
            }
        }
        // While paused (the pipeline is full) poll anyway: it serves rebalances and keeps the
        // member in the group; a record fetched before the pause is kept in the waiting batch.
        let mut batch = pending
            .take()
            .unwrap_or_else(|| Vec::with_capacity(ctx.batch_size.min(1024)));
        let mut timeout = if paused {
            Duration::from_millis(50)
        } else {
            Duration::from_millis(100)
        };
        loop {
            match consumer.poll(timeout) {
                None => break,
                Some(Ok(msg)) => {
                    let mut state = consumer.context().state();
                    if let Some(event) = to_event(&msg, &mut state, &acks) {
                        batch.push(event);
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
                    if connection {
                        tracing::debug!(pipeline = %pipeline, error = %e, "kafka consumer error");
                    } else {
                        tracing::warn!(pipeline = %pipeline, error = %e, "kafka consumer error");
                    }
                    break;
                }
            }
            if paused || budget_full || batch.len() >= ctx.batch_size {
                break;
            }
            timeout = Duration::ZERO;
        }
        {
            // Events of partitions revoked meanwhile belong to their new owner now.
            let state = consumer.context().state();
            if state.revocations != revocations {
                revocations = state.revocations;
                batch.retain(|e| match &*e.position {
                    Position::Kafka {
                        topic, partition, ..
                    } => state.current_lane(topic, *partition).is_some(),
                    _ => true,
                });
            }
        }
        if !batch.is_empty() {
            pending = Some(batch);
        }
    };

    // Events read but not handed on are not acknowledged: they are read again after a restart.
    drop(pending);
    let deadline = Instant::now()
        + ctx
            .drain_timeout
            .saturating_sub(Duration::from_secs(2))
            .max(Duration::from_secs(1));
    {
        let mut state = consumer.context().state();
        let lanes: Vec<u32> = state.lanes.keys().copied().collect();
        state.wait_idle(&lanes, deadline);
        // The last commit: retried for the 2 s kept for it (after a broker outage the group
        // coordinator can take a moment to come back), or what was done is read again.
        let give_up = Instant::now() + Duration::from_secs(2);
        while !state.commit(&consumer, None, CommitMode::Sync) && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(100));
        }
        state.update_lag();
    }
    consumer.unsubscribe();
    // Dropping the consumer leaves the group; the final revocation runs here.
    drop(consumer);
    tracing::info!(pipeline = %pipeline, "kafka consumer closed");
    result
}
