//! The harnesses of the outputs that need no broker: the `counting` test output, a file,
//! standard output (checked in a process of its own), and an HTTP endpoint of the test's own.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;

use super::harness::OutputHarness as Harness;

/// The lines of `text`, blank ones left out.
pub fn lines(text: &[u8]) -> Vec<Bytes> {
    (text.split(|b| *b == b'\n'))
        .filter(|l| !l.is_empty())
        .map(Bytes::copy_from_slice)
        .collect()
}

/// The `counting` output.
pub struct Counting(String);

impl Counting {
    pub fn new() -> Counting {
        Counting(format!("tally-{}", nuid::next()))
    }
}

impl Harness for Counting {
    fn output(&self) -> String {
        format!("counting: {{tally: {}}}", self.0)
    }

    async fn delivered(&self) -> Vec<Bytes> {
        crate::sink::counting::delivered(&self.0)
    }

    async fn flaky(&self, attempts: u32) -> Option<String> {
        Some(format!(
            "counting: {{tally: {}, fail_first: {attempts}}}",
            self.0
        ))
    }

    async fn refusing(&self) -> Option<(String, Bytes)> {
        let output = format!("counting: {{tally: {}, refuse: 'no'}}", self.0);
        Some((output, Bytes::from_static(b"no")))
    }
}

/// The `file` output, writing lines.
pub struct File(tempfile::TempDir);

impl File {
    pub fn new() -> File {
        File(tempfile::tempdir().expect("a temporary directory"))
    }

    fn path(&self) -> PathBuf {
        self.0.path().join("out.ndjson")
    }
}

impl Harness for File {
    fn output(&self) -> String {
        format!("file: {{path: {:?}}}", self.path())
    }

    async fn delivered(&self) -> Vec<Bytes> {
        lines(&std::fs::read(self.path()).unwrap_or_default())
    }
}

/// The `stdout` output, in a process of its own whose standard output is a file (see
/// [`super::run`]): what was written there before the harness was made (the test runner's
/// header) is not the output's.
pub struct Stdout {
    path: PathBuf,
    from: usize,
}

impl Stdout {
    pub fn new() -> Stdout {
        let path = super::own_stdout().expect("the stdout output runs in a process of its own");
        let from = std::fs::read(&path).map_or(0, |text| text.len());
        Stdout { path, from }
    }
}

impl Harness for Stdout {
    fn output(&self) -> String {
        "stdout: {}".into()
    }

    async fn delivered(&self) -> Vec<Bytes> {
        let text = std::fs::read(&self.path).unwrap_or_default();
        lines(text.get(self.from..).unwrap_or_default())
    }
}

/// The `http` output, sending to an endpoint that keeps what it takes, answers 503 to the first
/// attempts at each request while told to, and 400 to the payload `no`.
pub struct Http {
    port: u16,
    endpoint: Arc<Endpoint>,
}

#[derive(Default)]
struct Endpoint {
    taken: std::sync::Mutex<Vec<Bytes>>,
    /// How many times each body is answered 503 before it is taken.
    fail_first: AtomicU32,
    failed: std::sync::Mutex<std::collections::HashMap<Bytes, u32>>,
}

impl Endpoint {
    fn answer(&self, path: &str, body: Bytes) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        let fail_first = self.fail_first.load(Ordering::SeqCst);
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        let attempts = failed.entry(body.clone()).or_default();
        if *attempts < fail_first {
            *attempts += 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        if &body[..] == b"no" {
            return StatusCode::BAD_REQUEST;
        }
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        match path {
            "/single" => taken.push(body),
            _ => taken.extend(lines(&body)),
        }
        StatusCode::OK
    }
}

impl Http {
    pub fn new() -> Http {
        use axum::extract::State;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("its address").port();
        let endpoint = Arc::new(Endpoint::default());
        let answer = |State(e): State<Arc<Endpoint>>, uri: axum::http::Uri, body: Bytes| async move {
            e.answer(uri.path(), body)
        };
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(endpoint.clone());
        let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Http { port, endpoint }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Harness for Http {
    fn output(&self) -> String {
        format!("http: {{url: '{}', encoding: ndjson}}", self.url("ndjson"))
    }

    async fn delivered(&self) -> Vec<Bytes> {
        (self.endpoint.taken.lock())
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn flaky(&self, attempts: u32) -> Option<String> {
        (self.endpoint.fail_first).store(attempts, Ordering::SeqCst);
        Some(self.output())
    }

    async fn refusing(&self) -> Option<(String, Bytes)> {
        let output = format!("http: {{url: '{}', encoding: single}}", self.url("single"));
        Some((output, Bytes::from_static(b"no")))
    }
}
