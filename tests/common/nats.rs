//! A `nats-server` of the test's own on a free port (JetStream on, storage in a temp dir),
//! stopped when dropped.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct NatsServer {
    child: Child,
    pub port: u16,
    store: tempfile::TempDir,
    args: Vec<String>,
}

fn spawn(port: u16, store: &Path, args: &[String]) -> Child {
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server is installed (scripts/setup.sh test)");
    super::wait_for("nats-server to listen", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    child
}

impl NatsServer {
    /// Starts a server and waits until it accepts connections.
    pub fn start() -> NatsServer {
        Self::start_with(&["-js"])
    }

    /// Starts a server with these further `nats-server` arguments (without `-js`, JetStream
    /// is off).
    pub fn start_with(args: &[&str]) -> NatsServer {
        let port = super::free_port();
        let store = tempfile::tempdir().unwrap();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let child = spawn(port, store.path(), &args);
        NatsServer {
            child,
            port,
            store,
            args,
        }
    }

    /// Stops the server and starts it again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.stop();
        self.resume();
    }

    /// Kills the server.
    #[allow(dead_code)]
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a stopped server again on the same port with the same storage.
    pub fn resume(&mut self) {
        self.child = spawn(self.port, self.store.path(), &self.args);
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Awaits `cond` until it returns Some, or panics after `timeout` naming `what`. Errors while a
/// server restarts are just "not yet".
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(v)) = tokio::time::timeout_at(deadline, cond()).await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a stream capturing `subjects`, with a duplicate window long enough for any test.
pub async fn create_stream(
    js: &async_nats::jetstream::Context,
    name: &str,
    subjects: &[String],
) -> async_nats::jetstream::stream::Stream {
    js.create_stream(async_nats::jetstream::stream::Config {
        name: name.to_string(),
        subjects: subjects.to_vec(),
        duplicate_window: Duration::from_secs(600),
        ..Default::default()
    })
    .await
    .expect("create stream")
}

/// Publishes every message and waits for the stream to acknowledge each, a window at a time.
pub async fn publish_all(
    js: &async_nats::jetstream::Context,
    messages: impl IntoIterator<Item = (String, bytes::Bytes)>,
) {
    let mut acks = Vec::new();
    for (subject, payload) in messages {
        acks.push(js.publish(subject, payload).await.expect("publish"));
        if acks.len() == 2000 {
            for a in acks.drain(..) {
                a.await.expect("stored");
            }
        }
    }
    for a in acks {
        a.await.expect("stored");
    }
}

/// Messages stored in a stream now; None while the server cannot answer.
pub async fn stored(js: &async_nats::jetstream::Context, stream: &str) -> Option<u64> {
    let mut s = js.get_stream(stream).await.ok()?;
    Some(s.info().await.ok()?.state.messages)
}

/// Every message of a stream, in stream order, read by a new ephemeral consumer.
pub async fn read_stream(
    js: &async_nats::jetstream::Context,
    stream: &str,
) -> Vec<async_nats::jetstream::Message> {
    use futures_util::StreamExt;
    let mut s = js.get_stream(stream).await.expect("stream");
    let total = s.info().await.expect("info").state.messages as usize;
    let consumer = s
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            // Reading only: with acks, delivery would stop at max_ack_pending.
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        let mut batch = consumer
            .fetch()
            .max_messages(10_000)
            .messages()
            .await
            .expect("fetch");
        while let Some(m) = batch.next().await {
            out.push(m.expect("message"));
        }
    }
    out
}

/// Consumer state: (unacknowledged, not yet delivered, redelivered).
pub async fn consumer_state(
    js: &async_nats::jetstream::Context,
    stream: &str,
    consumer: &str,
) -> Option<(usize, u64, usize)> {
    let s = js.get_stream(stream).await.ok()?;
    let info = s.consumer_info(consumer).await.ok()?;
    Some((info.num_ack_pending, info.num_pending, info.num_redelivered))
}

/// A `sluice run` of `file` logging JSON to `log`; killed if the test fails before it exits.
pub fn worker(file: &Path, log: &Path) -> Worker {
    spawn_worker(file, log, &[])
}

/// [`worker`], serving metrics and health on 127.0.0.1:`port`.
#[allow(dead_code)]
pub fn worker_with_metrics(file: &Path, log: &Path, port: u16) -> Worker {
    spawn_worker(file, log, &["--metrics-addr", &format!("127.0.0.1:{port}")])
}

fn spawn_worker(file: &Path, log: &Path, args: &[&str]) -> Worker {
    Worker(
        super::sluice()
            .args(["run", "--log-format", "json"])
            .args(args)
            .arg(file)
            .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
            .spawn()
            .unwrap(),
    )
}

/// A child process killed when dropped, so a failing test leaves nothing running.
pub struct Worker(pub Child);

impl std::ops::Deref for Worker {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Worker {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether a worker's log has a record with this message.
pub fn logged(log: &Path, message: &str) -> bool {
    !super::log_records(&std::fs::read_to_string(log).unwrap_or_default(), message).is_empty()
}
