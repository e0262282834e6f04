//! Child processes: the `sluice` binary under test, and guards that kill what a failing test
//! leaves running.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use crate::unique;
use crate::wait::try_wait_for;

/// A [`Command`] running the `sluice` binary of the package whose test or benchmark expands it,
/// logging at `info`.
///
/// A macro because Cargo names that binary in `CARGO_BIN_EXE_sluice` only while it compiles
/// sluice's own tests and benchmarks, not this crate.
#[macro_export]
macro_rules! sluice {
    () => {
        $crate::process::sluice_at(env!("CARGO_BIN_EXE_sluice"))
    };
}

/// A [`Command`] running the `sluice` binary at `binary`, logging at `info`; see [`sluice!`].
pub fn sluice_at(binary: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(binary);
    cmd.env("RUST_LOG", "info");
    cmd
}

/// A child process killed when dropped, so a failing test or benchmark leaves nothing running.
pub struct Process(pub Child);

impl Process {
    /// Starts `cmd`.
    pub fn spawn(cmd: &mut Command) -> Process {
        Process(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program())),
        )
    }

    /// Starts the server `cmd` quietly (its output discarded) and waits, up to `timeout`, until
    /// it accepts connections on 127.0.0.1:`port`.
    pub fn listening(cmd: &mut Command, port: u16, timeout: std::time::Duration) -> Process {
        let name = cmd.get_program().to_string_lossy().into_owned();
        let process = Process(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {name} ({e}): is it installed? (scripts/setup.sh test)")
                }),
        );
        crate::wait::wait_for(&format!("{name} to listen"), timeout, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        process
    }
}

