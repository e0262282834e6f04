//! The `kafka` output: an idempotent producer; each event is confirmed by its delivery report.

use serde::Deserialize;

use crate::config::{ClientOptions, HumanDuration, Validator};
use crate::source::kafka::{check_brokers, check_options};

/// Produces to a topic. A `route` step's `destination`, `key`, `partition`, `timestamp` and
/// `headers` are used per event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaOutputConfig {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Topic for events with no `destination` of their own.
    pub topic: String,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    #[serde(default)]
    pub compression: Compression,
    /// Idempotent producer: retries never duplicate or reorder records within a partition.
    #[serde(default = "default_true")]
    pub idempotent: bool,
    /// How long the producer waits to fill a batch.
    #[serde(default = "default_linger")]
    pub linger: HumanDuration,
    /// How long a record may take to be delivered, retries included, before it fails.
    #[serde(default = "default_delivery_timeout")]
    pub delivery_timeout: HumanDuration,
    /// librdkafka producer properties (`security.protocol`, `sasl.*`, `ssl.*`, ...).
    #[serde(default)]
    pub options: ClientOptions,
}

/// Producer compression codec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4: cheap on CPU, good ratio on JSON.
    #[default]
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The librdkafka name.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

fn default_true() -> bool {
    true
}

// librdkafka's default linger.ms is 5 ms.
fn default_linger() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(5))
}

// librdkafka's default delivery.timeout.ms is 300 s.
fn default_delivery_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}

impl KafkaOutputConfig {
    /// Checks values serde cannot.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        check_brokers(&self.brokers, &format!("{path}.brokers"), v);
        if self.topic.trim().is_empty() {
            v.error_at(&format!("{path}.topic"), "topic must not be empty");
        }
        check_options(
            &self.options,
            &[
                "bootstrap.servers",
                "enable.idempotence",
                "compression.codec",
                "compression.type",
            ],
            &format!("{path}.options"),
            v,
        );
    }
}
