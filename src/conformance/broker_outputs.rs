//! The harnesses of the outputs to brokers: Kafka on librdkafka's mock cluster, core NATS and
//! JetStream on a `nats-server` of the test's own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use testkit::kafka::{EndOffsets, TopicReader};
use testkit::nats::NatsServer;
use testkit::unique;

use tokio_util::task::AbortOnDropHandle;

use super::DEADLINE;
use super::harness::OutputHarness as Harness;

/// A payload larger than every limit the harnesses set (a record, a message, a stream's
/// message): the remote refuses it for what it is.
fn too_large() -> Bytes {
    Bytes::from(vec![b'x'; 4000])
}

/// The `kafka` output, producing to a topic of one partition on a mock cluster of its own (one
/// partition, so that the order of the topic is the order of delivery).
pub struct Kafka {
    reader: Arc<Mutex<(TopicReader, Vec<Bytes>)>>,
    topic: String,
    brokers: String,
    // Dropped last: the reader is its client.
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl Kafka {
    pub fn new() -> Kafka {
        let cluster = MockCluster::new(1).expect("a mock cluster");
        let brokers = cluster.bootstrap_servers();
        let topic = unique("out");
        cluster.create_topic(&topic, 1, 1).expect("a topic");
        let reader = TopicReader::with_fetch_wait(&brokers, &topic, 1, 10);
        Kafka {
            reader: Arc::new(Mutex::new((reader, Vec::new()))),
            topic,
            brokers,
            cluster,
        }
    }

    fn with_options(&self, options: &str) -> String {
        format!(
            "kafka: {{brokers: '{}', topic: {}, linger: 1ms, options: {{{options}}}}}",
            self.brokers, self.topic
        )
    }
}

impl Harness for Kafka {
    fn output(&self) -> String {
        self.with_options("")
    }

    /// Every record below the partition's end offset.
    async fn delivered(&self) -> Vec<Bytes> {
        let (reader, brokers, topic) = (
            self.reader.clone(),
            self.brokers.clone(),
            self.topic.clone(),
        );
        let read = tokio::task::spawn_blocking(move || {
            let end = EndOffsets::new(&brokers)
                .of(&topic, 1)
                .expect("end offsets")[0] as usize;
            let mut guard = reader.lock().unwrap_or_else(|e| e.into_inner());
            let (reader, read) = &mut *guard;
            let deadline = std::time::Instant::now() + DEADLINE;
            while read.len() < end {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{topic} not read to its end"
                );
                if let Some(record) = reader.next_record(Duration::from_millis(100)) {
                    read.push(Bytes::from(record.payload));
                }
            }
            read.clone()
        });
        read.await.expect("reading the topic")
    }

    /// Produce requests answered "not enough replicas": the producer sends them again.
    async fn flaky(&self, attempts: u32) -> Option<String> {
        let errors = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; attempts as usize];
        self.cluster.request_errors(RDKafkaApiKey::Produce, &errors);
        Some(self.output())
    }

    /// A record over the producer's `message.max.bytes`.
    async fn refusing(&self) -> Option<(String, Bytes)> {
        Some((self.with_options("message.max.bytes: '1000'"), too_large()))
    }
}

/// The `nats` output, publishing to a subject a subscriber of the harness reads, on a server
/// whose largest message (`max_payload`) is 1 KiB.
pub struct Nats {
    subject: String,
    client: async_nats::Client,
    subscriber: Mutex<(async_nats::Subscriber, Vec<Bytes>)>,
    server: NatsServer,
    _config: tempfile::TempDir,
}

impl Nats {
    pub async fn new() -> Nats {
        let config = tempfile::tempdir().expect("a temporary directory");
        let file = config.path().join("nats.conf");
        std::fs::write(&file, "max_payload: 1024\n").expect("the server's configuration");
        let server = NatsServer::start_with(&["-c", &file.to_string_lossy()]);
        let client = async_nats::connect(server.url()).await.expect("a client");
        let subject = unique("out").replace('-', "_");
        let subscriber = client
            .subscribe(subject.clone())
            .await
            .expect("a subscription");
        client.flush().await.expect("subscribed");
        Nats {
            subject,
            client,
            subscriber: Mutex::new((subscriber, Vec::new())),
            server,
            _config: config,
        }
    }
}

