//! Logs on standard error, for the subcommands that run pipelines.

use clap::ValueEnum;

/// Log format on stderr.
#[derive(Clone, Copy, ValueEnum)]
// The variants' names say it all; a doc comment on them would add itself to `--help`.
#[allow(missing_docs)]
pub enum LogFormat {
    Human,
    Json,
}

/// Installs the global `tracing` subscriber, writing to stderr in `format`, at `RUST_LOG`'s
/// levels (info without it).
pub fn init(format: LogFormat) {
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
