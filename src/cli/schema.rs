//! `sluice schema`: the JSON Schema of pipeline files or of test files, for editors.

use std::process::ExitCode;

use crate::pipeline;

/// The arguments of `sluice schema`.
#[derive(clap::Args)]
pub struct Args {
    /// The schema of test files (`NAME.test.yaml`) instead.
    #[arg(long)]
    pub tests: bool,
}

/// Prints the schema on standard output.
pub fn run(args: &Args) -> ExitCode {
    let schema = match args.tests {
        false => pipeline::schema(),
        true => pipeline::test_file_schema(),
    };
    match serde_json::to_string_pretty(&schema) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write the schema: {e}");
            ExitCode::FAILURE
        }
    }
}
