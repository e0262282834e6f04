//! The layout gate of `src/`: every file parsed as Rust, then held to the limits the project
//! keeps: file and function sizes, no import circle at any folder level, no component importing
//! a sibling component, `Result<_, String>` only at the configuration boundary, and the runtime
//! used only from the top.
//!
//! Usage: `cargo run -p sluice-layout [SRC_DIR]` (default `src`); exits 1 with one line per
//! problem. `--keys` prints the key of each problem instead (the form `known.txt` lists).
#![forbid(unsafe_code)]

mod graph;
mod read;
mod sizes;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

/// One thing the gate refuses: `key` names it without line numbers (so that the list of known
/// problems does not change as lines move), `message` says where and why.
pub struct Problem {
    pub key: String,
    pub message: String,
}

/// Problems known when the gate came, each to be mended; a listed problem that no longer occurs
/// fails the gate too, so the list only shrinks.
const KNOWN: &str = include_str!("../known.txt");

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let keys = args.iter().any(|a| a == "--keys");
    let src = PathBuf::from(args.iter().find(|a| *a != "--keys").map_or("src", |a| a));
    let files = match read::files(&src) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("layout: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut problems = sizes::check(&files);
    problems.extend(graph::check(&files));
    if keys {
        problems.iter().for_each(|p| println!("{}", p.key));
        return ExitCode::SUCCESS;
    }
    report(&problems)
}

fn report(problems: &[Problem]) -> ExitCode {
    let known: BTreeSet<&str> = KNOWN
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let seen: BTreeSet<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    let mut failed = false;
    for p in problems.iter().filter(|p| !known.contains(p.key.as_str())) {
        println!("{}", p.message);
        failed = true;
    }
    for gone in known.difference(&seen) {
        println!("scripts/layout/known.txt: `{gone}` no longer occurs: take it off the list");
        failed = true;
    }
    let waived = problems.len()
        - problems
            .iter()
            .filter(|p| !known.contains(p.key.as_str()))
            .count();
    if waived > 0 {
        println!("layout: {waived} known problems still to mend (scripts/layout/known.txt)");
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
