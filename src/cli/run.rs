//! `sluice run`: pipelines until their inputs end or a signal stops them, with the metrics and
//! health endpoint if asked for.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::logs::LogFormat;
use super::print_diagnostics;
use crate::observe::events::emit;
use crate::observe::events::process::ExitingOnError;
use crate::observe::health::Health;
use crate::observe::server;
use crate::pipeline::{self, Pipeline};
use crate::runtime::shutdown::Ended;
use crate::runtime::{self, shutdown};

/// Shutdown deadline of a run given no pipeline (the command requires one; [`run`] does not).
const DEFAULT_DEADLINE: Duration = Duration::from_secs(25);

/// The arguments of `sluice run`.
#[derive(clap::Args)]
pub struct Args {
    /// Pipeline files.
    #[arg(required = true)]
    pub pipelines: Vec<PathBuf>,
    /// Log format on stderr.
    #[arg(long, env = "SLUICE_LOG_FORMAT", default_value = "human")]
    pub log_format: LogFormat,
    /// Address for /metrics, /health/live and /health/ready, `host:port` (for example
    /// 0.0.0.0:9090 or localhost:9090). Without it no HTTP endpoint is opened.
    #[arg(long, env = "SLUICE_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Load and build every pipeline (files read, clients configured), connect to nothing,
    /// and exit: the check to run before a rollout.
    #[arg(long)]
    pub dry_run: bool,
}

/// Loads every pipeline file. Breaks with the exit code when there is nothing to run: the files
/// have errors (printed), or this is a dry run (what would run printed).
pub fn load(args: &Args) -> ControlFlow<ExitCode, Vec<Pipeline>> {
    let loaded = match pipeline::load_files(&args.pipelines) {
        Ok(loaded) => loaded,
        Err(errors) => {
            print_diagnostics(&errors);
            return ControlFlow::Break(ExitCode::FAILURE);
        }
    };
    if args.dry_run {
        for p in &loaded {
            println!("{}: ready to run ({})", p.file.display(), p.describe());
        }
        return ControlFlow::Break(ExitCode::SUCCESS);
    }
    ControlFlow::Continue(loaded)
}

/// Runs `pipelines` until their inputs end, one fails, or the first of the signals `signals`
/// starts listening for stops them (see [`shutdown::supervise`]); serves metrics and health
/// on `metrics_addr` meanwhile.
pub async fn run(
    pipelines: Vec<Pipeline>,
    metrics_addr: Option<String>,
    signals: impl FnOnce() -> mpsc::Receiver<&'static str>,
) -> ExitCode {
    let health = Health::new(pipelines.len());
    let server_stop = CancellationToken::new();
    let _stop_server = server_stop.clone().drop_guard();
    if let Some(address) = metrics_addr
        && let Err(e) = server::start(&address, health.clone(), server_stop.clone()).await
    {
        e.log();
        return ExitCode::FAILURE;
    }
    let deadline = pipelines
        .iter()
        .map(|p| p.config.settings.shutdown_timeout.0)
        .max()
        .unwrap_or(DEFAULT_DEADLINE);
    let stop = CancellationToken::new();
    let work = tokio::spawn(runtime::run_all(pipelines, stop.clone(), health.clone()));
    match shutdown::supervise(work, stop, &health, deadline, signals()).await {
        Ended::Finished(Ok(Ok(()))) => ExitCode::SUCCESS,
        Ended::Finished(Ok(Err(errors))) => {
            for e in &errors {
                emit(ExitingOnError {
                    error: e,
                    internal: false,
                });
            }
            ExitCode::FAILURE
        }
        Ended::Finished(Err(e)) => {
            emit(ExitingOnError {
                error: &e,
                internal: true,
            });
            ExitCode::FAILURE
        }
        Ended::DeadlinePassed | Ended::SecondSignal(_) => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A pipeline generating `{n: .}` events (`count` of them, or until stopped) into `out`.
    fn generating(out: &Path, count: Option<u32>) -> Pipeline {
        let end = match count {
            Some(n) => format!("count: {n}"),
            None => "rate: 1000".into(),
        };
        let yaml = format!(
            "input:\n  generate:\n    template: '{{n: .}}'\n    {end}\noutput:\n  file:\n    path: {}\nerrors: stop\n",
            out.display()
        );
        pipeline::load_str(Path::new("run.yaml"), &yaml, &|_: &str| None).expect("valid pipeline")
    }

    #[tokio::test]
    async fn pipelines_whose_inputs_end_finish_without_a_signal() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        let (_signal, signals) = mpsc::channel(1);
        let code = run(vec![generating(&out, Some(3))], None, || signals).await;
        assert_eq!(code, ExitCode::SUCCESS);
        let written = std::fs::read_to_string(&out).unwrap();
        assert_eq!(written.lines().count(), 3, "{written}");
    }

    #[tokio::test]
    async fn a_signal_stops_pipelines_that_would_run_forever() {
        let dir = tempfile::tempdir().unwrap();
        let (signal, signals) = mpsc::channel(1);
        signal.send("SIGTERM").await.unwrap();
        let pipeline = generating(&dir.path().join("out.jsonl"), None);
        let code = run(vec![pipeline], None, || signals).await;
        assert_eq!(code, ExitCode::SUCCESS);
    }

    #[tokio::test]
    async fn a_metrics_address_without_a_port_fails_the_run_before_it_starts() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        let (_signal, signals) = mpsc::channel(1);
        let pipeline = generating(&out, Some(3));
        let code = run(vec![pipeline], Some("localhost".into()), || signals).await;
        assert_eq!(code, ExitCode::FAILURE);
        assert!(!out.exists(), "nothing ran");
    }
}
