//! Test helpers shared by sluice's integration tests and benchmarks: the brokers they run, the
//! clients they check outputs with, the `sluice` processes they start, and waiting on conditions
//! with a deadline.
//!
//! # Layout
//! - [`azure`]: Azure Blob Storage of the caller's own (Azurite), and the Azure SDK to read it back.
//! - [`wait`]: wait until a condition holds, sync and async, with a deadline.
//! - [`process`]: the `sluice` binary ([`sluice!`]), workers logging to files, kill-on-drop guards.
//! - [`http`]: free ports, and the `/metrics` and `/health` endpoints of a worker.
//! - [`kafka`]: the Kafka test client: produce (at a pace too), read topics back, wait for a
//!   count, committed and end offsets; Kafka-to-Kafka pipeline files.
//! - [`kraft`]: an Apache Kafka broker of the caller's own (one KRaft node), TLS and SASL too.
//! - [`nats`]: a `nats-server` process of the caller's own, and JetStream helpers.
//! - [`pki`]: a certificate authority and certificates for TLS tests.
//! - [`podman`]: the image built from the Dockerfile, its containers, and `k8s/` played as pods.
//! - [`registry`]: a Schema Registry of the caller's own, in the test process.
//! - [`s3`]: an S3 server of the caller's own (moto), and boto3 to read back what it stored.
//! - [`tls_proxy`]: TLS in front of a plain TCP server (an HTTP server or registry of the test's).
//! - [`measure`]: benchmark events, and a process's CPU time and memory.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod azure;
pub mod http;
pub mod kafka;
pub mod kraft;
pub mod measure;
pub mod nats;
pub mod pki;
pub mod podman;
pub mod process;
pub mod registry;
pub mod s3;
pub mod tls_proxy;
pub mod wait;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use http::{free_port, http_get, http_get_at, metric_values};
pub use process::{Process, Worker, log_records, logged, run_with_stdin, signal, wait_exit};
pub use wait::{eventually, try_eventually, try_wait_for, wait_for};

/// A name no other test uses (topics, groups, streams): tests share brokers and run at once.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs the Python program `script` (an independent client: boto3, the Azure SDK) and returns
/// what it printed; panics naming `what` when it fails.
pub fn python(script: &str, what: &str) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("python3 for {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes a pipeline file `name.yaml` into `dir` and returns its path.
pub fn pipeline(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).expect("write pipeline file");
    path
}

/// Non-blank lines of a file (none while it does not exist).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}
