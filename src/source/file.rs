//! The `file` input: one event per line of a file, optionally following it as it grows.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncSeekExt, BufReader};

use super::lines::{Lines, Pumped};
use super::{BuiltInput, InputSpec};
use super::{SourceContext, SourceError};
use crate::codec::Codec;
use crate::codec::CodecConfig;
use crate::config::Build;
use crate::config::{HumanDuration, Validator};
use crate::observe::events::emit;
use crate::observe::events::file::FileReplaced;

/// Reads a file line by line from the start; blank lines are skipped.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Path of the file.
    pub path: PathBuf,
    /// Keep reading as the file grows (like `tail -F`, including truncation and rotation by
    /// rename) instead of ending the pipeline at end of file.
    #[serde(default)]
    pub follow: bool,
    /// With `follow`, how often to look for new lines.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    /// `json` (each line is a JSON document) or `raw` (each line is opaque text).
    #[serde(default)]
    pub codec: Codec,
}

// Frequent enough to feel live, rare enough to cost nothing when idle.
fn default_poll_interval() -> HumanDuration {
    HumanDuration(Duration::from_millis(250))
}

impl FileConfig {
    /// Checks values serde cannot.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        if self.path.as_os_str().is_empty() {
            v.error_at(&format!("{path}.path"), "path must not be empty");
        }
        if self.poll_interval.0.is_zero() {
            v.error_at(
                &format!("{path}.poll_interval"),
                "poll_interval must be more than 0",
            );
        }
    }
}

fn read_error(path: &std::path::Path, source: std::io::Error) -> SourceError {
    SourceError::Io {
        input: "file",
        path: Some(path.to_path_buf()),
        source,
    }
}

impl InputSpec for FileConfig {
    const KIND: &'static str = "file";
    type Built = FileConfig;

    fn codec(&self) -> CodecConfig {
        super::component::line_codec(self.codec)
    }

    fn build(&self, b: Build<'_, '_>) -> Option<FileConfig> {
        let Build { path, v, .. } = b;
        self.validate(path, v);
        Some(self.clone())
    }
}

impl BuiltInput for FileConfig {
    /// Reads the file until its end (or, with `follow`, until shutdown).
    async fn run(self, ctx: SourceContext) -> Result<(), SourceError> {
        let config = &self;
        let path = &config.path;
        let source: Arc<str> = Arc::from(path.display().to_string());
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| read_error(path, e))?;
        let mut inode = file
            .metadata()
            .await
            .map_err(|e| read_error(path, e))?
            .ino();
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut lines = Lines::new(source, ctx.max_event_bytes);
        loop {
            match lines
                .pump(&mut reader, &ctx, !config.follow)
                .await
                .map_err(|e| read_error(path, e))?
            {
                Pumped::Stopped => return Ok(()),
                Pumped::Eof if !config.follow => return Ok(()),
                Pumped::Eof => {}
            }
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(config.poll_interval.0) => {}
            }
            // Rotated (a new file at the path) or truncated: start over on the file now at the path.
            let at_path = tokio::fs::metadata(path).await.ok();
            let pos = reader
                .stream_position()
                .await
                .map_err(|e| read_error(path, e))?;
            let rotated = at_path.as_ref().is_some_and(|m| m.ino() != inode);
            let truncated = at_path
                .as_ref()
                .is_some_and(|m| m.ino() == inode && m.len() < pos);
            if rotated || truncated {
                emit(FileReplaced {
                    path,
                    rotated,
                    truncated,
                });
                file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| read_error(path, e))?;
                inode = file
                    .metadata()
                    .await
                    .map_err(|e| read_error(path, e))?
                    .ino();
                reader = BufReader::with_capacity(256 * 1024, file);
                // A last line without a line break ended with the old file.
                if !ctx
                    .intake
                    .send(lines.restart(&ctx).into_iter().collect())
                    .await
                {
                    return Ok(());
                }
            }
        }
    }
}
