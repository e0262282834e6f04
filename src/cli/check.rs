//! `sluice check`: pipeline files, and test files (`NAME.test.yaml`) as test files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use super::print_diagnostics;
use crate::{pipeline, testing};

/// The arguments of `sluice check`.
#[derive(clap::Args)]
pub struct Args {
    /// Pipeline files, and test files (`NAME.test.yaml`).
    #[arg(required = true)]
    pub pipelines: Vec<PathBuf>,
    /// `human`, or `json`: the errors as a JSON array of {file, line, column, message} on
    /// standard output, for editors and CI annotations.
    #[arg(long, default_value = "human")]
    pub format: Format,
}

/// How `sluice check` reports.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
// The variants' names say it all; a doc comment on them would add itself to `--help`.
#[allow(missing_docs)]
pub enum Format {
    Human,
    Json,
}

/// Checks every file, printing what is wrong (or what is fine); fails on any error.
pub fn run(args: &Args) -> ExitCode {
    let (tests, pipelines): (Vec<PathBuf>, Vec<PathBuf>) = args
        .pipelines
        .iter()
        .cloned()
        .partition(|p| testing::is_test_file(p));
    let mut errors = Vec::new();
    let mut ok = Vec::new();
    if !pipelines.is_empty() {
        match pipeline::load_files(&pipelines) {
            Ok(loaded) => ok.extend(loaded.iter().map(|p| {
                for warning in pipeline::warnings(p) {
                    eprintln!("{}: warning: {warning}", p.file.display());
                }
                format!("{}: ok (pipeline `{}`)", p.file.display(), p.name)
            })),
            Err(e) => errors.extend(e),
        }
    }
    for file in &tests {
        match testing::check_test_file(file) {
            Ok(n) => ok.push(format!(
                "{}: ok ({n} test case{})",
                file.display(),
                if n == 1 { "" } else { "s" }
            )),
            Err(e) => errors.extend(e),
        }
    }
    if args.format == Format::Json {
        match serde_json::to_string_pretty(&errors) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("cannot write the errors as JSON: {e}"),
        }
    } else if errors.is_empty() {
        for line in ok {
            println!("{line}");
        }
    } else {
        print_diagnostics(&errors);
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