impl Deref for Process {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for Process {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for a child to exit, killing it and panicking after `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> ExitStatus {
    try_wait_for(timeout, || child.try_wait().expect("try_wait")).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("process did not exit within {timeout:?}");
    })
}

/// Sends a signal (`TERM`, `INT`, ...) to a child process.
pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} failed");
}

/// Runs `sluice` (from [`sluice!`]) as `run --log-format json <pipeline>` with `stdin` piped in,
/// and returns its output.
pub fn run_with_stdin(mut sluice: Command, pipeline: &Path, stdin: &[u8]) -> Output {
    let mut child = sluice
        .args(["run", "--log-format", "json"])
        .arg(pipeline)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    // Written from another thread: sluice's output fills the pipes while it reads its input.
    let writer = std::thread::spawn(move || {
        input.write_all(&data).expect("write stdin");
    });
    let out = child.wait_with_output().expect("wait for sluice");
    writer.join().expect("stdin writer");
    out
}

/// Partitions a worker holds according to its JSON log (assigned minus revoked, in order).
pub fn held_partitions(log: &str) -> Vec<i64> {
    let mut held = Vec::new();
    for v in log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    {
        match (v["message"].as_str(), v["partition"].as_i64()) {
            (Some("partition assigned"), Some(p)) => held.push(p),
            (Some("partition revoked"), Some(p)) => held.retain(|q| *q != p),
            _ => {}
        }
    }
    held
}

/// The JSON log records in `log` (one a line) with the given message.
pub fn log_records(log: &str, message: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == message)
        .collect()
}

/// Whether the log file at `log` has a record with this message (false while it does not exist).
pub fn logged(log: &Path, message: &str) -> bool {
    !log_records(&std::fs::read_to_string(log).unwrap_or_default(), message).is_empty()
}

/// A partition a worker held: (partition, assigned at, revoked at), timestamps as logged
/// (RFC 3339, UTC, fixed width, so they compare as strings); `None` while still held.
pub type Ownership = (i64, String, Option<String>);

/// A `sluice run --log-format json` process whose log (stderr) goes to a file; killed when
/// dropped, and its log kept outside the test's temporary directory when the test failed.
pub struct Worker {
    /// The log file's name without extension, to tell workers apart in messages.
    pub name: String,
    log: PathBuf,
    // Declared last: dropped (killed) after `Drop::drop` kept the log.
    process: Process,
}

impl Worker {
    /// Starts `sluice` (from [`sluice!`], with any environment of the caller's) as
    /// `run --log-format json <args> <pipeline>`, logging to `log`.
    pub fn start(mut sluice: Command, pipeline: &Path, log: &Path, args: &[&str]) -> Worker {
        let err = File::create(log).expect("create worker log");
        let process = Process::spawn(
            sluice
                .args(["run", "--log-format", "json"])
                .args(args)
                .arg(pipeline)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(err)),
        );
        Worker {
            name: log
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            log: log.to_path_buf(),
            process,
        }
    }

    /// [`start`](Self::start), serving metrics and health on 127.0.0.1:`port`.
    pub fn with_metrics(sluice: Command, pipeline: &Path, log: &Path, port: u16) -> Worker {
        let addr = format!("127.0.0.1:{port}");
        Self::start(sluice, pipeline, log, &["--metrics-addr", &addr])
    }

    /// [`with_metrics`](Self::with_metrics) on the pipeline `yaml` of an `http_server` input,
    /// written to `dir/http.yaml` and logging to `dir/sluice.log`; returns once the server
    /// listens.
    pub fn http_server(dir: &Path, yaml: &str, sluice: Command, metrics: u16) -> Worker {
        let file = crate::pipeline(dir, "http", yaml);
        let log = dir.join("sluice.log");
        let worker = Self::with_metrics(sluice, &file, &log, metrics);
        crate::wait_for("the server listening", Duration::from_secs(30), || {
            crate::logged(&log, "http_server: listening").then_some(())
        });
        worker
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Copies the log out of the test's temporary directory; where it went, for messages.
    fn keep_log(&self) -> String {
        let kept =
            std::env::temp_dir().join(format!("{}-{}.log", unique("sluice-test"), self.name));
        match std::fs::copy(&self.log, &kept) {
            Ok(_) => kept.display().to_string(),
            Err(e) => format!("(not kept: {e})"),
        }
    }

    /// For failure messages: the partitions held, the log's last lines, and where the whole
    /// log was kept.
    pub fn report(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "--- {} holds {:?}; whole log: {}; last lines:\n{tail}",
            self.name,
            self.assigned(),
            self.keep_log()
        )
    }

    /// The JSON log records with the given message so far.
    pub fn records(&self, message: &str) -> Vec<serde_json::Value> {
        log_records(&self.log(), message)
    }

    /// The log's JSON records, in order.
    fn json_lines(&self) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Whether the worker's last successful JoinGroup made it the group leader, according to
    /// librdkafka's `cgrp` debug messages in its log (`debug: cgrp` in the consumer options and
    /// `librdkafka=debug` in `RUST_LOG`).
    pub fn is_group_leader(&self) -> bool {
        let mut leader = false;
        for v in self.json_lines() {
            let message = v["message"].as_str().unwrap_or_default();
            if message.contains("JoinGroup response: GenerationId")
                && !message.contains("GenerationId -1")
            {
                leader = message.contains("(me)");
            }
        }
        leader
    }

    /// Partitions the worker holds according to its log (assigned minus revoked, in order).
    pub fn assigned(&self) -> Vec<i64> {
        held_partitions(&self.log())
    }

    /// When the worker held which partition, according to its log.
    pub fn ownership(&self) -> Vec<Ownership> {
        let mut spans: Vec<Ownership> = Vec::new();
        for v in self.json_lines() {
            let at = v["timestamp"].as_str().unwrap_or_default().to_string();
            match (v["message"].as_str(), v["partition"].as_i64()) {
                (Some("partition assigned"), Some(p)) => spans.push((p, at, None)),
                (Some("partition revoked"), Some(p)) => {
                    if let Some(span) = spans.iter_mut().find(|s| s.0 == p && s.2.is_none()) {
                        span.2 = Some(at);
                    }
                }
                _ => {}
            }
        }
        spans
    }

    /// Sends a signal (`TERM`, `INT`, ...).
    pub fn signal(&self, sig: &str) {
        signal(&self.process, sig);
    }

    /// SIGTERM, then waits for the exit and asserts it was 0; returns the `pipeline stopped`
    /// record.
    pub fn stop(&mut self, timeout: Duration) -> serde_json::Value {
        self.signal("TERM");
        self.stopped(timeout)
    }

    /// After a SIGTERM sent earlier: waits for the exit and asserts it was 0; returns the
    /// `pipeline stopped` record. (A second SIGTERM would make sluice exit at once.)
    pub fn stopped(&mut self, timeout: Duration) -> serde_json::Value {
        let status = wait_exit(&mut self.process, timeout);
        assert!(
            status.success(),
            "worker {} exited with {status} after SIGTERM; log:\n{}",
            self.name,
            self.log()
        );
        self.records("pipeline stopped")
            .pop()
            .unwrap_or_else(|| panic!("worker {} logged no summary:\n{}", self.name, self.log()))
    }
}

/// The process, for what tests do with any child (`kill`, exit status, [`signal`],
/// [`wait_exit`]).
impl Deref for Worker {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.process
    }
}

impl DerefMut for Worker {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.process
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("SLUICE_TEST_KEEP_LOGS").is_some() {
            eprintln!("log of worker {} kept at {}", self.name, self.keep_log());
        }
    }
}
