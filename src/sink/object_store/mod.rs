//! The `object_store` output: batches of events written as objects (S3 and S3-compatible stores,
//! Azure Blob Storage, Google Cloud Storage, local files), each named after what it holds, an
//! input acknowledged only once every object holding its events is stored.

mod batch;
mod call;
mod encode;
mod parquet;
mod stored;
mod template;
mod write;

use crate::sink::Batches;
use std::sync::Arc;

use indexmap::IndexMap;
use object_store::ObjectStore;
use object_store::path::Path;
use serde::Deserialize;

use super::{BuiltOutput, OutputSpec};
use super::{SinkContext, SinkError};
use crate::config::Build;
use crate::config::{ByteSize, HumanDuration, Secret, Validator};
pub use template::PathTemplate;

/// Writes events as objects: `url` names the store and the prefix every object goes under,
/// `path` the folder below it per event, and each object holds a batch of events of one folder
/// and one input lane (a Kafka partition, say), named after its first and last event.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectStoreOutputConfig {
    /// Where: `s3://bucket/prefix`, `az://container/prefix` (or `abfs://`), `gs://bucket/prefix`,
    /// `file:///dir`, `memory:///` (in this process only).
    pub url: String,
    /// The folder of each event under the prefix: text with strftime fields of the event's time
    /// in UTC (`dt=%Y-%m-%d/hour=%H`) and jq expressions on the event (`service={{ .service }}`).
    /// Empty: every object directly under the prefix.
    #[serde(default)]
    pub path: String,
    /// `ndjson`: one payload per line; `parquet`: the columns of `schema`.
    #[serde(default)]
    pub format: ObjectFormat,
    /// The columns of a Parquet object, each the event's field of the same name; other fields
    /// are not written, and an event that does not fit is dead-lettered.
    #[serde(default)]
    pub schema: Vec<parquet::Column>,
    /// `none`, `gzip` or `zstd`, and for Parquet also `snappy`: of the whole object for NDJSON,
    /// of each column inside a Parquet object.
    #[serde(default)]
    pub compression: Compression,
    /// When an object is written.
    #[serde(default)]
    pub batch: ObjectBatch,
    /// How long one request to the store may take (the upload of an object or of one 8 MiB part
    /// of a larger one, a listing) before it fails as an unreachable store does: retried with
    /// `settings.retry`, counted toward the circuit and readiness. Raise it when uploads are
    /// slower than about 2 MB/s.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Store settings, by the store's own names: `endpoint`, `region`,
    /// `virtual_hosted_style_request`, `allow_http`, `access_key_id`, `secret_access_key`,
    /// `account_name`, `access_key`, `use_emulator`, `service_account_key`, ... Unset ones come
    /// from the environment (`AWS_*`, `AZURE_*`, `GOOGLE_*`) and the provider's default chain.
    /// Values are never logged.
    #[serde(default)]
    pub options: IndexMap<String, Secret>,
}

/// How events are written into an object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObjectFormat {
    /// One payload per line, as the file output writes them.
    #[default]
    Ndjson,
    /// Apache Parquet, one row per event, the columns declared in `schema`.
    Parquet,
}

/// How an object is compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Not compressed.
    #[default]
    None,
    /// gzip (`.gz`).
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
    /// Snappy, inside Parquet objects only.
    Snappy,
}

/// When the events of a folder and lane are written as an object: whichever comes first.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectBatch {
    /// Events per object.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// Bytes of payload per object, before compression.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// How long the first event of an object may wait for the object to fill.
    #[serde(default = "default_max_age")]
    pub max_age: HumanDuration,
}

// Large enough that query engines read few objects, small enough to be written within a minute.
fn default_max_events() -> usize {
    100_000
}

// What Athena, Spark and DuckDB read efficiently as one file, uncompressed.
fn default_max_bytes() -> ByteSize {
    ByteSize(64 * 1024 * 1024)
}

// A minute of delay is what archiving to object storage usually tolerates.
fn default_max_age() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(60))
}

