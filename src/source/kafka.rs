//! The `kafka` input: a consumer in a consumer group, committing only delivered offsets.

use serde::Deserialize;

use crate::codec::Codec;
use crate::config::{ClientOptions, HumanDuration, Validator};

/// Reads topics as a member of a consumer group; replicas with the same `group_id` share the
/// partitions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaInputConfig {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Topics to read. An entry starting with `^` is a regular expression over topic names.
    pub topics: Vec<String>,
    /// Consumer group id.
    pub group_id: String,
    /// Where a group with no committed offset starts: `earliest` or `latest`.
    #[serde(default)]
    pub start_from: StartFrom,
    /// How often offsets of delivered events are committed (also on rebalance and shutdown).
    #[serde(default = "default_commit_interval")]
    pub commit_interval: HumanDuration,
    /// `json` or `raw`.
    #[serde(default)]
    pub codec: Codec,
    /// librdkafka consumer properties (`security.protocol`, `sasl.*`, `ssl.*`, ...).
    #[serde(default)]
    pub options: ClientOptions,
}

/// Start position of a new consumer group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    /// The oldest retained record.
    #[default]
    Earliest,
    /// Only records produced after the group first joins.
    Latest,
}

// librdkafka's auto-commit default is 5 s; committing delivered offsets as often keeps replays
// after a crash as short as users expect from a Kafka consumer.
fn default_commit_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(5))
}

impl KafkaInputConfig {
    /// Checks values serde cannot.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        check_brokers(&self.brokers, &format!("{path}.brokers"), v);
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            v.error_at(
                &format!("{path}.topics"),
                "topics must list at least one non-empty topic name or ^regex",
            );
        }
        if self.group_id.trim().is_empty() {
            v.error_at(&format!("{path}.group_id"), "group_id must not be empty");
        }
        check_options(
            &self.options,
            &["group.id", "bootstrap.servers", "enable.auto.offset.store"],
            &format!("{path}.options"),
            v,
        );
    }
}

/// Brokers must be `host:port` entries.
pub(crate) fn check_brokers(brokers: &str, path: &str, v: &mut Validator<'_>) {
    let bad: Vec<&str> = brokers
        .split(',')
        .map(str::trim)
        .filter(|b| {
            b.rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        })
        .collect();
    if brokers.trim().is_empty() {
        v.error_at(path, "brokers must not be empty");
    } else if !bad.is_empty() {
        v.error_at(
            path,
            format!(
                "brokers must be host:port entries separated by commas; not valid: {}",
                bad.join(", ")
            ),
        );
    }
}

/// Options sluice sets itself cannot be overridden: they decide delivery guarantees.
pub(crate) fn check_options(
    options: &ClientOptions,
    reserved: &[&str],
    path: &str,
    v: &mut Validator<'_>,
) {
    for key in options.0.keys() {
        if reserved.contains(&key.as_str()) {
            v.error_at(
                &format!("{path}.{key}"),
                format!("`{key}` is set by sluice from the pipeline file and cannot be overridden"),
            );
        }
    }
}
