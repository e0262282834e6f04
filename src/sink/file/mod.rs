//! The `file` output: events appended to a file, as lines, as an Avro object container file,
//! or as length-delimited Protobuf messages.

use crate::sink::Batches;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::deliver::{self, AllOrNothing, WriteAll};
use super::retry::Held;
use super::{BuiltOutput, OutputSpec};
use super::{SinkContext, SinkError, encode_lines, resolve_format};
use crate::codec::Format;
use crate::codec::payloads::Payloads;
use crate::codec::schema::{AvroFormatConfig, FormatConfig, ProtobufFormatConfig};
use crate::config::Build;
use crate::config::Validator;
use crate::delivery::ErrorKind;

mod container;
mod delimited;

/// Appends events to a file (created if missing). Events are confirmed once written (and,
/// with `fsync`, synced to disk).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileOutputConfig {
    /// Path of the file.
    pub path: PathBuf,
    /// `payload` (a line per event), `envelope` (a JSON object per line), `{avro: ...}` (an
    /// Avro object container file) or `{protobuf: ...}` (length-delimited messages). Default:
    /// `payload`, or `envelope` for a dead-letter output.
    #[serde(default)]
    pub format: Option<FileFormat>,
    /// Sync the file to disk before confirming each batch (survives a power loss; slower).
    #[serde(default)]
    pub fsync: bool,
}

/// How the `file` output writes events.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// The payload bytes, one event per line.
    Payload,
    /// A JSON object per line with the payload and its metadata.
    Envelope,
    /// An Avro object container file: the schema in its header, the results encoded with it in
    /// blocks (one a batch).
    Avro(AvroFileConfig),
    /// Protobuf messages, each after its length as a varint (Java's `writeDelimitedTo`).
    Protobuf(ProtobufFileConfig),
}

/// `format: {avro: ...}` of a file.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AvroFileConfig {
    /// The Avro schema file (`.avsc`) results are encoded with; the file's header holds it.
    pub schema_file: PathBuf,
    /// How blocks are compressed: `null` (not), `deflate`, `snappy` or `zstandard`.
    #[serde(default)]
    pub compression: AvroCompression,
}

/// An Avro object container file's codec.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AvroCompression {
    /// Not compressed (the Avro default).
    #[default]
    Null,
    /// Deflate (RFC 1951).
    Deflate,
    /// Snappy, with each block's CRC-32.
    Snappy,
    /// Zstandard.
    Zstandard,
}

/// `format: {protobuf: ...}` of a file.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtobufFileConfig {
    /// A `.proto` file (compiled at load) or a compiled descriptor set.
    pub schema_file: PathBuf,
    /// Where a `.proto` file's imports are looked up, besides its own directory.
    #[serde(default)]
    pub include_paths: Vec<PathBuf>,
    /// The message type written (`package.Message`).
    pub message: String,
}

impl FileOutputConfig {
    /// Checks values serde cannot.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        if self.path.as_os_str().is_empty() {
            v.error_at(&format!("{path}.path"), "path must not be empty");
        }
    }

    /// What the workers encode results as for this file: bare Avro or Protobuf bodies, the
    /// file supplying the framing; None for lines.
    pub fn encoding(&self) -> Option<FormatConfig> {
        match self.format.as_ref()? {
            FileFormat::Payload | FileFormat::Envelope => None,
            FileFormat::Avro(c) => Some(FormatConfig::Avro(AvroFormatConfig {
                registry: None,
                subject: None,
                schema_file: Some(c.schema_file.clone()),
                auto_register: false,
            })),
            FileFormat::Protobuf(c) => Some(FormatConfig::Protobuf(ProtobufFormatConfig {
                registry: None,
                subject: None,
                schema_file: Some(c.schema_file.clone()),
                include_paths: c.include_paths.clone(),
                message: Some(c.message.clone()),
                auto_register: false,
            })),
        }
    }
}

/// A file output, built.
#[derive(Debug, Clone)]
pub struct FileOutput {
    config: FileOutputConfig,
    /// The schema of an Avro file, for its header.
    avro: Option<Arc<serde_avro_fast::Schema>>,
}

impl FileOutput {
    /// The output of `config`, to be given its schema by [`FileOutput::frame`].
    pub fn new(config: FileOutputConfig) -> FileOutput {
        FileOutput { config, avro: None }
    }

