//! An Apache Kafka broker of the caller's own: one node in KRaft mode (broker and controller in
//! one JVM) on free loopback ports, its storage formatted with a fresh cluster id in a temp
//! dir; optionally with TLS, mutual TLS and SASL (PLAIN and SCRAM-SHA-512) listeners beside the
//! plaintext one. It can be stopped or killed and started again on the same storage, and is
//! killed when dropped.
//!
//! The jars come from `scripts/setup.sh kafka` (the pom in `scripts/apache-kafka/`); the
//! one-node settings are `scripts/apache-kafka/server.properties`, shared with
//! `scripts/kafka.sh`.

mod setup;

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::kafka::{TestProducer, TopicReader, client};
use crate::pki::Pki;
use crate::process::Process;
use crate::wait::{try_wait_for, wait_for};

pub use setup::Listener;
use setup::java;

/// The user the SASL listeners know, for PLAIN and SCRAM-SHA-512 alike.
pub const USER: &str = "sluice";
/// [`USER`]'s password.
pub const PASSWORD: &str = "Kafka-Test-Secret-1";

/// How long a start may take: formatting, the JVM, loading the logs after a restart, on a
/// machine that is also building and running tests.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A running (or stopped) single-node Apache Kafka, killed when dropped.
pub struct Broker {
    /// The ports of its listeners.
    ports: Vec<(Listener, u16)>,
    /// The port of the controller's own listener.
    controller_port: u16,
    /// Its JVM; None while stopped. Dropped (killed) before the storage is removed.
    process: Option<Process>,
    /// Settings, storage and the broker's log.
    dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker with a plaintext listener and waits until it answers metadata requests;
    /// panics when it cannot.
    pub fn start() -> Broker {
        Self::try_start(None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`start`](Self::start), with TLS, mutual TLS, SASL and SASL-over-TLS listeners too,
    /// using `pki`'s `broker.pem` and trusting its `ca.pem`; the SASL listeners know [`USER`]
    /// (PLAIN and SCRAM-SHA-512).
    pub fn start_secured(pki: &Pki) -> Broker {
        Self::try_start(Some(pki)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`start`](Self::start), with a [`Listener::Containers`] too: what containers on this
    /// machine reach it at is [`address_in_containers`](Self::address_in_containers).
    pub fn start_for_containers() -> Broker {
        Self::try_start_with(&[Listener::Plaintext, Listener::Containers], None)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A broker, or why not (Kafka not installed, or not ready in time), for callers that can
    /// go on without one.
    pub fn try_start(pki: Option<&Pki>) -> Result<Broker, String> {
        let listeners: Vec<Listener> = std::iter::once(Listener::Plaintext)
            .chain(pki.map(|_| Listener::SECURED).into_iter().flatten())
            .collect();
        Self::try_start_with(&listeners, pki)
    }

    fn try_start_with(listeners: &[Listener], pki: Option<&Pki>) -> Result<Broker, String> {
        // A port picked free can be taken by someone else before the broker binds it: retry
        // with other ports.
        let mut last_error = String::new();
        for _ in 0..3 {
            let mut broker = Broker {
                ports: listeners.iter().map(|l| (*l, crate::free_port())).collect(),
                controller_port: crate::free_port(),
                process: None,
                dir: tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?,
            };
            broker.write_settings(pki)?;
            broker.format(pki.is_some())?;
            match broker.try_resume() {
                Ok(()) => return Ok(broker),
                Err(e) => last_error = e,
            }
        }
        Err(format!("Apache Kafka did not become ready: {last_error}"))
    }

    /// Starts the JVM on the broker's storage and waits until it is ready.
    fn try_resume(&mut self) -> Result<(), String> {
        let dir = self.dir.path();
        let out = File::options()
            .create(true)
            .append(true)
            .open(dir.join("stdout.log"))
            .map_err(|e| format!("broker stdout: {e}"))?;
        let err = out.try_clone().map_err(|e| format!("broker stdout: {e}"))?;
        let child = java(dir)
            .arg("kafka.Kafka")
            .arg(dir.join("server.properties"))
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("cannot run java: {e}"))?;
        self.process = Some(Process(child));
        match self.wait_ready(READY_TIMEOUT) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.kill();
                Err(format!("{e}\n--- broker log (tail):\n{}", self.log_tail()))
            }
        }
    }

