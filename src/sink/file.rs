//! The `file` output: one event per line, appended to a file.

use std::path::PathBuf;

use serde::Deserialize;
use tokio::sync::mpsc;

use super::deliver::{self, Attempt, Protocol};
use super::retry::Held;
use super::{LineWriter, SinkContext, SinkError, resolve_format};
use crate::codec::Format;
use crate::config::Validator;
use crate::event::Event;

/// Appends each event as a line to a file (created if missing). Events are confirmed once
/// written (and, with `fsync`, synced to disk).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileOutputConfig {
    /// Path of the file.
    pub path: PathBuf,
    /// `payload` or `envelope`. Default: `payload`, or `envelope` for a dead-letter output.
    #[serde(default)]
    pub format: Option<Format>,
    /// Sync the file to disk before confirming each batch (survives a power loss; slower).
    #[serde(default)]
    pub fsync: bool,
}

impl FileOutputConfig {
    /// Checks values serde cannot.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        if self.path.as_os_str().is_empty() {
            v.error_at(&format!("{path}.path"), "path must not be empty");
        }
    }
}

fn write_error(config: &FileOutputConfig, e: std::io::Error) -> SinkError {
    SinkError::Write {
        output: "file",
        message: format!("{}: {e}", config.path.display()),
    }
}

/// Writes batches until the channel closes.
pub async fn run(
    config: &FileOutputConfig,
    rx: mpsc::Receiver<Vec<Event>>,
    ctx: SinkContext,
) -> Result<(), SinkError> {
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&config.path)
        .await
        .map_err(|e| write_error(config, e))?;
    let writer = Appender {
        lines: LineWriter::new(resolve_format(config.format, &ctx), file),
        config,
    };
    deliver::run(writer, rx, ctx).await
}

/// The file, appended to a batch at a time.
struct Appender<'a> {
    config: &'a FileOutputConfig,
    lines: LineWriter<tokio::fs::File>,
}

impl Protocol for Appender<'_> {
    // A failed write is final: the output stops.
    const RETRIES: bool = false;

    async fn attempt(
        &mut self,
        batch: Vec<Held>,
        attempt: &mut Attempt,
        _ctx: &SinkContext,
    ) -> Result<(), SinkError> {
        let config = self.config;
        self.lines
            .write(&batch)
            .await
            .map_err(|e| write_error(config, e))?;
        if config.fsync {
            let file = &mut self.lines.out;
            file.sync_data().await.map_err(|e| write_error(config, e))?;
        }
        attempt.delivered_all(batch);
        Ok(())
    }
}
