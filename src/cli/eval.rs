//! `sluice eval`: what every step of a pipeline makes of given events, with nothing connected.

use std::path::PathBuf;
use std::process::ExitCode;

use super::print_diagnostics;
use crate::{pipeline, testing, transform};

/// The arguments of `sluice eval`.
#[derive(clap::Args)]
pub struct Args {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// An event's payload (repeatable); without it, lines of standard input.
    #[arg(long)]
    pub event: Vec<String>,
}

/// Evaluates the events on a thread with the stack jq programs may need, and prints the result.
pub fn run(args: Args) -> ExitCode {
    let pipeline = match pipeline::load_file(&args.pipeline) {
        Ok(p) => p,
        Err(errors) => {
            print_diagnostics(&errors);
            return ExitCode::FAILURE;
        }
    };
    let events = if args.event.is_empty() {
        match stdin_events() {
            Ok(events) => events,
            Err(e) => {
                eprintln!("cannot read standard input: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        args.event
    };
    let ran = std::thread::Builder::new()
        .name("eval".into())
        .stack_size(transform::nesting::STACK)
        .spawn(move || testing::eval::eval(&pipeline, &events))
        .map(|t| t.join());
    match ran {
        Ok(Ok(Ok(text))) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(Ok(Err(e))) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Ok(Err(_)) => {
            eprintln!("evaluating the events failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("cannot start: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The lines of standard input that are not blank, one payload each.
fn stdin_events() -> std::io::Result<Vec<String>> {
    use std::io::BufRead;
    let lines: Vec<String> = std::io::stdin().lock().lines().collect::<Result<_, _>>()?;
    Ok(lines.into_iter().filter(|l| !l.trim().is_empty()).collect())
}