// A third of the store clients' own 30 s, so that three timeouts in a row (the circuit's
// `open_after`) take about as long as one did before; a 16 MiB object, the largest uploaded in one
// request, still fits in it at 1.6 MB/s.
fn default_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}

impl Default for ObjectBatch {
    fn default() -> Self {
        ObjectBatch {
            max_events: default_max_events(),
            max_bytes: default_max_bytes(),
            max_age: default_max_age(),
        }
    }
}

/// An `object_store` output, built.
#[derive(Clone)]
pub struct ObjectStoreOutput {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    config: ObjectStoreOutputConfig,
    encoder: Arc<encode::Encoder>,
    pipeline: Arc<str>,
}

impl std::fmt::Debug for ObjectStoreOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStoreOutput")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl ObjectStoreOutput {
    /// Why the output's format would leave an event with this payload out of its object (it then
    /// follows the error policy with step `output`); None when it would not.
    pub fn rejects(&self, payload: &bytes::Bytes) -> Option<String> {
        self.encoder.rejects(payload)
    }
}

impl ObjectStoreOutputConfig {
    /// How objects are made, from `format`, `schema` and `compression`.
    fn encoder(&self, path: &str, v: &mut Validator<'_>) -> Option<encode::Encoder> {
        let schema = format!("{path}.schema");
        match self.format {
            ObjectFormat::Ndjson => {
                if !self.schema.is_empty() {
                    v.error_at(&schema, "only the parquet format takes a schema");
                }
                if self.compression == Compression::Snappy {
                    let message = "snappy is for parquet; NDJSON takes none, gzip or zstd";
                    v.error_at(&format!("{path}.compression"), message);
                }
                Some(encode::Encoder::Ndjson(self.compression))
            }
            ObjectFormat::Parquet if self.schema.is_empty() => {
                let message = "parquet needs a `schema`: its columns, each a name and a type";
                v.error_at(&format!("{path}.format"), message);
                None
            }
            ObjectFormat::Parquet => {
                let columns = parquet::schema(&self.schema, &schema, v)?;
                let parquet = parquet::Parquet::new(columns, self.compression);
                Some(encode::Encoder::Parquet(Box::new(parquet)))
            }
        }
    }
}

/// A store setting that cannot be used: the option it is about (None: the URL).
struct StoreError {
    option: Option<String>,
    message: String,
}

fn url_error(message: impl std::fmt::Display) -> StoreError {
    StoreError {
        option: None,
        message: message.to_string(),
    }
}

/// The store `url` names, with `options`, and the prefix in it. A cloud store's client gives up
/// on a request after `timeout`, unless `options` set its `timeout` otherwise.
fn store(
    url: &str,
    options: &IndexMap<String, Secret>,
    timeout: std::time::Duration,
) -> Result<(Arc<dyn ObjectStore>, Path), StoreError> {
    use object_store::ObjectStoreScheme as Scheme;
    let parsed = url::Url::parse(url).map_err(|e| url_error(format!("not a URL: {e}")))?;
    let (scheme, prefix) = Scheme::parse(&parsed).map_err(url_error)?;
    let local = matches!(scheme, Scheme::Local | Scheme::Memory);
    if let (true, Some(key)) = (local, options.keys().next()) {
        return Err(StoreError {
            option: Some(key.clone()),
            message: format!("a {} store takes no options", parsed.scheme()),
        });
    }
    // The cloud stores' HTTP client takes the process's TLS provider: ring, as everywhere else.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The client's own request timeout (30 s) would cut a longer `timeout` short.
    let timeout = format!("{}ms", timeout.as_millis());
    // A cloud store from its builder, with the environment, the URL, no retries of its own, the
    // request timeout, and `options` by its own key names.
    macro_rules! cloud {
        ($builder:ty, $key:ty) => {{
            let builder = <$builder>::from_env()
                .with_url(url)
                .with_retry(no_retries())
                .with_config(<$key>::Client(ClientConfigKey::Timeout), &timeout);
            let builder = configure::<$key, _>(builder, options, |b, k, v| b.with_config(k, v))?;
            Arc::new(builder.build().map_err(url_error)?)
        }};
    }
    use object_store::{ClientConfigKey, aws, azure, gcp};
    let store: Arc<dyn ObjectStore> = match scheme {
        Scheme::Local => Arc::new(object_store::local::LocalFileSystem::new()),
        Scheme::Memory => Arc::new(object_store::memory::InMemory::new()),
        Scheme::AmazonS3 => cloud!(aws::AmazonS3Builder, aws::AmazonS3ConfigKey),
        Scheme::MicrosoftAzure => cloud!(azure::MicrosoftAzureBuilder, azure::AzureConfigKey),
        Scheme::GoogleCloudStorage => cloud!(gcp::GoogleCloudStorageBuilder, gcp::GoogleConfigKey),
        other => return Err(url_error(format!("{other:?} stores are not supported"))),
    };
    Ok((store, prefix))
}

