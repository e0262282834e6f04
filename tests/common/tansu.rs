//! A real Kafka-protocol broker for integration tests: a `tansu` process with in-memory
//! storage, plus small rdkafka helpers to create topics, produce, read topics back, look up
//! committed offsets, and run `sluice` workers whose logs go to files.

use std::collections::HashMap;
use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Headers as _, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};

use super::{free_port, sluice, wait_exit, wait_for};

/// The `tansu` binary: `$TANSU` if set, else `~/.cargo/bin/tansu` if present, else `tansu` on
/// the `PATH`.
fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU") {
        return PathBuf::from(path);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let path = Path::new(&home).join(".cargo/bin/tansu");
        if path.exists() {
            return path;
        }
    }
    PathBuf::from("tansu")
}

pub use super::kafka::unique;

/// A running `tansu` broker, killed when dropped.
pub struct Broker {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker on a free port and waits until it answers metadata requests.
    pub fn start() -> Broker {
        // A port picked free can be taken by someone else before tansu binds it: retry.
        let mut last_error = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let log = dir.path().join("tansu.log");
            let port = free_port();
            let url = format!("tcp://127.0.0.1:{port}");
            let out = File::create(&log).expect("create broker log");
            let err = out.try_clone().expect("clone broker log");
            let child = Command::new(tansu_binary())
                .arg("broker")
                .args(["--listener-url", &url])
                .args(["--advertised-listener-url", &url])
                .args(["--storage-engine", "memory://tansu/"])
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", tansu_binary().display()));
            let mut broker = Broker {
                child,
                port,
                log,
                _dir: dir,
            };
            match broker.wait_ready(Duration::from_secs(30)) {
                Ok(()) => return broker,
                // Dropping the broker kills it.
                Err(e) => last_error = format!("{e}; broker log:\n{}", broker.log_text()),
            }
        }
        panic!("tansu did not become ready: {last_error}");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until the port accepts connections and a metadata request succeeds.
    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("tansu exited early: {status}"));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!("port {} never accepted connections", self.port));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let consumer: BaseConsumer = self
            .config()
            .create()
            .map_err(|e| format!("metadata client: {e}"))?;
        loop {
            match consumer.fetch_metadata(None, Duration::from_secs(2)) {
                Ok(md) if !md.brokers().is_empty() => return Ok(()),
                Ok(_) => {}
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("metadata request never succeeded: {e}"));
                }
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Err("metadata listed no brokers".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `127.0.0.1:PORT`, for `brokers:` in pipeline files.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's own log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client configuration pointing at this broker.
    pub fn config(&self) -> ClientConfig {
        let mut cc = ClientConfig::new();
        cc.set("bootstrap.servers", self.address());
        cc
    }

    /// Creates topics (name, partitions) and waits until their metadata lists every partition.
    pub fn create_topics(&self, topics: &[(&str, i32)]) {
        let admin: AdminClient<DefaultClientContext> =
            self.config().create().expect("admin client");
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = runtime
            .block_on(admin.create_topics(new.iter(), &opts))
            .expect("create topics request");
        for result in results {
            if let Err((topic, code)) = result {
                panic!("cannot create topic {topic}: {code:?}");
            }
        }
        let probe: BaseConsumer = self.config().create().expect("metadata client");
        for (name, partitions) in topics {
            wait_for(
                &format!("metadata of topic {name}"),
                Duration::from_secs(30),
                || {
                    let md = probe
                        .fetch_metadata(Some(name), Duration::from_secs(2))
                        .ok()?;
                    let topic = md.topics().iter().find(|t| t.name() == *name)?;
                    (topic.error().is_none() && topic.partitions().len() == *partitions as usize)
                        .then_some(())
                },
            );
        }
    }

    /// The state of a consumer group (`Stable`, `PreparingRebalance`, ...) and its members.
    pub fn group(&self, group: &str) -> Option<(String, usize)> {
        let consumer: BaseConsumer = self.config().create().ok()?;
        let list = consumer
            .fetch_group_list(Some(group), Duration::from_secs(5))
            .ok()?;
        let g = list.groups().iter().find(|g| g.name() == group)?;
        Some((g.state().to_string(), g.members().len()))
    }

    /// A producer writing to this broker; see [`TestProducer`].
    pub fn producer(&self) -> TestProducer {
        TestProducer::new(self)
    }

    /// The offsets `group` committed for partitions 0..partitions of `topic` (None: nothing
    /// committed).
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("offset fetch client");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        let got = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("fetch committed offsets");
        (0..partitions)
            .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Counts delivery reports of a [`TestProducer`]; remembers the highest offset per partition.
#[derive(Default)]
pub struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
    high: std::sync::Mutex<HashMap<i32, i64>>,
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

/// An idempotent producer for test input; every record must be delivered.
///
/// It writes one record per record batch. tansu 0.6.0 answers a fetch that starts inside a
/// record batch with no data at all (Kafka returns the batch holding the offset), so a consumer
/// that resumes from an offset inside a batch (a committed offset handed to a new group member,
/// or librdkafka's restart from the last consumed offset after `resume`, which sluice calls after
/// pausing for backpressure) waits forever. With single-record batches every offset starts one.
pub struct TestProducer {
    producer: ThreadedProducer<Deliveries>,
    sent: u64,
}

impl TestProducer {
    fn new(broker: &Broker) -> TestProducer {
        let producer = broker
            .config()
            .set("enable.idempotence", "true")
            .set("batch.num.messages", "1")
            .set("linger.ms", "1")
            .set("queue.buffering.max.messages", "100000")
            .create_with_context(Deliveries::default())
            .expect("producer");
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
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    record = back;
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
}

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Record {
    /// The payload as JSON (panics when it is not).
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

/// Reads every partition of a topic from the beginning, without a consumer group, and keeps
/// what it read.
pub struct TopicReader {
    consumer: BaseConsumer,
    topic: String,
    pub records: Vec<Record>,
}

impl TopicReader {
    pub fn new(broker: &Broker, topic: &str, partitions: i32) -> TopicReader {
        // librdkafka wants a group id even for `assign`; it is never joined nor committed to.
        let consumer: BaseConsumer = broker
            .config()
            .set("group.id", unique("reader"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("reader");
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

    /// Reads what is available within about `max_wait`; returns how many records were new.
    pub fn poll(&mut self, max_wait: Duration) -> usize {
        let deadline = Instant::now() + max_wait;
        let before = self.records.len();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.consumer.poll(left.min(Duration::from_millis(100))) {
                Some(Ok(msg)) => self.records.push(Record::from_message(&msg)),
                Some(Err(e)) => eprintln!("reading {}: {e}", self.topic),
                None if left.is_zero() => break,
                None => {}
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

/// A partition a worker held: (partition, assigned at, revoked at), timestamps as logged
/// (RFC 3339, UTC, fixed width, so they compare as strings); `None` while still held.
pub type Ownership = (i64, String, Option<String>);

/// A `sluice run --log-format json` process whose stderr goes to a file; killed when dropped.
pub struct Worker {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Worker {
    /// Starts `sluice run` on `pipeline`, with `WORKER=name` in its environment.
    pub fn start(dir: &Path, name: &str, pipeline: &Path) -> Worker {
        let log = dir.join(format!("{name}.log"));
        let err = File::create(&log).expect("create worker log");
        let child = sluice()
            .args(["run", "--log-format", "json"])
            .arg(pipeline)
            .env("WORKER", name)
            // With `debug: cgrp` in the pipeline's consumer options, librdkafka's group
            // protocol messages land in the log (see `is_group_leader`).
            .env("RUST_LOG", "info,librdkafka=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start sluice");
        Worker {
            name: name.to_string(),
            child,
            log,
        }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// For failure messages: the partitions held, the log's last lines, and where the whole
    /// log was kept (copied out of the test's temporary directory).
    pub fn report(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        let kept =
            std::env::temp_dir().join(format!("{}-{}.log", unique("sluice-test"), self.name));
        let kept = match std::fs::write(&kept, &log) {
            Ok(()) => kept.display().to_string(),
            Err(e) => format!("(not kept: {e})"),
        };
        format!(
            "--- {} holds {:?}; whole log: {kept}; last lines:\n{tail}",
            self.name,
            self.assigned()
        )
    }

    /// The JSON log records with the given message so far.
    pub fn records(&self, message: &str) -> Vec<serde_json::Value> {
        super::log_records(&self.log(), message)
    }

    /// Whether the worker's last successful JoinGroup made it the group leader, according to
    /// librdkafka's `cgrp` debug messages in its log.
    pub fn is_group_leader(&self) -> bool {
        let mut leader = false;
        for line in self.log().lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let message = v["message"].as_str().unwrap_or_default();
            if message.contains("JoinGroup response: GenerationId")
                && !message.contains("GenerationId -1")
            {
                leader = message.contains("(me)");
            }
        }
        leader
    }

    /// Partitions the worker holds according to its log (assigned minus revoked, in order).
    pub fn assigned(&self) -> Vec<i64> {
        let mut held = Vec::new();
        for line in self.log().lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            match (v["message"].as_str(), v["partition"].as_i64()) {
                (Some("partition assigned"), Some(p)) => held.push(p),
                (Some("partition revoked"), Some(p)) => held.retain(|q| *q != p),
                _ => {}
            }
        }
        held
    }

    /// When the worker held which partition, according to its log.
    pub fn ownership(&self) -> Vec<Ownership> {
        let mut spans: Vec<Ownership> = Vec::new();
        for line in self.log().lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let at = v["timestamp"].as_str().unwrap_or_default().to_string();
            match (v["message"].as_str(), v["partition"].as_i64()) {
                (Some("partition assigned"), Some(p)) => spans.push((p, at, None)),
                (Some("partition revoked"), Some(p)) => {
                    if let Some(span) = spans.iter_mut().find(|s| s.0 == p && s.2.is_none()) {
                        span.2 = Some(at);
                    }
                }
                _ => {}
            }
        }
        spans
    }

    pub fn signal(&self, sig: &str) {
        super::signal(&self.child, sig);
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        wait_exit(&mut self.child, timeout)
    }

    /// SIGTERM, then waits for the exit and asserts it was 0; returns the `pipeline stopped`
    /// record.
    pub fn stop(&mut self, timeout: Duration) -> serde_json::Value {
        self.signal("TERM");
        self.stopped(timeout)
    }

    /// After a SIGTERM sent earlier: waits for the exit and asserts it was 0; returns the
    /// `pipeline stopped` record. (A second SIGTERM would make sluice exit at once.)
    pub fn stopped(&mut self, timeout: Duration) -> serde_json::Value {
        let status = self.wait(timeout);
        assert!(
            status.success(),
            "worker {} exited with {status} after SIGTERM; log:\n{}",
            self.name,
            self.log()
        );
        self.records("pipeline stopped")
            .pop()
            .unwrap_or_else(|| panic!("worker {} logged no summary:\n{}", self.name, self.log()))
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("SLUICE_TEST_KEEP_LOGS").is_some() {
            let kept =
                std::env::temp_dir().join(format!("{}-{}.log", unique("sluice-test"), self.name));
            if std::fs::copy(&self.log, &kept).is_ok() {
                eprintln!("log of worker {} kept at {}", self.name, kept.display());
            }
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