    /// Takes the schema an Avro file's header holds from what the workers encode with
    /// (`payloads`), so both are the one read of `schema_file`. Problems go to `v` at `path`.
    pub fn frame(&mut self, payloads: &Payloads, path: &str, v: &mut Validator<'_>) {
        let Some(FileFormat::Avro(_)) = &self.config.format else {
            return;
        };
        let Some(text) = payloads.avro_output_schema() else {
            return;
        };
        match text.parse::<serde_avro_fast::Schema>() {
            Ok(schema) => self.avro = Some(Arc::new(schema)),
            Err(e) => v.error_at(
                &format!("{path}.format.avro.schema_file"),
                format!("an Avro file cannot be written with this schema: {e}"),
            ),
        }
    }
}

/// Why a file cannot be appended to. Each stops the output: what it holds, or how it ends,
/// will not change by trying again.
#[derive(Debug, thiserror::Error)]
enum FileError {
    /// Opening, reading, cutting or writing the file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// An Avro file's header names another schema.
    #[error(
        "holds records of another schema (its header's schema differs from schema_file by its canonical form): write to a new path. Its schema: {0}"
    )]
    OtherSchema(String),
    /// An Avro file's blocks are compressed with another codec.
    #[error(
        "its blocks are compressed with `{found}`, not `{wanted}`: set that compression or write to a new path"
    )]
    OtherCodec {
        /// The codec its header names.
        found: String,
        /// The codec of the output's settings.
        wanted: &'static str,
    },
    /// The file does not start as an Avro object container file does.
    #[error("is not an Avro object container file: write to a new path")]
    NotAvro,
    /// The file starts as an Avro file, but its header cannot be read.
    #[error("is not an Avro object container file: write to a new path (its header: {0})")]
    NotAvroHeader(apache_avro::Error),
    /// The schema of an Avro file's header is not a schema.
    #[error("its header's schema cannot be read: {0}")]
    HeaderSchema(serde_avro_fast::schema::SchemaError),
    /// Reading Avro headers at all failed (the header's own schema).
    #[error(transparent)]
    Avro(#[from] apache_avro::Error),
    /// An Avro block cannot be made of the records.
    #[error(transparent)]
    Blocks(#[from] serde_avro_fast::ser::SerError),
    /// What stands where an Avro block should start is not its counts.
    #[error("is damaged at byte {0}: not a block's counts")]
    BlockCounts(u64),
    /// An Avro block's counts are negative.
    #[error("is damaged at byte {at}: a block of {count} records in {size} bytes")]
    BlockSize {
        /// Where the block starts.
        at: u64,
        /// Its count of records.
        count: i64,
        /// Its count of bytes.
        size: i64,
    },
    /// An Avro block ends with a marker other than the file's.
    #[error("is damaged at byte {0}: the block there does not end with the file's sync marker")]
    SyncMarker(u64),
    /// What stands where a Protobuf message should start is not its length.
    #[error("is damaged at byte {0}: not a message's length")]
    MessageLength(u64),
    /// The Avro schema was not loaded when the output was built.
    #[error("the Avro schema was not loaded")]
    NoSchema,
    /// The thread opening the file failed.
    #[error(transparent)]
    Thread(#[from] tokio::task::JoinError),
}

/// The file at `path`, opened for reading and appending (created if missing), and its length:
/// an Avro or Protobuf file is read to its last whole record before it is appended to.
fn open_to_append(path: &std::path::Path) -> Result<(std::fs::File, u64), FileError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let len = file.metadata()?.len();
    Ok((file, len))
}

/// A reader that counts the bytes read through it.
struct Counted<'a, R>(&'a mut R, u64);

impl<R: std::io::Read> std::io::Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1 += n as u64;
        Ok(n)
    }
}

/// The error that stops the output writing `config.path`: an I/O error as such, the file's
/// own problems (what it holds, how it ends) as fatal: trying again will not change them.
fn write_error(config: &FileOutputConfig, e: impl Into<FileError>) -> SinkError {
    let path = Some(config.path.clone());
    match e.into() {
        FileError::Io(source) => SinkError::Io {
            output: "file",
            path,
            source,
        },
        other => SinkError::Output {
            output: "file",
            path,
            kind: ErrorKind::Fatal,
            source: Box::new(other),
        },
    }
}

/// How a batch becomes bytes in the file.
enum Framing<'c, 's> {
    Lines(Format),
    Avro(Box<container::Blocks<'c, 's>>),
    Delimited,
}

/// The file, appended to a batch at a time.
struct Appender<'a, 's> {
    config: &'a FileOutputConfig,
    file: tokio::fs::File,
    framing: Framing<'a, 's>,
    buf: Vec<u8>,
}

