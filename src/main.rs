//! The `sluice` command: check or run pipeline files.

use std::ops::ControlFlow;
use std::process::ExitCode;

use clap::Parser;
use sluice::cli::{self, Cli, Command, logs};
use sluice::runtime::shutdown::unix_signals;

// Events are allocated on the input's thread and freed on the output's: glibc's malloc contends
// on its arena locks for that, mimalloc frees across threads without them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// On Linux mimalloc commits a whole arena when it reserves one, so pages it frees and purges stay
// resident and count against the pod's memory: peak RSS was 30-70 MiB higher with it
// (BENCHMARKS.md, "Memory"). Committing as used gives purged pages back. Set from an ELF
// constructor, which runs before the first allocation reserves an arena (and after mimalloc's
// own, which reads its options from the environment).
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static COMMIT_ARENAS_AS_USED: extern "C" fn() = commit_arenas_as_used;

/// mimalloc.h's `mi_option_arena_eager_commit`; libmimalloc-sys names no constant for it.
#[cfg(target_os = "linux")]
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Sets mimalloc's `arena_eager_commit` to 0 unless `MIMALLOC_ARENA_EAGER_COMMIT` set it (to
/// anything but mimalloc's default, 2: "eager where the system overcommits").
#[cfg(target_os = "linux")]
extern "C" fn commit_arenas_as_used() {
    // SAFETY: plain calls into mimalloc's option table, made before any thread is started.
    unsafe {
        if libmimalloc_sys::mi_option_get(ARENA_EAGER_COMMIT) == 2 {
            libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        }
    }
}

fn main() -> ExitCode {
    let cli = if cli::lambda::is_bootstrap(std::env::args_os()) {
        if std::env::var_os("SLUICE_PIPELINE").is_none() {
            eprintln!("bootstrap: set SLUICE_PIPELINE to the pipeline file to run");
            return ExitCode::FAILURE;
        }
        Cli::parse_from(["sluice", "lambda"])
    } else {
        Cli::parse()
    };
    match cli.command {
        Command::Check(args) => cli::check::run(&args),
        Command::Test(args) => cli::test::run(&args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Schema(args) => cli::schema::run(&args),
        // Logs start once the files are loaded: their errors are printed, not logged.
        Command::Run(args) => match cli::run::load(&args) {
            ControlFlow::Break(code) => code,
            ControlFlow::Continue(pipelines) => {
                logs::init(args.log_format);
                let run = cli::run::run(pipelines, args.metrics_addr, unix_signals);
                cli::block_on(run)
            }
        },
        Command::Lambda(args) => match cli::lambda::load(&args) {
            ControlFlow::Break(code) => code,
            ControlFlow::Continue(pipeline) => {
                logs::init(args.log_format);
                cli::block_on(cli::lambda::run(pipeline, unix_signals))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    /// The constructor ran in this binary (its tests link it too) and changed mimalloc's option,
    /// unless the environment set it.
    #[cfg(target_os = "linux")]
    #[test]
    fn mimalloc_commits_arenas_as_used() {
        if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_some() {
            return;
        }
        // SAFETY: reads mimalloc's option table.
        let value = unsafe { libmimalloc_sys::mi_option_get(super::ARENA_EAGER_COMMIT) };
        assert_eq!(value, 0, "arena_eager_commit");
    }
}
