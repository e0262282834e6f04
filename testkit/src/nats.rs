//! A `nats-server` of the caller's own on a free port (storage in a temp dir), and JetStream
//! helpers: create a stream, publish to it, read it back, look at its consumers.

use std::process::Command;
use std::time::Duration;

use async_nats::jetstream::{self, Context, consumer, stream};
use futures_util::StreamExt;

use crate::process::Process;

/// A running `nats-server`, killed when dropped.
pub struct NatsServer {
    process: Process,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    args: Vec<String>,
    // Declared after the process: removed once the server no longer writes to it.
    store: tempfile::TempDir,
}

/// Starts `nats-server` and waits until it accepts connections.
fn spawn(port: u16, store: &std::path::Path, args: &[String]) -> Process {
    let mut cmd = Command::new("nats-server");
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .args(args);
    Process::listening(&mut cmd, port, Duration::from_secs(20))
}

impl NatsServer {
    /// Starts a server with JetStream and waits until it accepts connections.
    pub fn start() -> NatsServer {
        Self::start_with(&["-js"])
    }

    /// A JetStream context over a new client of the server.
    pub async fn jetstream(&self) -> Context {
        jetstream::new(
            async_nats::connect(self.url())
                .await
                .expect("connect to nats-server"),
        )
    }

    /// Starts a server with these further `nats-server` arguments (without `-js`, JetStream
    /// is off).
    pub fn start_with(args: &[&str]) -> NatsServer {
        let port = crate::free_port();
        let store = tempfile::tempdir().expect("temp dir");
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        NatsServer {
            process: spawn(port, store.path(), &args),
            port,
            args,
            store,
        }
    }

    /// Stops the server and starts it again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.stop();
        self.resume();
    }

    /// Kills the server.
    pub fn stop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    /// Starts a stopped server again on the same port with the same storage.
    pub fn resume(&mut self) {
        self.process = spawn(self.port, self.store.path(), &self.args);
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

/// Creates a stream capturing `subjects`, with a duplicate window long enough for any test.
pub async fn create_stream(js: &Context, name: &str, subjects: &[String]) -> stream::Stream {
    js.create_stream(stream::Config {
        name: name.to_string(),
        subjects: subjects.to_vec(),
        duplicate_window: Duration::from_secs(600),
        ..Default::default()
    })
    .await
    .expect("create stream")
}

/// Publishes every message and waits for the stream to acknowledge each, a window at a time.
pub async fn publish_all(js: &Context, messages: impl IntoIterator<Item = (String, bytes::Bytes)>) {
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
pub async fn stored(js: &Context, stream: &str) -> Option<u64> {
    let mut s = js.get_stream(stream).await.ok()?;
    Some(s.info().await.ok()?.state.messages)
}

/// Every message of a stream, in stream order, read by a new ephemeral consumer.
pub async fn read_stream(js: &Context, stream: &str) -> Vec<jetstream::Message> {
    let mut s = js.get_stream(stream).await.expect("stream");
    let total = s.info().await.expect("info").state.messages as usize;
    let consumer = s
        .create_consumer(consumer::pull::Config {
            // Reading only: with acks, delivery would stop at max_ack_pending.
            ack_policy: consumer::AckPolicy::None,
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

/// Consumer state: (unacknowledged, not yet delivered, redelivered); None while the server
/// cannot answer.
pub async fn consumer_state(
    js: &Context,
    stream: &str,
    consumer: &str,
) -> Option<(usize, u64, usize)> {
    let s = js.get_stream(stream).await.ok()?;
    let info = s.consumer_info(consumer).await.ok()?;
    Some((info.num_ack_pending, info.num_pending, info.num_redelivered))
}