impl<'a, 's> Appender<'a, 's> {
    fn new(config: &'a FileOutputConfig, file: tokio::fs::File, framing: Framing<'a, 's>) -> Self {
        Appender {
            config,
            file,
            framing,
            buf: Vec::new(),
        }
    }
}

/// Writes `bytes` at the end of `file`, and syncs it with `fsync`.
async fn append(
    config: &FileOutputConfig,
    file: &mut tokio::fs::File,
    bytes: &[u8],
) -> Result<(), SinkError> {
    file.write_all(bytes)
        .await
        .map_err(|e| write_error(config, e))?;
    file.flush().await.map_err(|e| write_error(config, e))?;
    if config.fsync {
        file.sync_data().await.map_err(|e| write_error(config, e))?;
    }
    Ok(())
}

impl WriteAll for Appender<'_, '_> {
    async fn write_all(&mut self, batch: &[Held]) -> Result<(), SinkError> {
        let config = self.config;
        let events = batch.iter().map(|h| &h.event);
        let bytes = match &mut self.framing {
            Framing::Lines(format) => {
                self.buf.clear();
                encode_lines(events, *format, &mut self.buf);
                &self.buf[..]
            }
            Framing::Delimited => {
                self.buf.clear();
                delimited::encode(events.map(|e| &e.payload[..]), &mut self.buf);
                &self.buf[..]
            }
            Framing::Avro(blocks) => blocks
                .encode(events.map(|e| &e.payload[..]))
                .map_err(|e| write_error(config, e))?,
        };
        append(config, &mut self.file, bytes).await
    }
}

impl OutputSpec for FileOutputConfig {
    const KIND: &'static str = "file";
    type Built = FileOutput;

    fn build(&self, b: Build<'_, '_>) -> Option<FileOutput> {
        let Build { path, v, .. } = b;
        self.validate(path, v);
        Some(FileOutput::new(self.clone()))
    }

    fn format(&self) -> Option<std::borrow::Cow<'_, FormatConfig>> {
        self.encoding().map(std::borrow::Cow::Owned)
    }
}

impl BuiltOutput for FileOutput {
    /// Writes batches until the channel closes.
    async fn run(self, rx: Batches, ctx: SinkContext) -> Result<(), SinkError> {
        let output = &self;
        let config = &output.config;
        let path = config.path.clone();
        match &config.format {
            Some(FileFormat::Avro(avro)) => {
                let Some(schema) = output.avro.clone() else {
                    return Err(write_error(config, FileError::NoSchema));
                };
                let compression = avro.compression;
                let opened = {
                    let schema = schema.clone();
                    tokio::task::spawn_blocking(move || {
                        container::open(&path, &schema, compression)
                    })
                };
                let (file, sync) = opened
                    .await
                    .map_err(|e| write_error(config, e))?
                    .map_err(|e| write_error(config, e))?;
                let mut serializer = serde_avro_fast::ser::SerializerConfig::new(&schema);
                let (blocks, header) = container::Blocks::new(&mut serializer, compression, sync)
                    .map_err(|e| write_error(config, e))?;
                let mut file = tokio::fs::File::from_std(file);
                if let Some(header) = header {
                    append(config, &mut file, &header).await?;
                }
                deliver::run(
                    AllOrNothing(Appender::new(config, file, Framing::Avro(Box::new(blocks)))),
                    rx,
                    ctx,
                )
                .await
            }
            Some(FileFormat::Protobuf(_)) => {
                let file = tokio::task::spawn_blocking(move || delimited::open(&path))
                    .await
                    .map_err(|e| write_error(config, e))?
                    .map_err(|e| write_error(config, e))?;
                let file = tokio::fs::File::from_std(file);
                deliver::run(
                    AllOrNothing(Appender::new(config, file, Framing::Delimited)),
                    rx,
                    ctx,
                )
                .await
            }
            Some(FileFormat::Payload) | Some(FileFormat::Envelope) | None => {
                let format = resolve_format(
                    match config.format {
                        Some(FileFormat::Envelope) => Some(Format::Envelope),
                        Some(FileFormat::Payload) => Some(Format::Payload),
                        _ => None,
                    },
                    &ctx,
                );
                let file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .await
                    .map_err(|e| write_error(config, e))?;
                deliver::run(
                    AllOrNothing(Appender::new(config, file, Framing::Lines(format))),
                    rx,
                    ctx,
                )
                .await
            }
        }
    }
}
