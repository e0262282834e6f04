//! The `sluice` command: check or run pipeline files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use sluice::observe::health::Health;
use sluice::runtime::shutdown::{Ended, supervise, unix_signals};
use tokio_util::sync::CancellationToken;

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

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Move and reshape events between Kafka, NATS and local inputs/outputs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate pipeline files (including every jq program) and test files; exit non-zero on
    /// any error.
    Check {
        /// Pipeline files, and test files (`NAME.test.yaml`).
        #[arg(required = true)]
        pipelines: Vec<PathBuf>,
        /// `human`, or `json`: the errors as a JSON array of {file, line, column, message} on
        /// standard output, for editors and CI annotations.
        #[arg(long, default_value = "human")]
        format: CheckFormat,
    },
    /// Run the test cases of pipeline files (their `tests:`, and `NAME.test.yaml` beside
    /// them); directories are searched recursively. Exit 0 when all pass, 1 when any fails, 2
    /// when a file cannot be loaded.
    Test {
        /// Pipeline files, test files, or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Also write a JUnit XML report to this file.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Show what every step of a pipeline makes of each event, and what the output (or the
    /// error policy) would receive. Events are read from standard input, one payload per line,
    /// unless given with --event. Nothing is connected.
    Eval {
        /// The pipeline file.
        pipeline: PathBuf,
        /// An event's payload (repeatable); without it, lines of standard input.
        #[arg(long)]
        event: Vec<String>,
    },
    /// Print the JSON Schema of pipeline files, for editors (see the README).
    Schema {
        /// The schema of test files (`NAME.test.yaml`) instead.
        #[arg(long)]
        tests: bool,
    },
    /// Run pipelines until their inputs end or SIGINT/SIGTERM.
    Run {
        /// Pipeline files.
        #[arg(required = true)]
        pipelines: Vec<PathBuf>,
        /// Log format on stderr.
        #[arg(long, env = "SLUICE_LOG_FORMAT", default_value = "human")]
        log_format: LogFormat,
        /// Address for /metrics, /health/live and /health/ready, `host:port` (for example
        /// 0.0.0.0:9090 or localhost:9090). Without it no HTTP endpoint is opened.
        #[arg(long, env = "SLUICE_METRICS_ADDR")]
        metrics_addr: Option<String>,
        /// Load and build every pipeline (files read, clients configured), connect to nothing,
        /// and exit: the check to run before a rollout.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run a pipeline inside an AWS Lambda function: its events are the function's invocations
    /// (Kafka, SQS, API Gateway, or any JSON) instead of what its `input` reads. Run as
    /// `bootstrap` without arguments, it is `sluice lambda` with the file SLUICE_PIPELINE names.
    Lambda {
        /// The pipeline file.
        #[arg(env = "SLUICE_PIPELINE")]
        pipeline: PathBuf,
        /// Log format on stderr.
        #[arg(long, env = "SLUICE_LOG_FORMAT", default_value = "human")]
        log_format: LogFormat,
    },
}

/// Whether this is a Lambda function's `bootstrap` started without arguments, as the Lambda
/// runtime starts it: then it runs `sluice lambda`.
fn is_lambda_bootstrap() -> bool {
    let mut args = std::env::args_os();
    let name = args.next();
    let name = name.as_deref().map(std::path::Path::new);
    name.and_then(|n| n.file_name()) == Some(std::ffi::OsStr::new("bootstrap"))
        && args.next().is_none()
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CheckFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

fn init_logs(format: LogFormat) {
    let mut filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // The NATS client logs each of its events at info level, and sluice logs them again with
    // the pipeline and servers: keep the client's own only when asked for by name.
    if !std::env::var("RUST_LOG").is_ok_and(|v| v.contains("async_nats"))
        && let Ok(quiet) = "async_nats=warn".parse()
    {
        filter = filter.add_directive(quiet);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colours only for a person at a terminal, not in files or log collectors.
        LogFormat::Human => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Most errors printed: past this many, more would only scroll the first ones away.
const MAX_SHOWN: usize = 100;

fn print_diagnostics(errors: &[sluice::config::Diagnostic]) {
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

fn main() -> ExitCode {
    let cli = if is_lambda_bootstrap() {
        if std::env::var_os("SLUICE_PIPELINE").is_none() {
            eprintln!("bootstrap: set SLUICE_PIPELINE to the pipeline file to run");
            return ExitCode::FAILURE;
        }
        Cli::parse_from(["sluice", "lambda"])
    } else {
        Cli::parse()
    };
    match cli.command {
        Command::Check { pipelines, format } => check(&pipelines, format),
        Command::Test { paths, junit } => test(&paths, junit.as_deref()),
        Command::Eval { pipeline, event } => eval(pipeline, event),
        Command::Schema { tests } => match serde_json::to_string_pretty(&match tests {
            false => sluice::pipeline::schema(),
            true => sluice::pipeline::test_file_schema(),
        }) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot write the schema: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run {
            pipelines,
            log_format,
            metrics_addr,
            dry_run,
        } => {
            let loaded = match sluice::pipeline::load_files(&pipelines) {
                Ok(loaded) => loaded,
                Err(errors) => {
                    print_diagnostics(&errors);
                    return ExitCode::FAILURE;
                }
            };
            if dry_run {
                for p in &loaded {
                    println!("{}: ready to run ({})", p.file.display(), p.describe());
                }
                return ExitCode::SUCCESS;
            }
            init_logs(log_format);
            block_on(run(loaded, metrics_addr))
        }
        Command::Lambda {
            pipeline,
            log_format,
        } => {
            let pipeline = match sluice::pipeline::load_file(&pipeline) {
                Ok(p) => p,
                Err(errors) => {
                    print_diagnostics(&errors);
                    return ExitCode::FAILURE;
                }
            };
            init_logs(log_format);
            block_on(lambda(pipeline))
        }
    }
}

/// Runs `work` on a multi-threaded runtime.
fn block_on(work: impl std::future::Future<Output = ExitCode>) -> ExitCode {
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

/// `sluice lambda`: serves invocations until SIGTERM/SIGINT or a failure.
async fn lambda(pipeline: sluice::pipeline::Pipeline) -> ExitCode {
    let health = Health::new(1);
    let deadline = pipeline.config.settings.shutdown_timeout.0;
    let shutdown = CancellationToken::new();
    let runs = health.clone();
    let work = sluice::lambda::run(pipeline, shutdown.clone(), move |p, stop| {
        sluice::runtime::run_pipeline(p, stop, runs)
    });
    match supervise(work, shutdown, &health, deadline, unix_signals()).await {
        Ended::Finished(Ok(())) => ExitCode::SUCCESS,
        Ended::Finished(Err(e)) => {
            tracing::error!(error = %e, "exiting on error");
            ExitCode::FAILURE
        }
        Ended::DeadlinePassed | Ended::SecondSignal(_) => ExitCode::FAILURE,
    }
}

/// `sluice check`: pipeline files, and test files (`NAME.test.yaml`) as test files.
fn check(paths: &[PathBuf], format: CheckFormat) -> ExitCode {
    let (tests, pipelines): (Vec<PathBuf>, Vec<PathBuf>) = paths
        .iter()
        .cloned()
        .partition(|p| sluice::testing::is_test_file(p));
    let mut errors = Vec::new();
    let mut ok = Vec::new();
    if !pipelines.is_empty() {
        match sluice::pipeline::load_files(&pipelines) {
            Ok(loaded) => ok.extend(loaded.iter().map(|p| {
                for warning in sluice::pipeline::warnings(p) {
                    eprintln!("{}: warning: {warning}", p.file.display());
                }
                format!("{}: ok (pipeline `{}`)", p.file.display(), p.name)
            })),
            Err(e) => errors.extend(e),
        }
    }
    for file in &tests {
        match sluice::testing::check_test_file(file) {
            Ok(n) => ok.push(format!(
                "{}: ok ({n} test case{})",
                file.display(),
                if n == 1 { "" } else { "s" }
            )),
            Err(e) => errors.extend(e),
        }
    }
    if format == CheckFormat::Json {
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

/// `sluice eval`, on a thread with the stack jq programs may need.
fn eval(file: PathBuf, events: Vec<String>) -> ExitCode {
    let pipeline = match sluice::pipeline::load_file(&file) {
        Ok(p) => p,
        Err(errors) => {
            print_diagnostics(&errors);
            return ExitCode::FAILURE;
        }
    };
    let events = if events.is_empty() {
        use std::io::BufRead;
        let lines: Result<Vec<String>, _> = std::io::stdin().lock().lines().collect();
        match lines {
            Ok(lines) => lines.into_iter().filter(|l| !l.trim().is_empty()).collect(),
            Err(e) => {
                eprintln!("cannot read standard input: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        events
    };
    let ran = std::thread::Builder::new()
        .name("eval".into())
        .stack_size(sluice::transform::nesting::STACK)
        .spawn(move || sluice::testing::eval::eval(&pipeline, &events))
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

/// `sluice test`: the cases run on a thread with the stack jq programs may need.
fn test(paths: &[PathBuf], junit: Option<&std::path::Path>) -> ExitCode {
    let paths = paths.to_vec();
    let ran = std::thread::Builder::new()
        .name("test".into())
        .stack_size(sluice::transform::nesting::STACK)
        .spawn(move || sluice::testing::run(&paths))
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
    use std::io::IsTerminal;
    print!(
        "{}",
        sluice::testing::render(&outcome, std::io::stdout().is_terminal())
    );
    if let Some(file) = junit {
        let written = sluice::testing::junit::report(&outcome)
            .map_err(|e| e.to_string())
            .and_then(|xml| std::fs::write(file, xml).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("{}: cannot write the JUnit report: {e}", file.display());
            return ExitCode::from(2);
        }
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

async fn run(pipelines: Vec<sluice::pipeline::Pipeline>, metrics_addr: Option<String>) -> ExitCode {
    let health = Health::new(pipelines.len());
    let server_stop = CancellationToken::new();
    let _stop_server = server_stop.clone().drop_guard();
    if let Some(name) = metrics_addr {
        let addr = match tokio::net::lookup_host(name.as_str()).await {
            Ok(mut addrs) => match addrs.next() {
                Some(addr) => addr,
                None => {
                    tracing::error!(address = %name, "the metrics address resolves to nothing");
                    return ExitCode::FAILURE;
                }
            },
            Err(e) => {
                tracing::error!(address = %name, error = %e, "invalid metrics address: expected host:port");
                return ExitCode::FAILURE;
            }
        };
        let handle = match sluice::observe::server::install_recorder() {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "cannot install the metrics recorder");
                return ExitCode::FAILURE;
            }
        };
        match sluice::observe::server::bind(addr, handle, health.clone(), server_stop.clone()).await
        {
            Ok(server) => {
                tokio::spawn(async move {
                    if let Err(e) = server.await {
                        tracing::error!(error = %e, "metrics endpoint failed");
                    }
                });
            }
            Err(e) => {
                tracing::error!(address = %addr, error = %e, "cannot listen for metrics");
                return ExitCode::FAILURE;
            }
        }
    }
    let deadline = pipelines
        .iter()
        .map(|p| p.config.settings.shutdown_timeout.0)
        .max()
        .unwrap_or(Duration::from_secs(25));
    let shutdown = CancellationToken::new();
    let work = tokio::spawn(sluice::runtime::run_all(
        pipelines,
        shutdown.clone(),
        health.clone(),
    ));
    match supervise(work, shutdown, &health, deadline, unix_signals()).await {
        Ended::Finished(Ok(Ok(()))) => ExitCode::SUCCESS,
        Ended::Finished(Ok(Err(errors))) => {
            for e in &errors {
                tracing::error!(error = %e, "exiting on error");
            }
            ExitCode::FAILURE
        }
        Ended::Finished(Err(e)) => {
            tracing::error!(error = %e, "internal error");
            ExitCode::FAILURE
        }
        Ended::DeadlinePassed | Ended::SecondSignal(_) => ExitCode::FAILURE,
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
