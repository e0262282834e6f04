//! The contracts every output and every input keeps, checked the same way for each (tests only).
//! [`outputs`] and [`inputs`] hold the checks and one line per component; the harnesses beside
//! them say how to reach each component's remote and how to read it back.
//!
//! Each check runs on a runtime of its own with a metrics recorder of its own, so checks running
//! at once never count each other's events, and each reads the metrics a user would scrape.

mod broker_inputs;
mod broker_outputs;
mod context;
mod harness;
mod inputs;
mod local_inputs;
mod local_outputs;
mod outputs;
mod store_outputs;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::observe::names;

/// The pipeline every check runs: the `pipeline` label of its metrics.
const PIPELINE: &str = "conformance";

/// How long any one wait of a check may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// Runs one check on a runtime of its own, within a metrics recorder of its own: the check is
/// given the recorder's view. The runtime has one thread, so every task of the component under
/// test records into this recorder.
fn recorded<F: Future<Output = ()>>(check: impl FnOnce(Metrics) -> F) {
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = Metrics(recorder.handle());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the check");
    metrics::with_local_recorder(&recorder, || runtime.block_on(check(metrics)));
}

/// Names the file that is the standard output of a check run in a process of its own.
const OWN_STDOUT: &str = "SLUICE_CONFORMANCE_STDOUT";
/// Names the pipe that is the standard input of a check run in a process of its own.
const OWN_STDIN: &str = "SLUICE_CONFORMANCE_STDIN";

/// In a check run in a process of its own, the file that is its standard output.
fn own_stdout() -> Option<PathBuf> {
    std::env::var_os(OWN_STDOUT).map(PathBuf::from)
}

/// In a check run in a process of its own, the pipe that is its standard input.
fn own_stdin() -> Option<PathBuf> {
    std::env::var_os(OWN_STDIN).map(PathBuf::from)
}

/// Runs the check `path` (`module_path!()::test`) as [`recorded`] does. With `own_process`, for
/// a component that uses this process's standard input or output, the check runs in a child
/// process of this test binary running that test only, whose standard output is a file and
/// whose standard input is a named pipe: its harness reaches them through [`own_stdout`] and
/// [`own_stdin`].
fn run<F: Future<Output = ()>>(own_process: bool, path: &str, check: impl FnOnce(Metrics) -> F) {
    if !own_process || own_stdout().is_some() {
        return recorded(check);
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (stdout, stdin) = (dir.path().join("stdout"), dir.path().join("stdin"));
    let made = Command::new("mkfifo").arg(&stdin).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {stdin:?}");
    // Opened for reading and writing: that waits for no writer, and the child's standard input
    // does not end when a writer closes the pipe.
    let pipe = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&stdin)
        .expect("open the pipe");
    let file = std::fs::File::create(&stdout).expect("the child's standard output");
    let test = path.split_once("::").map_or(path, |(_, test)| test);
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args([test, "--exact", "--test-threads=1", "--quiet"])
        .env(OWN_STDOUT, &stdout)
        .env(OWN_STDIN, &stdin)
        .stdout(file)
        .stdin(pipe)
        .output()
        .expect("run the check in a process of its own");
    let printed = std::fs::read_to_string(&stdout).unwrap_or_default();
    assert!(
        out.status.success() && printed.contains(" 1 passed"),
        "{test}, run in a process of its own:\n{printed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The metrics of one check, as `/metrics` shows them.
struct Metrics(PrometheusHandle);

impl Metrics {
    /// The value of the counter `name` of the check's pipeline, over the series with every label
    /// of `labels` as well (0 while it has none).
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let mut labels = labels.to_vec();
        labels.push(("pipeline", PIPELINE));
        let values = testkit::metric_values(&self.0.render(), name, &labels);
        values.iter().map(|(_, v)| *v as u64).sum()
    }

    /// Asserts the pipeline's counters of events sent, failed at the output, and dropped.
    fn assert_outcomes(&self, sent: u64, failed: u64, dropped: u64) {
        let counted = (
            self.counter(names::EVENTS_SENT_TOTAL, &[]),
            self.counter(names::EVENTS_FAILED_TOTAL, &[("step", "output")]),
            self.counter(names::EVENTS_DROPPED_TOTAL, &[]),
        );
        assert_eq!(
            counted,
            (sent, failed, dropped),
            "(sent, failed, dropped) as the metrics count them"
        );
    }
}

/// `n` small JSON payloads, `{"n":0}` to `{"n":n-1}`.
fn payloads(n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(format!("{{\"n\":{i}}}")))
        .collect()
}
