//! Reading a whole topic on a background thread, and waiting until enough records arrived.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Record, TopicReader};
use crate::wait::try_eventually;

/// Reads a whole topic from the beginning on a background thread until dropped.
pub struct Collector {
    records: Arc<Mutex<Vec<Record>>>,
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    /// Starts reading partitions 0..`partitions` of `topic`, keeping every record.
    pub fn start(brokers: &str, topic: &str, partitions: i32) -> Collector {
        Self::spawn(TopicReader::new(brokers, topic, partitions), true)
    }

    /// Starts counting the records of partitions 0..`partitions` of `topic` without keeping
    /// them (millions of them, in a benchmark), fetching with waits of at most 10 ms so the
    /// count is soon up to date.
    pub fn counting(brokers: &str, topic: &str, partitions: i32) -> Collector {
        Self::spawn(
            TopicReader::with_fetch_wait(brokers, topic, partitions, 10),
            false,
        )
    }

    fn spawn(reader: TopicReader, keep: bool) -> Collector {
        let records = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (records, count, stop) = (records.clone(), count.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(r) = reader.next_record(Duration::from_millis(100)) {
                        if keep {
                            records.lock().unwrap().push(r);
                        }
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        Collector {
            records,
            count,
            stop,
            thread: Some(thread),
        }
    }

    /// Records read so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// The [`id`](Record::id) of each record read so far, in the order read.
    pub fn ids(&self) -> Vec<u64> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .map(Record::id)
            .collect()
    }

    /// A copy of the records read so far (none for a [`counting`](Self::counting) collector).
    pub fn records(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until `c` has read `n` records, or panics after `timeout` naming `what` and how many
/// it read.
pub async fn wait_count(what: &str, c: &Collector, n: usize, timeout: Duration) {
    let done = try_eventually(timeout, async || (c.count() >= n).then_some(())).await;
    assert!(
        done.is_some(),
        "timed out waiting for {what}: {} of {n}",
        c.count()
    );
}
