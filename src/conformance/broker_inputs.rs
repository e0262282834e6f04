//! The harnesses of the inputs from brokers: Kafka on librdkafka's mock cluster, core NATS and
//! JetStream on a `nats-server` of the test's own.

use bytes::Bytes;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use testkit::nats::NatsServer;
use testkit::unique;

use super::DEADLINE;
use super::harness::InputHarness as Harness;

/// The `kafka` input, reading a topic of one partition (one partition, so that the order of
/// the topic is the order of reading) on a mock cluster of its own. Acknowledged: the offset
/// its group committed.
pub struct Kafka {
    topic: String,
    group: String,
    brokers: String,
    // Runs as long as the harness.
    _cluster: MockCluster<'static, DefaultProducerContext>,
}

impl Kafka {
    pub fn new() -> Kafka {
        let cluster = MockCluster::new(1).expect("a mock cluster");
        let topic = unique("in");
        cluster.create_topic(&topic, 1, 1).expect("a topic");
        Kafka {
            topic,
            group: unique("group"),
            brokers: cluster.bootstrap_servers(),
            _cluster: cluster,
        }
    }
}

impl Harness for Kafka {
    fn input(&self, _: usize) -> String {
        format!(
            "kafka: {{brokers: '{}', topics: [{}], group_id: {}, commit_interval: 100ms, \
             fetch_wait: 20ms, options: {{session.timeout.ms: '6000', heartbeat.interval.ms: '500'}}}}",
            self.brokers, self.topic, self.group
        )
    }

    async fn put(&self, payloads: &[Bytes]) {
        let records: Vec<testkit::kafka::Outgoing> = (payloads.iter())
            .map(|p| (None, p.to_vec(), vec![]))
            .collect();
        let (brokers, topic) = (self.brokers.clone(), self.topic.clone());
        let produced = tokio::task::spawn_blocking(move || {
            testkit::kafka::produce(&brokers, &topic, records);
        });
        produced.await.expect("produce the payloads");
    }

    async fn acknowledged(&self) -> Option<usize> {
        let (brokers, group, topic) =
            (self.brokers.clone(), self.group.clone(), self.topic.clone());
        let committed = tokio::task::spawn_blocking(move || {
            testkit::kafka::committed(&brokers, &group, &topic, 1)[0]
        });
        let committed = committed.await.expect("the committed offset");
        Some(committed.map_or(0, |offset| offset as usize))
    }
}

/// The `nats` input, subscribed to a subject of its own. Core NATS acknowledges nothing and
/// keeps nothing for a subscriber that is not there.
pub struct Nats {
    subject: String,
    client: async_nats::Client,
    monitor: u16,
    server: NatsServer,
}

impl Nats {
    pub async fn new() -> Nats {
        let monitor = testkit::free_port();
        let server = NatsServer::start_with(&["-m", &monitor.to_string()]);
        let client = async_nats::connect(server.url()).await.expect("a client");
        Nats {
            subject: unique("in").replace('-', "_"),
            client,
            monitor,
            server,
        }
    }
}

impl Harness for Nats {
    fn input(&self, _: usize) -> String {
        let (url, subject) = (self.server.url(), &self.subject);
        format!("nats: {{url: '{url}', subjects: [{subject}]}}")
    }

    /// Waits until the server lists the input's subscription.
    async fn ready(&self) {
        let listed = format!("\"{}\"", self.subject);
        testkit::eventually("the input subscribed", DEADLINE, async || {
            let connections = testkit::http_get(self.monitor, "/connz?subs=1");
            connections.filter(|(_, body)| body.contains(&listed))
        })
        .await;
    }

    async fn put(&self, payloads: &[Bytes]) {
        for payload in payloads {
            let subject = self.subject.clone();
            self.client
                .publish(subject, payload.clone())
                .await
                .expect("publish");
        }
        self.client.flush().await.expect("flush");
    }

    fn reads_again(&self) -> bool {
        false
    }
}

/// The `jetstream` input, reading a stream of its own through its durable consumer, a batch of
/// messages a pull request. Acknowledged: the consumer's acknowledgement floor.
pub struct JetStream {
    js: async_nats::jetstream::Context,
    stream: String,
    server: NatsServer,
}

impl JetStream {
    pub async fn new() -> JetStream {
        let server = NatsServer::start();
        let js = server.jetstream().await;
        let stream = unique("in").replace('-', "_");
        testkit::nats::create_stream(&js, &stream, &[format!("{stream}.in")]).await;
        JetStream { js, stream, server }
    }
}

impl Harness for JetStream {
    fn input(&self, _: usize) -> String {
        let (url, stream) = (self.server.url(), &self.stream);
        format!(
            "jetstream: {{url: '{url}', stream: {stream}, consumer: reader, ack_wait: 5s, \
             backoff: [100ms], fetch_batch: {}}}",
            super::harness::BATCH
        )
    }

    async fn put(&self, payloads: &[Bytes]) {
        let subject = format!("{}.in", self.stream);
        let messages = payloads.iter().map(|p| (subject.clone(), p.clone()));
        testkit::nats::publish_all(&self.js, messages).await;
    }

    /// Two pull requests at most are open, the second once the first is half served.
    fn reads_ahead(&self) -> usize {
        let batch = super::harness::BATCH;
        batch + batch / 2
    }

    async fn acknowledged(&self) -> Option<usize> {
        let Ok(stream) = self.js.get_stream(&self.stream).await else {
            return Some(0);
        };
        // Its stream holds the payloads put, from sequence 1: the floor counts them.
        let floor = stream
            .consumer_info("reader")
            .await
            .ok()
            .map(|info| info.ack_floor.stream_sequence);
        Some(floor.unwrap_or(0) as usize)
    }
}