impl Harness for Nats {
    fn output(&self) -> String {
        format!(
            "nats: {{url: '{}', subject: {}}}",
            self.server.url(),
            self.subject
        )
    }

    /// What the subscriber received. The server answers the flush after sending it every
    /// message it had processed before: those the output's confirmations stand for.
    async fn delivered(&self) -> Vec<Bytes> {
        self.client.flush().await.expect("flush");
        let mut guard = self.subscriber.lock().unwrap_or_else(|e| e.into_inner());
        let (subscriber, received) = &mut *guard;
        while let Some(Some(message)) = subscriber.next().now_or_never() {
            received.push(message.payload);
        }
        received.clone()
    }

    /// A message over the server's `max_payload`.
    async fn refusing(&self) -> Option<(String, Bytes)> {
        Some((self.output(), too_large()))
    }
}

/// What JetStream answers a publish while the stream has no leader: a failure that passes.
const NO_LEADER: &[u8] =
    br#"{"error":{"code":503,"err_code":10008,"description":"JetStream cluster not available"}}"#;

/// The `jetstream` output, publishing to a stream of the harness's own.
pub struct JetStream {
    js: jetstream::Context,
    stream: String,
    server: NatsServer,
    /// The responder of [`JetStream::flaky`], while there is one.
    responder: Mutex<Option<AbortOnDropHandle<()>>>,
}

impl JetStream {
    pub async fn new() -> JetStream {
        let server = NatsServer::start();
        let js = server.jetstream().await;
        let stream = unique("out").replace('-', "_");
        testkit::nats::create_stream(&js, &stream, &[format!("{stream}.events")]).await;
        JetStream {
            js,
            stream,
            server,
            responder: Mutex::new(None),
        }
    }

    fn publishing_to(&self, subject: &str) -> String {
        format!(
            "jetstream: {{url: '{}', subject: {subject}}}",
            self.server.url()
        )
    }
}

impl Harness for JetStream {
    fn output(&self) -> String {
        self.publishing_to(&format!("{}.events", self.stream))
    }

    async fn delivered(&self) -> Vec<Bytes> {
        let stored = testkit::nats::read_stream(&self.js, &self.stream).await;
        stored.into_iter().map(|m| m.message.payload).collect()
    }

    /// Publishes through a responder that answers each message's first `attempts` publishes as
    /// a stream without a leader does, and passes the others on to the stream, answering with
    /// the stream's acknowledgement.
    async fn flaky(&self, attempts: u32) -> Option<String> {
        let flaky = format!("{}.flaky", self.stream);
        let client = async_nats::connect(self.server.url())
            .await
            .expect("a client");
        let mut requests = client
            .subscribe(flaky.clone())
            .await
            .expect("a subscription");
        client.flush().await.expect("subscribed");
        let events = format!("{}.events", self.stream);
        let mut seen: std::collections::HashMap<String, u32> = Default::default();
        let responder = tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                let (Some(reply), Some(headers)) = (request.reply, request.headers) else {
                    continue;
                };
                let id = headers.get("Nats-Msg-Id").map(|v| v.to_string());
                let tries = seen.entry(id.unwrap_or_default()).or_default();
                *tries += 1;
                let answer = if *tries <= attempts {
                    Bytes::from_static(NO_LEADER)
                } else {
                    let stored = async_nats::Request::new()
                        .headers(headers)
                        .payload(request.payload);
                    match client.send_request(events.clone(), stored).await {
                        Ok(ack) => ack.payload,
                        Err(_) => continue,
                    }
                };
                let _ = client.publish(reply, answer).await;
            }
        });
        let mut held = self.responder.lock().unwrap_or_else(|e| e.into_inner());
        *held = Some(AbortOnDropHandle::new(responder));
        Some(self.publishing_to(&flaky))
    }

    /// A message over the stream's largest (`max_msg_size`).
    async fn refusing(&self) -> Option<(String, Bytes)> {
        let stream = self.js.get_stream(&self.stream).await.expect("the stream");
        let mut config = stream.cached_info().config.clone();
        config.max_message_size = 1024;
        self.js
            .update_stream(config)
            .await
            .expect("a smaller message size");
        Some((self.output(), too_large()))
    }
}
