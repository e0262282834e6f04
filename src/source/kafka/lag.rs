//! The consumer lag of each assigned partition: the high watermark less the group's committed
//! offset, the broker's own view. Both are asked of the broker as soon as a partition is
//! assigned and every `lag_interval` after, by a client of its own on a thread of its own, so the
//! poll loop never waits on these round trips; statistics and commits keep them current in
//! between. A partition's series exists only while its lag is known and the partition is owned.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use super::StartFrom;
use crate::observe::events::emit;
use crate::observe::events::kafka::{LagClientError, LagClientLog, LagUnread};
use crate::observe::partitions;
use crate::source::SourceError;

/// Longest wait for one answer of the broker (committed offsets, or one partition's
/// watermarks): a slow broker delays the next refresh, never the poll loop.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// What is known of one partition. Both only move forward while the partition is owned: the
/// high watermark with new records, the committed offset with this member's commits (no one
/// else commits a partition its group assigned to this member).
#[derive(Default)]
struct Known {
    high: Option<i64>,
    committed: Option<i64>,
    /// `committed` is where reading starts for want of a committed offset (see
    /// [`Lag::nothing_committed`]): the first offset committed replaces it.
    guessed: bool,
}

/// The lag of the partitions assigned to one consumer.
pub(super) struct Lag {
    pipeline: Arc<str>,
    start_from: StartFrom,
    parts: Mutex<HashMap<(Arc<str>, i32), Known>>,
    /// Wakes the probe for a new assignment.
    nudge: SyncSender<()>,
}

impl Lag {
    /// The lag book of `pipeline`, and the receiving end of its nudges for [`spawn_probe`].
    pub(super) fn new(pipeline: Arc<str>, start_from: StartFrom) -> (Arc<Lag>, Receiver<()>) {
        let (nudge, nudged) = std::sync::mpsc::sync_channel(1);
        let lag = Lag {
            pipeline,
            start_from,
            parts: Mutex::new(HashMap::new()),
            nudge,
        };
        (Arc::new(lag), nudged)
    }

    fn parts(&self) -> MutexGuard<'_, HashMap<(Arc<str>, i32), Known>> {
        // Every change is one field set under the lock: still consistent after a panic.
        self.parts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A partition is assigned: its lag is asked of the broker at once.
    pub(super) fn assigned(&self, topic: &str, partition: i32) {
        self.parts()
            .entry((Arc::from(topic), partition))
            .or_default();
        match self.nudge.try_send(()) {
            // Full: the probe is woken already and will see this partition too.
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }

    /// A partition is revoked: its new owner reports it, this member no longer does.
    pub(super) fn revoked(&self, topic: &str, partition: i32) {
        let mut parts = self.parts();
        if parts.remove(&(Arc::from(topic), partition)).is_some() {
            partitions::remove_lag(&self.pipeline, topic, partition);
        }
    }

    /// The consumer is closing: none of its partitions is reported any more.
    pub(super) fn clear(&self) {
        let mut parts = self.parts();
        for ((topic, partition), _) in parts.drain() {
            partitions::remove_lag(&self.pipeline, &topic, partition);
        }
    }

    /// A high watermark seen (statistics or the probe).
    pub(super) fn high(&self, topic: &str, partition: i32, high: i64) {
        if high < 0 {
            return;
        }
        self.update(topic, partition, |k| {
            k.high = Some(k.high.map_or(high, |h| h.max(high)));
        });
    }

    /// An offset the group committed for the partition (a commit confirmed, or the probe).
    pub(super) fn committed(&self, topic: &str, partition: i32, offset: i64) {
        if offset < 0 {
            return;
        }
        self.update(topic, partition, |k| {
            k.committed = Some(match k.committed {
                Some(c) if !k.guessed => c.max(offset),
                _ => offset,
            });
            k.guessed = false;
        });
    }

    /// The group has no committed offset for the partition: reading starts at `start_from`,
    /// the low watermark (`earliest`) or the high one (`latest`).
    fn nothing_committed(&self, topic: &str, partition: i32, low: i64, high: i64) {
        let start = match self.start_from {
            StartFrom::Earliest => low,
            StartFrom::Latest => high,
        };
        self.update(topic, partition, |k| {
            if k.committed.is_none() {
                k.committed = Some(start);
                k.guessed = true;
            }
        });
    }

    /// Changes what is known of an owned partition, and publishes its lag once both ends are
    /// known. A partition no longer owned is left alone: an answer can arrive after a revoke.
    fn update(&self, topic: &str, partition: i32, change: impl FnOnce(&mut Known)) {
        let mut parts = self.parts();
        let Some(known) = parts.get_mut(&(Arc::from(topic), partition)) else {
            return;
        };
        change(known);
        if let (Some(high), Some(committed)) = (known.high, known.committed) {
            let lag = (high - committed).max(0) as u64;
            partitions::set_lag(&self.pipeline, topic, partition, lag);
        }
    }

    /// The partitions owned now.
    fn owned(&self) -> Vec<(Arc<str>, i32)> {
        self.parts().keys().cloned().collect()
    }
}

/// A client context that only logs, at debug level: the consumer's own client reports the
/// brokers' state.
struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        emit(LagClientLog {
            level: &level,
            fac,
            message,
        });
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        emit(LagClientError {
            error: &error,
            reason,
        });
    }
}

