//! The Kafka test client: produce records (at a pace too) and check each was delivered, read
//! topics back (in the foreground or on a background thread), look up committed and end
//! offsets; and Kafka-to-Kafka pipeline files.

mod collector;
mod pipeline;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Header, Headers as _, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};

use crate::unique;
use crate::wait::Pace;

pub use collector::{Collector, wait_count};
pub use pipeline::KafkaPipeline;

/// A client configuration for `brokers` (`host:port,...`).
pub fn client(brokers: &str) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", brokers);
    cc
}

/// An HTTP access event with id `i` in `msg`, a server error: every example pipeline
/// (`pipelines/kafka-to-kafka.yaml`, the ones of `k8s/`) keeps it and carries `msg` through
/// its reshaping; [`Record::example_id`] reads the id back.
pub fn example_event(i: u64) -> String {
    format!(
        r#"{{"ts":"2026-01-01T00:00:00Z","service":"svc{}","status":503,"latency":0.5,"msg":"{i}"}}"#,
        i % 7
    )
}

/// How often each [`example_event`] id occurs in `records`, and the ids of 0..`n` that never do.
pub fn example_id_counts(records: &[Record], n: u64) -> (HashMap<u64, u64>, Vec<u64>) {
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for r in records {
        *counts.entry(r.example_id()).or_default() += 1;
    }
    let missing = (0..n).filter(|i| !counts.contains_key(i)).collect();
    (counts, missing)
}

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// The key, as text (lossy).
    pub key: Option<String>,
    /// The payload (empty for a null payload).
    pub payload: Vec<u8>,
    /// The headers in order, values as text (lossy).
    pub headers: Vec<(String, String)>,
}

impl Record {
    /// The payload as JSON; panics naming the record when it is not, so a test fails where the
    /// output went wrong rather than on a `null` further on.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| {
            panic!(
                "record {}@{} is not JSON ({e}): {}",
                self.partition,
                self.offset,
                String::from_utf8_lossy(&self.payload)
            )
        })
    }

    /// The payload's `id` field, a number; panics naming the record when it has none.
    pub fn id(&self) -> u64 {
        let v = self.json();
        v["id"].as_u64().unwrap_or_else(|| {
            panic!(
                "record {}@{} without an id: {v}",
                self.partition, self.offset
            )
        })
    }

    /// The id of an [`example_event`] the record was made of.
    pub fn example_id(&self) -> u64 {
        let v = self.json();
        v["msg"]
            .as_str()
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("output record without an example event's id: {v}"))
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn from_message(msg: &BorrowedMessage<'_>) -> Record {
        let headers = msg
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Record {
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            payload: msg.payload().unwrap_or_default().to_vec(),
            headers,
        }
    }
}

/// A record to produce: key, payload, headers.
pub type Outgoing = (Option<String>, Vec<u8>, Vec<(&'static str, &'static str)>);

/// A [`TestProducer`] for `brokers`, batching for up to 5 ms.
pub fn producer(brokers: &str) -> TestProducer {
    let mut config = client(brokers);
    config.set("linger.ms", "5");
    TestProducer::new(config)
}

/// Produces records to `topic` and waits until every one is delivered.
pub fn produce(brokers: &str, topic: &str, records: impl IntoIterator<Item = Outgoing>) {
    let mut producer = producer(brokers);
    for (key, payload, headers) in records {
        producer.send(topic, key.as_deref(), &payload, &headers);
    }
    producer.flush();
}

/// Counts delivery reports of a [`TestProducer`]; remembers the highest offset per partition.
#[derive(Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    high: Mutex<HashMap<i32, i64>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(msg) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                let mut high = self.high.lock().unwrap();
                let e = high.entry(msg.partition()).or_insert(-1);
                *e = (*e).max(msg.offset());
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.first_error
                    .lock()
                    .unwrap()
                    .get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// An idempotent producer of test input that checks every record was delivered.
pub struct TestProducer {
    producer: ThreadedProducer<Deliveries>,
    sent: u64,
}

impl TestProducer {
    /// A producer with `config` (brokers, batching) and idempotence, so a retried request
    /// writes nothing twice and the input of a test is exactly what it sent.
    pub fn new(mut config: ClientConfig) -> TestProducer {
        let producer = config
            .set("enable.idempotence", "true")
            .set("queue.buffering.max.messages", "100000")
            .create_with_context(Deliveries::default())
            .expect("test producer");
        TestProducer { producer, sent: 0 }
    }

