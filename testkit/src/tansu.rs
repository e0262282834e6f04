//! A real Kafka-protocol broker of the caller's own: a `tansu` process with in-memory storage
//! on a free port, killed when dropped.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::kafka::{TestProducer, TopicReader, client};
use crate::process::Process;
use crate::tls_proxy::TlsProxy;
use crate::wait::{try_wait_for, wait_for};

/// The `tansu` binary: `$TANSU` if set, else `~/.cargo/bin/tansu` if present (where
/// `scripts/setup.sh` installs it), else `tansu` on the `PATH`.
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

/// A running `tansu` broker, killed when dropped.
pub struct Broker {
    port: u16,
    log: PathBuf,
    /// librdkafka properties every client of this broker needs (TLS, SASL).
    client: Vec<(String, String)>,
    /// Started with `--authentication` and no way for a client in.
    refuses_logins: bool,
    // Killed before the directory holding its log is removed.
    process: Process,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker on a free port and waits until it answers metadata requests; panics
    /// when it cannot.
    pub fn start() -> Broker {
        Self::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`start`](Self::start), or why not (`tansu` not installed, or not ready in time), for
    /// callers that can go on without a broker.
    pub fn try_start() -> Result<Broker, String> {
        Self::try_start_with(false, &[], None)
    }

    /// [`start`](Self::start) behind a TLS front it is reached and advertised through (tansu
    /// 0.6 cannot serve TLS itself: its `--cert` and `--key` options exclude each other), with
    /// the librdkafka properties its clients then need.
    pub fn start_behind(front: &TlsProxy, client: &[(&str, &str)]) -> Broker {
        Self::try_start_with(false, client, Some(front)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A broker requiring SASL that no client can pass, waited for only until it listens:
    /// tansu 0.6 with `--authentication` offers SCRAM only, and its users cannot be created
    /// then (creating one needs an authenticated client). For tests of refused logins.
    pub fn start_refusing_logins() -> Broker {
        Self::try_start_with(true, &[], None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A broker; with `refuses_logins`, requiring SASL (`--authentication`) and waited for only
    /// until it listens.
    fn try_start_with(
        refuses_logins: bool,
        client: &[(&str, &str)],
        front: Option<&TlsProxy>,
    ) -> Result<Broker, String> {
        // A port picked free can be taken by someone else before tansu binds it: retry.
        let mut last_error = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
            let log = dir.path().join("tansu.log");
            let port = crate::free_port();
            let listener = format!("tcp://127.0.0.1:{port}");
            if let Some(front) = front {
                front.forward_to(port);
            }
            let advertised = front.map_or(port, TlsProxy::port);
            let url = format!("tcp://127.0.0.1:{advertised}");
            let out = File::create(&log).map_err(|e| format!("create broker log: {e}"))?;
            let err = out
                .try_clone()
                .map_err(|e| format!("clone broker log: {e}"))?;
            let child = Command::new(tansu_binary())
                .arg("broker")
                .args(["--listener-url", &listener])
                .args(["--advertised-listener-url", &url])
                .args(["--storage-engine", "memory://tansu/"])
                .args(refuses_logins.then_some("--authentication"))
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err))
                .spawn()
                .map_err(|e| {
                    format!(
                        "cannot start {} (scripts/setup.sh test installs it): {e}",
                        tansu_binary().display()
                    )
                })?;
            let mut broker = Broker {
                port: advertised,
                log,
                client: client
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                refuses_logins,
                process: Process(child),
                _dir: dir,
            };
            match broker.wait_ready(Duration::from_secs(30)) {
                Ok(()) => return Ok(broker),
                // Dropping the broker kills it.
                Err(e) => last_error = format!("{e}; broker log:\n{}", broker.log_text()),
            }
        }
        Err(format!("tansu did not become ready: {last_error}"))
    }

    /// Waits until the port accepts connections and a metadata request lists a broker.
    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let listening = try_wait_for(timeout, || {
            if let Ok(Some(status)) = self.process.try_wait() {
                return Some(Err(format!("tansu exited early: {status}")));
            }
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .is_ok()
                .then_some(Ok(()))
        });
        listening
            .unwrap_or_else(|| Err(format!("port {} never accepted connections", self.port)))?;
        if self.refuses_logins {
            return Ok(());
        }
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

    /// `127.0.0.1:PORT`, for `brokers:` in pipeline files and for the clients of
    /// [`kafka`](crate::kafka).
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's own log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client configuration pointing at this broker.
    pub fn config(&self) -> ClientConfig {
        let mut config = client(&self.address());
        for (k, v) in &self.client {
            config.set(k, v);
        }
        config
    }

    /// A reader of partitions 0..`partitions` of `topic` on this broker.
    pub fn reader(&self, topic: &str, partitions: i32) -> TopicReader {
        TopicReader::from_config(self.config(), topic, partitions, 100)
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

    /// A producer of test input to this broker, writing one record per record batch.
    ///
    /// tansu 0.6.0 answers a fetch that starts inside a record batch with no data at all (Kafka
    /// returns the batch holding the offset), so a consumer that resumes from an offset inside
    /// a batch (a committed offset handed to a new group member, or librdkafka's restart from
    /// the last consumed offset after `resume`, which sluice calls after pausing for
    /// backpressure) waits forever. With single-record batches every offset starts one.
    pub fn producer(&self) -> TestProducer {
        let mut config = self.config();
        config.set("batch.num.messages", "1").set("linger.ms", "1");
        TestProducer::new(config)
    }
}