impl ConsumerContext for Quiet {}

/// Starts the thread that asks the broker for the watermarks and committed offsets of the owned
/// partitions: at once when woken by an assignment, and every `every`. It ends when `lag`'s
/// consumer is gone (the nudges' sender dropped).
pub(super) fn spawn_probe(
    consumer_config: &ClientConfig,
    lag: &Arc<Lag>,
    nudged: Receiver<()>,
    every: Duration,
) -> Result<(), SourceError> {
    let mut config = consumer_config.clone();
    // The probe never joins the group; it only reads the group's offsets.
    config.remove("group.instance.id");
    config.set("statistics.interval.ms", "0");
    let client: BaseConsumer<Quiet> = config
        .create_with_context(Quiet)
        .map_err(|e| SourceError::KafkaClient(e.into()))?;
    let lag = Arc::downgrade(lag);
    std::thread::Builder::new()
        .name("kafka-lag".into())
        .spawn(move || {
            loop {
                match nudged.recv_timeout(every) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                let Some(lag) = lag.upgrade() else { return };
                probe(&client, &lag);
            }
        })
        .map_err(|source| SourceError::Io {
            input: "kafka",
            path: None,
            source,
        })?;
    Ok(())
}

/// Asks the broker once for the owned partitions' committed offsets and watermarks.
fn probe(client: &BaseConsumer<Quiet>, lag: &Lag) {
    let owned = lag.owned();
    if owned.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in &owned {
        tpl.add_partition(topic, *partition);
    }
    let committed = match client.committed_offsets(tpl, QUERY_TIMEOUT) {
        Ok(committed) => Some(committed),
        Err(e) => {
            emit(LagUnread {
                pipeline: &lag.pipeline,
                partition: None,
                error: &e,
            });
            None
        }
    };
    for (topic, partition) in &owned {
        let (low, high) = match client.fetch_watermarks(topic, *partition, QUERY_TIMEOUT) {
            Ok(marks) => marks,
            Err(e) => {
                emit(LagUnread {
                    pipeline: &lag.pipeline,
                    partition: Some((&**topic, *partition)),
                    error: &e,
                });
                continue;
            }
        };
        lag.high(topic, *partition, high);
        let offset = committed
            .as_ref()
            .and_then(|c| c.find_partition(topic, *partition))
            .map(|e| (e.offset(), e.error()));
        match offset {
            Some((Offset::Offset(o), Ok(()))) => lag.committed(topic, *partition, o),
            Some((Offset::Invalid, Ok(()))) => lag.nothing_committed(topic, *partition, low, high),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(pipeline: &str) -> String {
        let mut text = String::new();
        partitions::render(&mut text, "lag");
        text.lines()
            .filter(|l| l.contains(&format!("pipeline=\"{pipeline}\"")))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn lag_is_absent_until_both_ends_are_known_and_removed_on_revoke() {
        let (lag, _nudged) = Lag::new("lag-test".into(), StartFrom::Earliest);
        lag.assigned("t", 0);
        lag.high("t", 0, 100);
        assert_eq!(
            series("lag-test"),
            "",
            "the committed offset is not known yet"
        );
        lag.committed("t", 0, 40);
        assert!(series("lag-test").ends_with("partition=\"0\"} 60"));
        // An older answer does not move it back.
        lag.committed("t", 0, 30);
        lag.high("t", 0, 90);
        assert!(series("lag-test").ends_with("partition=\"0\"} 60"));
        lag.revoked("t", 0);
        assert_eq!(series("lag-test"), "");
        // An answer arriving after the revoke is ignored.
        lag.committed("t", 0, 50);
        assert_eq!(series("lag-test"), "");
    }

    #[test]
    fn with_nothing_committed_reading_starts_where_start_from_says() {
        let (earliest, _a) = Lag::new("lag-earliest".into(), StartFrom::Earliest);
        earliest.assigned("t", 1);
        earliest.nothing_committed("t", 1, 10, 25);
        earliest.high("t", 1, 25);
        assert!(series("lag-earliest").ends_with("partition=\"1\"} 15"));
        let (latest, _b) = Lag::new("lag-latest".into(), StartFrom::Latest);
        latest.assigned("t", 1);
        latest.nothing_committed("t", 1, 10, 25);
        latest.high("t", 1, 25);
        assert!(series("lag-latest").ends_with("partition=\"1\"} 0"));
        // Once the member commits, the commit counts.
        latest.committed("t", 1, 20);
        latest.high("t", 1, 30);
        assert!(series("lag-latest").ends_with("partition=\"1\"} 10"));
        earliest.clear();
        latest.clear();
        assert_eq!(series("lag-earliest"), "");
        assert_eq!(series("lag-latest"), "");
    }
}
