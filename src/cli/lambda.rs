//! `sluice lambda`: a pipeline served as an AWS Lambda function, until a signal or a failure.

use std::ffi::OsString;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::logs::LogFormat;
use super::print_diagnostics;
use crate::observe::events::emit;
use crate::observe::events::process::ExitingOnError;
use crate::observe::health::Health;
use crate::pipeline::{self, Pipeline};
use crate::runtime::shutdown::{self, Ended};
use crate::{lambda, runtime};

/// The arguments of `sluice lambda`.
#[derive(clap::Args)]
pub struct Args {
    /// The pipeline file.
    #[arg(env = "SLUICE_PIPELINE")]
    pub pipeline: PathBuf,
    /// Log format on stderr.
    #[arg(long, env = "SLUICE_LOG_FORMAT", default_value = "human")]
    pub log_format: LogFormat,
}

/// Whether `args` (a program's, its name first) are those of a Lambda function's `bootstrap`
/// started without arguments, as the Lambda runtime starts it: then it runs `sluice lambda`.
pub fn is_bootstrap(args: impl IntoIterator<Item = OsString>) -> bool {
    let mut args = args.into_iter();
    let name = args.next();
    let name = name.as_deref().map(Path::new);
    name.and_then(|n| n.file_name()) == Some(std::ffi::OsStr::new("bootstrap"))
        && args.next().is_none()
}

/// Loads the pipeline file; breaks with the exit code when it has errors (printed).
pub fn load(args: &Args) -> ControlFlow<ExitCode, Pipeline> {
    match pipeline::load_file(&args.pipeline) {
        Ok(p) => ControlFlow::Continue(p),
        Err(errors) => {
            print_diagnostics(&errors);
            ControlFlow::Break(ExitCode::FAILURE)
        }
    }
}

/// Serves invocations until the first of the signals `signals` starts listening for, or a
/// failure.
pub async fn run(
    pipeline: Pipeline,
    signals: impl FnOnce() -> mpsc::Receiver<&'static str>,
) -> ExitCode {
    let health = Health::new(1);
    let deadline = pipeline.config.settings.shutdown_timeout.0;
    let stop = CancellationToken::new();
    let runs = health.clone();
    let work = lambda::run(pipeline, stop.clone(), move |p, stop| {
        runtime::run_pipeline(p, stop, runs)
    });
    match shutdown::supervise(work, stop, &health, deadline, signals()).await {
        Ended::Finished(Ok(())) => ExitCode::SUCCESS,
        Ended::Finished(Err(e)) => {
            emit(ExitingOnError {
                error: &e,
                internal: false,
            });
            ExitCode::FAILURE
        }
        Ended::DeadlinePassed | Ended::SecondSignal(_) => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bootstrap_without_arguments_is_a_lambda_function() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(is_bootstrap(args(&["/var/task/bootstrap"])));
        assert!(is_bootstrap(args(&["bootstrap"])));
        assert!(!is_bootstrap(args(&["bootstrap", "--help"])));
        assert!(!is_bootstrap(args(&["/usr/bin/sluice"])));
        assert!(!is_bootstrap(args(&[])));
    }
}
