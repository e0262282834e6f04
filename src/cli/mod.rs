//! The `sluice` command line: its arguments, and one module per subcommand, each called by the
//! binary with what it cannot make itself (the signals that stop a run), so tests can drive it.

pub mod check;
pub mod eval;
pub mod lambda;
pub mod logs;
pub mod run;
pub mod schema;
pub mod test;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::Diagnostic;

/// The command line.
#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Move and reshape events between Kafka, NATS and local inputs/outputs"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands; each variant's doc comment is its `--help` text.
#[derive(Subcommand)]
pub enum Command {
    /// Validate pipeline files (including every jq program) and test files; exit non-zero on
    /// any error.
    Check(check::Args),
    /// Run the test cases of pipeline files (their `tests:`, and `NAME.test.yaml` beside
    /// them); directories are searched recursively. Exit 0 when all pass, 1 when any fails, 2
    /// when a file cannot be loaded.
    Test(test::Args),
    /// Show what every step of a pipeline makes of each event, and what the output (or the
    /// error policy) would receive. Events are read from standard input, one payload per line,
    /// unless given with --event. Nothing is connected.
    Eval(eval::Args),
    /// Print the JSON Schema of pipeline files, for editors (see the README).
    Schema(schema::Args),
    /// Run pipelines until their inputs end or SIGINT/SIGTERM.
    Run(run::Args),
    /// Run a pipeline inside an AWS Lambda function: its events are the function's invocations
    /// (Kafka, SQS, API Gateway, or any JSON) instead of what its `input` reads. Run as
    /// `bootstrap` without arguments, it is `sluice lambda` with the file SLUICE_PIPELINE names.
    Lambda(lambda::Args),
}

/// Most errors printed: past this many, more would only scroll the first ones away.
const MAX_SHOWN: usize = 100;

/// Prints configuration errors on standard error, with their count.
fn print_diagnostics(errors: &[Diagnostic]) {
    for e in errors.iter().take(MAX_SHOWN) {
        eprintln!("{e}");
    }
    if errors.len() > MAX_SHOWN {
        eprintln!("... and {} more errors not shown", errors.len() - MAX_SHOWN);
    }
    eprintln!(
        "{} error{} found",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
}

/// Runs `work` on a multi-threaded runtime.
pub fn block_on(work: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(work);
    // Standard input is read on a blocking thread that may never return; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}
