//! The Kafka client settings shared by the Kafka input and output: checking brokers and
//! librdkafka options, error text without secrets, and readiness from librdkafka's statistics.

use std::sync::Arc;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Statistics};

use crate::config::{ClientOptions, Validator};
use crate::observe::health::Link;

/// Brokers must be `host:port` entries.
pub fn check_brokers(brokers: &str, path: &str, v: &mut Validator<'_>) {
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
pub fn check_options(
    options: &ClientOptions,
    reserved: &[&str],
    path: &str,
    v: &mut Validator<'_>,
) {
    for (key, value) in &options.0 {
        if reserved.contains(&key.as_str()) {
            v.error_at_key(
                path,
                key,
                format!("`{key}` is set by sluice from the pipeline file and cannot be overridden"),
            );
            continue;
        }
        // librdkafka checks names and values as they are set, without connecting.
        let mut one = ClientConfig::new();
        one.set(key, value);
        if let Err(e) = one.create_native_config() {
            v.error_at_key(path, key, client_error(&e));
        }
    }
    if let Some(ms) = options.0.get("statistics.interval.ms")
        && ms.trim().parse::<u64>().is_ok_and(|ms| ms == 0)
    {
        v.error_at(
            &format!("{path}.statistics.interval.ms"),
            "statistics.interval.ms must be above 0: readiness and the lag gauge come from statistics",
        );
    }
}

/// How often librdkafka reports statistics (high watermarks for the lag gauge, broker connection
/// states for readiness), unless the pipeline sets `statistics.interval.ms` itself.
pub const STATS_INTERVAL_MS: &str = "5000";

/// A librdkafka error for a log or a message. A configuration error names the property, and
/// shows its value only when the name is a known one that does not look secret (librdkafka's
/// own text quotes the value, and a misspelled `sasl.passwrod` is still a password).
pub fn client_error(error: &KafkaError) -> String {
    match error {
        KafkaError::ClientConfig(
            rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN,
            _,
            key,
            _,
        ) => {
            format!("unknown librdkafka property `{key}`")
        }
        KafkaError::ClientConfig(_, description, key, value) => {
            let description = if crate::config::is_secret(key) && !value.is_empty() {
                description.replace(value.as_str(), "<redacted>")
            } else {
                description.clone()
            };
            format!("librdkafka property `{key}`: {description}")
        }
        other => other.to_string(),
    }
}

/// Whether a Kafka client can reach the cluster, for readiness: up while librdkafka's
/// statistics show a broker connection `UP`, down from "all brokers down" until they do again.
pub struct BrokerLink {
    link: Option<Arc<Link>>,
    pipeline: Arc<str>,
    client: &'static str,
}

impl BrokerLink {
    /// Reports the connection state of `client` (`consumer`, `producer`) to `link`.
    pub fn new(link: Option<Arc<Link>>, pipeline: &str, client: &'static str) -> Self {
        BrokerLink {
            link,
            pipeline: Arc::from(pipeline),
            client,
        }
    }

    /// Reads the broker connection states from statistics.
    pub fn stats(&self, statistics: &Statistics) {
        self.set(statistics.brokers.values().any(|b| b.state == "UP"));
    }

    /// A client-wide error from librdkafka: logged, and "all brokers down" marks it disconnected.
    pub fn error(&self, error: &KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.set(false);
        }
        tracing::warn!(pipeline = %self.pipeline, client = self.client, error = %error, reason, "kafka client error");
    }

    /// A log line of librdkafka's, as tracing records of target `librdkafka`. A `FAIL` line
    /// (a broker connection failed) is only logged at debug level: the same failure reaches
    /// [`BrokerLink::error`], which logs it with the pipeline and client.
    pub fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            _ if fac == "FAIL" => {
                tracing::debug!(target: "librdkafka", pipeline = %self.pipeline, client = self.client, "{fac} {message}")
            }
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(target: "librdkafka", pipeline = %self.pipeline, client = self.client, "{fac} {message}")
            }
            L::Warning => {
                tracing::warn!(target: "librdkafka", pipeline = %self.pipeline, client = self.client, "{fac} {message}")
            }
            L::Notice | L::Info => {
                tracing::info!(target: "librdkafka", pipeline = %self.pipeline, client = self.client, "{fac} {message}")
            }
            L::Debug => {
                tracing::debug!(target: "librdkafka", pipeline = %self.pipeline, client = self.client, "{fac} {message}")
            }
        }
    }

    fn set(&self, up: bool) {
        if let Some(link) = &self.link
            && link.set(up)
        {
            let labels = [
                ("pipeline", self.pipeline.to_string()),
                ("client", self.client.to_string()),
            ];
            if up {
                metrics::counter!("sluice_kafka_connects_total", &labels).increment(1);
                tracing::info!(pipeline = %self.pipeline, client = self.client, "kafka brokers reachable");
            } else {
                metrics::counter!("sluice_kafka_disconnects_total", &labels).increment(1);
                tracing::warn!(pipeline = %self.pipeline, client = self.client, "no kafka broker reachable");
            }
        }
    }
}
