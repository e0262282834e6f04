//! The harnesses of the inputs that need no broker: a file, generated events, standard input
//! (checked in a process of its own), and an HTTP server with a client of the harness's own.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio_util::task::AbortOnDropHandle;

use super::harness::InputHarness as Harness;

/// Appends `payloads` to `to`, a line each.
fn write_lines(mut to: impl Write, payloads: &[Bytes]) {
    for payload in payloads {
        to.write_all(payload).expect("write a line");
        to.write_all(b"\n").expect("write a line");
    }
    to.flush().expect("flush the lines");
}

/// The `file` input, following a file the harness appends to. It acknowledges nothing; started
/// again, it reads the file from its start.
pub struct File(tempfile::TempDir);

impl File {
    pub fn new() -> File {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("in.ndjson"), b"").expect("the input file");
        File(dir)
    }

    fn path(&self) -> PathBuf {
        self.0.path().join("in.ndjson")
    }
}

impl Harness for File {
    fn input(&self, _: usize) -> String {
        let path = self.path();
        format!("file: {{path: {path:?}, follow: true, poll_interval: 20ms}}")
    }

    async fn put(&self, payloads: &[Bytes]) {
        let file = std::fs::OpenOptions::new().append(true).open(self.path());
        write_lines(file.expect("open the input file"), payloads);
    }
}

/// The `generate` input, making the checks' payloads itself (`put` has nothing to do). It
/// acknowledges nothing; started again, it makes them again.
pub struct Generate;

impl Harness for Generate {
    fn input(&self, messages: usize) -> String {
        format!("generate: {{template: '{{n: .}}', count: {messages}}}")
    }

    async fn put(&self, _: &[Bytes]) {}
}

/// The `stdin` input, in a process of its own whose standard input is a pipe the harness writes
/// to (see [`super::run`]). It acknowledges nothing, and what it read is not read again.
pub struct Stdin(Mutex<std::fs::File>);

impl Stdin {
    pub fn new() -> Stdin {
        let pipe = super::own_stdin().expect("the stdin input runs in a process of its own");
        let writer = std::fs::OpenOptions::new().write(true).open(pipe);
        Stdin(Mutex::new(writer.expect("open the pipe")))
    }
}

impl Drop for Stdin {
    /// One more line ends the read of standard input still waiting on its thread, which the
    /// check's runtime waits for before it stops.
    fn drop(&mut self) {
        let mut pipe = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = pipe.write_all(b"\n");
    }
}

impl Harness for Stdin {
    fn input(&self, _: usize) -> String {
        "stdin: {}".into()
    }

    async fn put(&self, payloads: &[Bytes]) {
        let mut pipe = self.0.lock().unwrap_or_else(|e| e.into_inner());
        write_lines(&mut *pipe, payloads);
    }

    fn reads_again(&self) -> bool {
        false
    }
}

/// The `http_server` input on a port of the harness's own. Its client sends each `put` as one
/// NDJSON request, again after every answer but 200 (429 while the pipeline is full, 503 when
/// not every event was delivered, no answer while nothing listens), as a client is told to.
pub struct Http {
    port: u16,
    client: reqwest::Client,
    /// Payloads of the requests answered 200.
    acknowledged: Arc<AtomicUsize>,
    requests: Mutex<Vec<AbortOnDropHandle<()>>>,
}

/// How long the client waits before sending a request again.
const AGAIN_AFTER: Duration = Duration::from_millis(50);

impl Http {
    pub fn new() -> Http {
        // reqwest takes the process's TLS provider, even for plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Http {
            port: testkit::free_port(),
            client: reqwest::Client::new(),
            acknowledged: Arc::default(),
            requests: Mutex::default(),
        }
    }
}

impl Harness for Http {
    fn input(&self, _: usize) -> String {
        format!("http_server: {{address: '127.0.0.1:{}'}}", self.port)
    }

    async fn put(&self, payloads: &[Bytes]) {
        let mut body = Vec::new();
        write_lines(&mut body, payloads);
        let (client, acknowledged) = (self.client.clone(), self.acknowledged.clone());
        let (url, n) = (format!("http://127.0.0.1:{}/", self.port), payloads.len());
        let request = tokio::spawn(async move {
            loop {
                let sent = client
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(body.clone())
                    .send()
                    .await;
                if sent.is_ok_and(|answer| answer.status() == reqwest::StatusCode::OK) {
                    acknowledged.fetch_add(n, Ordering::SeqCst);
                    return;
                }
                tokio::time::sleep(AGAIN_AFTER).await;
            }
        });
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        requests.push(AbortOnDropHandle::new(request));
    }

    async fn acknowledged(&self) -> Option<usize> {
        Some(self.acknowledged.load(Ordering::SeqCst))
    }
}