    /// Waits until the plaintext port accepts connections and a metadata request lists the
    /// broker.
    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port(Listener::Plaintext)).into();
        let process = self.process.as_mut().ok_or("not started")?;
        try_wait_for(timeout, || {
            if let Ok(Some(status)) = process.try_wait() {
                return Some(Err(format!("the broker exited early: {status}")));
            }
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .is_ok()
                .then_some(Ok(()))
        })
        .unwrap_or_else(|| Err(format!("port {} never accepted connections", addr.port())))?;
        let consumer: BaseConsumer = self
            .config()
            .create()
            .map_err(|e| format!("metadata client: {e}"))?;
        let mut last = String::from("no answer");
        try_wait_for(timeout, || {
            match consumer.fetch_metadata(None, Duration::from_secs(2)) {
                Ok(md) if !md.brokers().is_empty() => Some(()),
                Ok(_) => {
                    last = "metadata listed no brokers".into();
                    None
                }
                Err(e) => {
                    last = format!("metadata request never succeeded: {e}");
                    None
                }
            }
        })
        .ok_or(last)
    }

    /// Stops the broker as an operator would (SIGTERM: a controlled shutdown that flushes its
    /// logs) and waits until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            crate::signal(&process, "TERM");
            if try_wait_for(Duration::from_secs(60), || {
                process.try_wait().ok().flatten()
            })
            .is_none()
            {
                panic!(
                    "the broker did not stop within 60 s of SIGTERM\n{}",
                    self.log_tail()
                );
            }
        }
    }

    /// Kills the broker (SIGKILL: what it had not written to disk is lost, as in a crash).
    pub fn kill(&mut self) {
        // Dropping the process kills it and waits.
        self.process = None;
    }

    /// Starts a stopped or killed broker again on the same ports and storage, and waits until
    /// it answers metadata requests.
    pub fn resume(&mut self) {
        assert!(self.process.is_none(), "the broker is running");
        self.try_resume().unwrap_or_else(|e| panic!("restart: {e}"));
    }

    fn port(&self, listener: Listener) -> u16 {
        self.ports
            .iter()
            .find(|(l, _)| *l == listener)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("the broker has no {listener:?} listener"))
    }

    /// `127.0.0.1:PORT` of the plaintext listener, for `brokers:` in pipeline files and for
    /// the clients of [`kafka`](crate::kafka).
    pub fn address(&self) -> String {
        self.address_of(Listener::Plaintext)
    }

    /// `127.0.0.1:PORT` of `listener`; panics when the broker has none.
    pub fn address_of(&self, listener: Listener) -> String {
        format!("127.0.0.1:{}", self.port(listener))
    }

    /// `host.containers.internal:PORT`: where containers on this machine's podman networks
    /// reach the broker; panics when it was not started with
    /// [`start_for_containers`](Self::start_for_containers).
    pub fn address_in_containers(&self) -> String {
        format!(
            "host.containers.internal:{}",
            self.port(Listener::Containers)
        )
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("broker.log")
    }

    /// The broker's own log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
            + &std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    /// The last lines of the broker's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = self.log_text();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// A client configuration for the plaintext listener.
    pub fn config(&self) -> ClientConfig {
        client(&self.address())
    }

    /// A reader of partitions 0..`partitions` of `topic` on this broker.
    pub fn reader(&self, topic: &str, partitions: i32) -> TopicReader {
        TopicReader::new(&self.address(), topic, partitions)
    }

    /// Creates topics (name, partitions) and waits until their metadata lists every partition
    /// with a leader.
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
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
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
                    let led = topic.partitions().iter().all(|p| p.leader() >= 0);
                    (topic.error().is_none()
                        && topic.partitions().len() == *partitions as usize
                        && led)
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

    /// A new topic of `partitions` holding events 0..`n` (`payload(i)`, key `key{i}`), and a
    /// new consumer group name: (topic, group).
    pub fn input(
        &self,
        partitions: i32,
        n: u64,
        payload: impl Fn(u64) -> String,
    ) -> (String, String) {
        let (topic, group) = (crate::unique("in"), crate::unique("group"));
        self.create_topics(&[(&topic, partitions)]);
        let records = (0..n).map(|i| (Some(format!("key{i}")), payload(i).into_bytes(), vec![]));
        crate::kafka::produce(&self.address(), &topic, records);
        (topic, group)
    }

    /// A producer of test input to this broker.
    pub fn producer(&self) -> TestProducer {
        crate::kafka::producer(&self.address())
    }
}
