//! `sluice test`: the test cases of pipeline files, with a JUnit report if asked for.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::print_diagnostics;
use crate::{testing, transform};

/// The arguments of `sluice test`.
#[derive(clap::Args)]
pub struct Args {
    /// Pipeline files, test files, or directories.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Also write a JUnit XML report to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

/// Runs the cases on a thread with the stack jq programs may need: exit 0 when all pass, 1 when
/// any fails, 2 when a file cannot be loaded or the report cannot be written.
pub fn run(args: &Args) -> ExitCode {
    let paths = args.paths.clone();
    let ran = std::thread::Builder::new()
        .name("test".into())
        .stack_size(transform::nesting::STACK)
        .spawn(move || testing::run(&paths))
        .map(|t| t.join());
    let outcome = match ran {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => {
            eprintln!("running the tests failed");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("cannot start the tests: {e}");
            return ExitCode::from(2);
        }
    };
    print!(
        "{}",
        testing::render(&outcome, std::io::stdout().is_terminal())
    );
    if let Some(file) = &args.junit
        && let Err(code) = write_junit(&outcome, file)
    {
        return code;
    }
    if !outcome.errors.is_empty() {
        print_diagnostics(&outcome.errors);
        return ExitCode::from(2);
    }
    match outcome.counts() {
        (_, 0) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// Writes the JUnit report of `outcome` to `file`; the exit code when it cannot.
fn write_junit(outcome: &testing::Outcome, file: &Path) -> Result<(), ExitCode> {
    let written = testing::junit::report(outcome)
        .map_err(|e| e.to_string())
        .and_then(|xml| std::fs::write(file, xml).map_err(|e| e.to_string()));
    written.map_err(|e| {
        eprintln!("{}: cannot write the JUnit report: {e}", file.display());
        ExitCode::from(2)
    })
}