    /// Queues one record, waiting while librdkafka's queue is full.
    pub fn send(
        &mut self,
        topic: &str,
        key: Option<&str>,
        payload: &[u8],
        headers: &[(&str, &str)],
    ) {
        let mut owned = OwnedHeaders::new();
        for (k, v) in headers {
            owned = owned.insert(Header {
                key: k,
                value: Some(*v),
            });
        }
        let mut record: BaseRecord<'_, str, [u8]> = BaseRecord::to(topic).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        if !headers.is_empty() {
            record = record.headers(owned);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    // The producer's own thread empties the queue as requests complete.
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => panic!("cannot produce to {topic}: {e}"),
            }
        }
        self.sent += 1;
    }

    /// Waits until every record sent is delivered and asserts none failed.
    pub fn flush(&mut self) {
        self.producer
            .flush(Duration::from_secs(120))
            .expect("flush the test producer");
        let ctx = self.producer.context();
        let failed = ctx.failed.load(Ordering::Relaxed);
        assert_eq!(
            failed,
            0,
            "{failed} test records failed, first: {:?}",
            ctx.first_error.lock().unwrap()
        );
        assert_eq!(ctx.delivered.load(Ordering::Relaxed), self.sent);
    }

    /// The end offset (one past the highest offset delivered) of each partition written to.
    pub fn end_offsets(&self) -> HashMap<i32, i64> {
        self.producer
            .context()
            .high
            .lock()
            .unwrap()
            .iter()
            .map(|(p, o)| (*p, o + 1))
            .collect()
    }

    /// Sends events 0..`n` to `topic` at `per_10ms` events every 10 ms (a [`Pace`]), event `i`
    /// keyed `k{i % keys}` with payload `payload(i)`; `sent(i)` runs once event `i` is queued
    /// (to count what was sent, or hold the next events back). Then waits until every one is
    /// delivered and returns the end offsets.
    pub fn send_paced(
        &mut self,
        topic: &str,
        n: u64,
        per_10ms: u64,
        keys: u64,
        payload: impl Fn(u64) -> String,
        mut sent: impl FnMut(u64),
    ) -> HashMap<i32, i64> {
        let mut pace = Pace::new(per_10ms);
        for i in 0..n {
            pace.before(i);
            self.send(
                topic,
                Some(&format!("k{}", i % keys)),
                payload(i).as_bytes(),
                &[],
            );
            sent(i);
        }
        self.flush();
        self.end_offsets()
    }
}

/// Reads every partition of a topic from the beginning, without joining a group nor
/// committing, and keeps what [`poll`](Self::poll) read.
pub struct TopicReader {
    consumer: BaseConsumer,
    topic: String,
    /// The records read by [`poll`](Self::poll) and [`drain`](Self::drain) so far, in the order
    /// they arrived.
    pub records: Vec<Record>,
}

impl TopicReader {
    /// A reader of partitions 0..`partitions` of `topic`.
    pub fn new(brokers: &str, topic: &str, partitions: i32) -> TopicReader {
        Self::with_fetch_wait(brokers, topic, partitions, 100)
    }

    /// A reader whose fetches wait at most `fetch_wait_ms` for data. librdkafka's mock cluster
    /// answers a fetch only when that wait is up, even with records to give.
    pub fn with_fetch_wait(
        brokers: &str,
        topic: &str,
        partitions: i32,
        fetch_wait_ms: u32,
    ) -> TopicReader {
        Self::from_config(client(brokers), topic, partitions, fetch_wait_ms)
    }

    /// [`with_fetch_wait`](Self::with_fetch_wait) with a client configuration of the caller's
    /// (for brokers that need TLS or SASL).
    pub fn from_config(
        mut config: ClientConfig,
        topic: &str,
        partitions: i32,
        fetch_wait_ms: u32,
    ) -> TopicReader {
        // librdkafka wants a group id even for `assign`; it is never joined nor committed to.
        let consumer: BaseConsumer = config
            .set("group.id", unique("reader"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
            .create()
            .expect("topic reader");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .expect("add partition");
        }
        consumer.assign(&tpl).expect("assign partitions");
        TopicReader {
            consumer,
            topic: topic.to_string(),
            records: Vec::new(),
        }
    }

    /// The next record if one arrives within `timeout`, not kept in
    /// [`records`](Self::records).
    pub fn next_record(&self, timeout: Duration) -> Option<Record> {
        match self.consumer.poll(timeout)? {
            Ok(msg) => Some(Record::from_message(&msg)),
            Err(e) => {
                eprintln!("reading {}: {e}", self.topic);
                None
            }
        }
    }

    /// Reads what is available within about `max_wait`; returns how many records were new.
    pub fn poll(&mut self, max_wait: Duration) -> usize {
        let deadline = Instant::now() + max_wait;
        let before = self.records.len();
        // Reads for the whole window: records keep arriving while a worker writes.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Some(r) = self.next_record(left.min(Duration::from_millis(100))) {
                self.records.push(r);
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        self.records.len() - before
    }

    /// Reads until nothing new arrived for `quiet` (after everything was written and its
    /// writers exited, this is the whole topic).
    pub fn drain(&mut self, quiet: Duration) {
        while self.poll(quiet) > 0 {}
    }
}

/// The offsets `group` committed for partitions 0..`partitions` of `topic` (None: nothing
/// committed).
pub fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = client(brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("offset fetch client");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(30))
        .expect("fetch committed offsets");
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        })
        .collect()
}

/// Asks for end offsets over one client, for callers that ask often (counting a benchmark's
/// output).
pub struct EndOffsets(BaseConsumer);

impl EndOffsets {
    /// A client of `brokers`.
    pub fn new(brokers: &str) -> EndOffsets {
        EndOffsets(client(brokers).create().expect("end offsets client"))
    }

    /// The end offset (high watermark) of partitions 0..`partitions` of `topic`.
    pub fn of(&self, topic: &str, partitions: i32) -> KafkaResult<Vec<i64>> {
        (0..partitions)
            .map(|p| {
                self.0
                    .fetch_watermarks(topic, p, Duration::from_secs(30))
                    .map(|(_, high)| high)
            })
            .collect()
    }
}

/// The end offset (high watermark) of partitions 0..`partitions` of `topic`.
pub fn end_offsets(brokers: &str, topic: &str, partitions: i32) -> Vec<i64> {
    EndOffsets::new(brokers)
        .of(topic, partitions)
        .expect("end offsets")
}
