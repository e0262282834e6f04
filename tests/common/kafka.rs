//! Kafka test clients: produce records, collect a topic in the background, read group offsets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Rec {
    /// The payload as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or(serde_json::Value::Null)
    }

    /// The first header with this name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A record to produce: key, payload, headers.
pub type Outgoing = (Option<String>, Vec<u8>, Vec<(&'static str, &'static str)>);

/// Produces records and waits until all are acknowledged.
pub fn produce(brokers: &str, topic: &str, records: impl IntoIterator<Item = Outgoing>) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create()
        .expect("test producer");
    for (key, payload, headers) in records {
        let mut h = OwnedHeaders::new();
        for (name, value) in &headers {
            h = h.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        let mut record: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(topic).payload(&payload[..]).headers(h);
        if let Some(k) = &key {
            record = record.key(k.as_bytes());
        }
        let mut record = record;
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("test producer flush");
}

/// Reads a whole topic from the beginning on a background thread.
pub struct Collector {
    records: Arc<Mutex<Vec<Rec>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    /// Starts reading every partition of `topic` from the beginning.
    pub fn start(brokers: &str, topic: &str, partitions: i32) -> Collector {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("collector-{topic}"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("test consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).expect("assign");
        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (records.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    {
                        let headers = m
                            .headers()
                            .map(|h| {
                                h.iter()
                                    .map(|h| {
                                        (
                                            h.key.to_string(),
                                            String::from_utf8_lossy(h.value.unwrap_or_default())
                                                .into_owned(),
                                        )
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        r.lock().unwrap().push(Rec {
                            partition: m.partition(),
                            offset: m.offset(),
                            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                            payload: m.payload().unwrap_or_default().to_vec(),
                            headers,
                        });
                    }
                }
            }
        });
        Collector {
            records,
            stop,
            thread: Some(thread),
        }
    }

    /// Records read so far.
    pub fn count(&self) -> usize {
        self.records.lock().unwrap().len()
    }

    /// A copy of the records read so far.
    pub fn records(&self) -> Vec<Rec> {
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

/// The group's committed offset per partition (-1 where none).
pub fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(30))
        .expect("committed offsets");
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        })
        .collect()
}

/// The end offset (high watermark) of every partition.
pub fn end_offsets(brokers: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("consumer");
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(30))
                .expect("watermarks")
                .1
        })
        .collect()
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
