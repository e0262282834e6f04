//! The layout gate of `src/`: every file parsed as Rust, then held to the limits the project
//! keeps: file and function sizes, no import circle at any folder level, no component importing
//! a sibling component, `Result<_, String>` only at the configuration boundary, the runtime
//! used only from the top, and logs and metrics written only by the typed events of
//! `src/observe/`.
//!
//! Usage: `cargo run -p sluice-layout [SRC_DIR]` (default `src`); exits 1 with one line per
//! problem.
#![forbid(unsafe_code)]

mod events;
mod graph;
mod read;
mod sizes;

use std::path::PathBuf;
use std::process::ExitCode;

/// One thing the gate refuses: `key` names it without line numbers (what the tests compare),
/// `message` says where and why.
pub struct Problem {
    pub key: String,
    pub message: String,
}

fn main() -> ExitCode {
    let src = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "src".into()));
    let files = match read::files(&src) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("layout: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut problems = sizes::check(&files);
    problems.extend(graph::check(&files));
    problems.extend(events::check(&files));
    for p in &problems {
        println!("{}", p.message);
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
