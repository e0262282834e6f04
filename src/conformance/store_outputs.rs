//! The harnesses of the `object_store` output: S3 (moto's server, behind a proxy that can fail
//! uploads for a passing reason) and local files. Objects are written every 10 events, so that
//! events are confirmed before the channel closes; each object is named after its first and last
//! event, so the objects in name order hold the events in order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use testkit::s3::Moto;
use testkit::unique;

use super::harness::OutputHarness as Harness;
use super::local_outputs::lines;

/// Objects of at most 10 events, so that the checks' 30 events make three before the end.
const BATCH: &str = "batch: {max_events: 10}";

/// A folder every event has, unless its payload is not JSON: the output refuses that event.
const FOLDER_OF_JSON: &str = r#"path: 'k={{ "x" }}'"#;

/// The `object_store` output, storing objects in a bucket of moto's S3 server, reached through a
/// proxy of the harness's own.
pub struct S3 {
    bucket: String,
    proxy: Arc<Proxy>,
    port: u16,
    moto: Moto,
}

/// Passes requests on to moto, after answering the first uploads of each object 503 as told.
struct Proxy {
    moto: String,
    client: reqwest::Client,
    fail_first: AtomicU32,
    failed: Mutex<HashMap<String, u32>>,
}

impl Proxy {
    async fn forward(self: Arc<Self>, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
            return answer(StatusCode::BAD_REQUEST, Bytes::new());
        };
        if parts.method == Method::PUT {
            let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
            let tries = failed.entry(parts.uri.path().to_string()).or_default();
            if *tries < self.fail_first.load(Ordering::SeqCst) {
                *tries += 1;
                let busy = "<Error><Code>SlowDown</Code><Message>busy</Message></Error>";
                return answer(StatusCode::SERVICE_UNAVAILABLE, Bytes::from(busy));
            }
        }
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut sent = self
            .client
            .request(parts.method, format!("{}{path}", self.moto));
        for (name, value) in parts.headers.iter().filter(|(n, _)| *n != header::HOST) {
            sent = sent.header(name, value);
        }
        match sent.body(body).send().await {
            Ok(moto) => {
                let mut response = Response::builder().status(moto.status());
                for (name, value) in moto.headers() {
                    response = response.header(name, value);
                }
                let body = moto.bytes().await.unwrap_or_default();
                response
                    .body(axum::body::Body::from(body))
                    .unwrap_or_else(|_| answer(StatusCode::BAD_GATEWAY, Bytes::new()))
            }
            Err(_) => answer(StatusCode::BAD_GATEWAY, Bytes::new()),
        }
    }
}

fn answer(status: StatusCode, body: Bytes) -> Response {
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    response
}

impl S3 {
    pub async fn new() -> S3 {
        // reqwest takes the process's TLS provider, even for plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let moto = Moto::start();
        let bucket = unique("lake").to_lowercase();
        moto.create_bucket(&bucket);
        let proxy = Arc::new(Proxy {
            moto: moto.endpoint(),
            client: reqwest::Client::new(),
            fail_first: AtomicU32::new(0),
            failed: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let port = listener.local_addr().expect("its address").port();
        let app = axum::Router::new()
            .fallback(|State(p): State<Arc<Proxy>>, r: Request| p.forward(r))
            .with_state(proxy.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        S3 {
            bucket,
            proxy,
            port,
            moto,
        }
    }

    fn with(&self, more: &str) -> String {
        format!(
            "object_store: {{url: 's3://{}/conformance', {BATCH}, {more} options: {{endpoint: \
             'http://127.0.0.1:{}', allow_http: 'true', region: us-east-1, access_key_id: test, \
             secret_access_key: test}}}}",
            self.bucket, self.port
        )
    }
}

impl Harness for S3 {
    fn output(&self) -> String {
        self.with("")
    }

    /// The lines of every object, in name order, read with boto3.
    async fn delivered(&self) -> Vec<Bytes> {
        let objects = self.moto.objects(&self.bucket, "conformance/");
        (objects.into_iter())
            .flat_map(|(_, lines)| lines.into_iter().map(Bytes::from))
            .collect()
    }

    /// Each object's first `attempts` uploads answered 503, as a busy store does.
    async fn flaky(&self, attempts: u32) -> Option<String> {
        self.proxy.fail_first.store(attempts, Ordering::SeqCst);
        Some(self.output())
    }

    /// An event whose folder cannot be made: its payload is not JSON.
    async fn refusing(&self) -> Option<(String, Bytes)> {
        let output = self.with(&format!("{FOLDER_OF_JSON},"));
        Some((output, Bytes::from_static(b"no")))
    }
}

/// The `object_store` output, storing objects as files in a directory of the harness's own.
pub struct LocalStore(tempfile::TempDir);

impl LocalStore {
    pub fn new() -> LocalStore {
        LocalStore(tempfile::tempdir().expect("a temporary directory"))
    }

    fn with(&self, more: &str) -> String {
        let url = format!("file://{}/conformance", self.0.path().display());
        format!("object_store: {{url: '{url}', {BATCH} {more}}}")
    }
}

/// The files under `dir` and its folders, in path order; files being written (named with a `#`
/// until they are whole) left out.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else if !path.to_string_lossy().contains('#') {
            found.push(path);
        }
    }
    found.sort();
    found
}

impl Harness for LocalStore {
    fn output(&self) -> String {
        self.with("")
    }

    async fn delivered(&self) -> Vec<Bytes> {
        let stored = files(&self.0.path().join("conformance"));
        (stored.iter())
            .flat_map(|f| lines(&std::fs::read(f).unwrap_or_default()))
            .collect()
    }

    async fn refusing(&self) -> Option<(String, Bytes)> {
        let output = self.with(&format!(", {FOLDER_OF_JSON}"));
        Some((output, Bytes::from_static(b"no")))
    }
}