/// The store client's own retries are off: the output retries with its retry settings and
/// circuit breaker, as every output does, and readiness follows them.
fn no_retries() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 0,
        ..Default::default()
    }
}

/// Applies each option to `builder`, by the store's own key names.
fn configure<K: std::str::FromStr, B>(
    mut builder: B,
    options: &IndexMap<String, Secret>,
    set: impl Fn(B, K, String) -> B,
) -> Result<B, StoreError>
where
    K::Err: std::fmt::Display,
{
    for (key, value) in options {
        let parsed = key.parse::<K>().map_err(|e| StoreError {
            option: Some(key.clone()),
            message: format!("unknown option {key:?}: {e}"),
        })?;
        builder = set(builder, parsed, value.0.clone());
    }
    Ok(builder)
}

impl OutputSpec for ObjectStoreOutputConfig {
    const KIND: &'static str = "object_store";
    type Built = ObjectStoreOutput;

    fn build(&self, b: Build<'_, '_>) -> Option<ObjectStoreOutput> {
        let Build { path, cx, v } = b;
        let pipeline = cx.pipeline;
        let store = match store(&self.url, &self.options, self.timeout.0) {
            Ok(store) => Some(store),
            Err(StoreError { option, message }) => {
                let at = match option {
                    Some(key) => format!("{path}.options.{key}"),
                    None => format!("{path}.url"),
                };
                v.error_at(&at, message);
                None
            }
        };
        let template = PathTemplate::parse(&self.path)
            .map_err(|e| v.error_at(&format!("{path}.path"), e.to_string()))
            .ok();
        let batch = &self.batch;
        let at = |key: &str| format!("{path}.batch.{key}");
        if batch.max_events == 0 {
            v.error_at(&at("max_events"), "must be above 0");
        }
        if batch.max_bytes.0 == 0 {
            v.error_at(&at("max_bytes"), "must be above 0");
        }
        if batch.max_age.0.is_zero() {
            v.error_at(&at("max_age"), "must be above 0s");
        }
        if self.timeout.0.is_zero() {
            v.error_at(&format!("{path}.timeout"), "must be above 0s");
        }
        let encoder = self.encoder(path, v);
        template?;
        let (store, prefix) = store?;
        Some(ObjectStoreOutput {
            store,
            prefix,
            config: self.clone(),
            encoder: Arc::new(encoder?),
            pipeline: Arc::from(pipeline),
        })
    }

    fn gathers_bytes(&self) -> usize {
        self.batch.max_bytes.0
    }
}

impl BuiltOutput for ObjectStoreOutput {
    /// Writes the events of `rx` as objects until the channel closes; what is buffered then is
    /// written before returning.
    async fn run(self, rx: Batches, ctx: SinkContext) -> Result<(), SinkError> {
        write::run(self, rx, ctx).await
    }

    fn rejects(&self, payload: &bytes::Bytes) -> Option<String> {
        ObjectStoreOutput::rejects(self, payload)
    }
}
