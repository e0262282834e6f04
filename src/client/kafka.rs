//! The Kafka client settings shared by the Kafka input and output: checking brokers and
//! librdkafka options, error text without secrets, and readiness from librdkafka's statistics.

use std::sync::Arc;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Statistics};
use serde::Deserialize;

use super::ErrorKind;
use super::tls::TlsConfig;
use crate::config::{ClientOptions, Secret, Validator};
use crate::delivery::Cause;
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

/// What every Kafka input and output is given: brokers, the `tls` and `sasl` blocks, and
/// librdkafka `options`.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// Bootstrap brokers, `host:port[,...]`.
    pub brokers: &'a str,
    /// The `tls` and `sasl` blocks.
    pub security: Security<'a>,
    /// librdkafka properties from the file.
    pub options: &'a ClientOptions,
}

impl Settings<'_> {
    /// Checks the brokers, the `tls` and `sasl` blocks, and `options`, which may not set
    /// `reserved` (what the input or output sets from its own keys). `path` is the input or
    /// output.
    pub fn check(&self, reserved: &[&str], path: &str, v: &mut Validator<'_>) {
        check_brokers(self.brokers, &format!("{path}.brokers"), v);
        self.security.validate(self.options, path, v);
        check_options(self.options, reserved, &format!("{path}.options"), v);
    }

    /// The client configuration of a pipeline's input or output: brokers, client id and
    /// statistics interval, then the input's or output's `own` properties, then the `tls` and
    /// `sasl` blocks' and `options` (last, so they win).
    pub fn client_config<'p>(
        &self,
        pipeline: &str,
        own: impl IntoIterator<Item = (&'p str, String)>,
    ) -> ClientConfig {
        let mut cc = ClientConfig::new();
        cc.set("bootstrap.servers", self.brokers)
            .set("client.id", format!("sluice-{pipeline}"))
            .set("statistics.interval.ms", STATS_INTERVAL_MS);
        for (k, v) in own {
            cc.set(k, v);
        }
        for (k, v) in self.security.properties() {
            cc.set(k, v);
        }
        for (k, v) in &self.options.0 {
            cc.set(k, v);
        }
        cc
    }
}

/// `client` once librdkafka has checked it whole, without connecting (reported at `path`, the
/// input or output); None when the checks before it found a problem (`v` has more errors than
/// `errors_before`).
pub fn checked_client(
    client: ClientConfig,
    errors_before: usize,
    path: &str,
    v: &mut Validator<'_>,
) -> Option<ClientConfig> {
    if v.errors.len() > errors_before {
        return None;
    }
    if let Err(e) = client.create_native_config() {
        v.error_at(path, client_error(&e));
    }
    Some(client)
}

/// `config` with librdkafka's log level taken from the logging set up now: a configuration
/// built before logging was (when the pipeline file was loaded) would forward none of the
/// client's logs.
pub fn with_current_log_level(config: &ClientConfig) -> ClientConfig {
    let mut now = ClientConfig::new();
    // Keys from `config_map`, values from `get`: `config_map` shows passwords as a placeholder.
    for key in config.config_map().into_keys() {
        if let Some(value) = config.get(key) {
            now.set(key, value);
        }
    }
    now
}

/// How often librdkafka reports statistics (high watermarks for the lag gauge, broker connection
/// states for readiness), unless the pipeline sets `statistics.interval.ms` itself.
const STATS_INTERVAL_MS: &str = "5000";

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
                metrics::counter!(crate::observe::names::KAFKA_CONNECTS_TOTAL, &labels)
                    .increment(1);
                tracing::info!(pipeline = %self.pipeline, client = self.client, "kafka brokers reachable");
            } else {
                metrics::counter!(crate::observe::names::KAFKA_DISCONNECTS_TOTAL, &labels)
                    .increment(1);
                tracing::warn!(pipeline = %self.pipeline, client = self.client, "no kafka broker reachable");
            }
        }
    }
}

/// What a produce or delivery error means, for every Kafka output.
pub fn classify(error: &KafkaError) -> ErrorKind {
    use RDKafkaErrorCode as C;
    match error.rdkafka_error_code() {
        // librdkafka purges its queue and refuses every record after a fatal error.
        Some(C::Fatal | C::PurgeQueue | C::PurgeInflight) => ErrorKind::Fatal,
        Some(
            C::MessageTimedOut
            | C::AllBrokersDown
            | C::BrokerTransportFailure
            | C::RequestTimedOut
            | C::NetworkException
            | C::BrokerNotAvailable
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::NotCoordinator
            | C::CoordinatorNotAvailable
            | C::KafkaStorageError
            | C::ThrottlingQuotaExceeded,
        ) => ErrorKind::Retriable,
        Some(
            C::MessageSizeTooLarge
            | C::InvalidMessage
            | C::InvalidMessageSize
            | C::InvalidRecord
            | C::InvalidTimestamp
            | C::BadMessage
            | C::UnknownPartition,
        ) => ErrorKind::Refused(Cause::Event),
        _ => ErrorKind::Refused(Cause::Output),
    }
}

/// SASL authentication of a Kafka client.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SaslConfig {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub username: String,
    /// The password.
    pub password: Secret,
}

/// A SASL mechanism librdkafka supports without further libraries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub enum SaslMechanism {
    /// User name and password sent as they are: only over TLS outside tests.
    #[serde(rename = "PLAIN")]
    Plain,
    /// Salted challenge-response with SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// Salted challenge-response with SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// The `tls` and `sasl` blocks of a Kafka input or output, mapped onto librdkafka properties.
#[derive(Debug, Clone, Copy)]
pub struct Security<'a> {
    /// TLS to the brokers.
    pub tls: Option<&'a TlsConfig>,
    /// SASL authentication.
    pub sasl: Option<&'a SaslConfig>,
}

/// The librdkafka properties the `tls` and `sasl` blocks set: `options` may not set them too.
const SECURITY_PROPERTIES: &[&str] = &[
    "security.protocol",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.key.password",
    "enable.ssl.certificate.verification",
    "ssl.endpoint.identification.algorithm",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
];

impl Security<'_> {
    /// The librdkafka properties of these blocks (none when neither is given).
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut props = Vec::new();
        let protocol = match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => return props,
            (true, false) => "SSL",
            (false, true) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        };
        props.push(("security.protocol", protocol.to_string()));
        if let Some(tls) = self.tls {
            let path = |p: &std::path::Path| p.display().to_string();
            if let Some(ca) = &tls.ca_file {
                props.push(("ssl.ca.location", path(ca)));
            }
            if let Some(cert) = &tls.cert_file {
                props.push(("ssl.certificate.location", path(cert)));
            }
            if let Some(key) = &tls.key_file {
                props.push(("ssl.key.location", path(key)));
            }
            if let Some(password) = &tls.key_password {
                props.push(("ssl.key.password", password.0.clone()));
            }
            if tls.insecure_skip_verify {
                props.push(("enable.ssl.certificate.verification", "false".into()));
                props.push(("ssl.endpoint.identification.algorithm", "none".into()));
            }
        }
        if let Some(sasl) = self.sasl {
            props.push(("sasl.mechanism", sasl.mechanism.as_str().into()));
            props.push(("sasl.username", sasl.username.clone()));
            props.push(("sasl.password", sasl.password.0.clone()));
        }
        props
    }

    /// Checks the blocks without connecting: files readable and PEM, nothing librdkafka cannot
    /// do, and no property set both here and in `options`. `path` is the input or output.
    pub fn validate(&self, options: &ClientOptions, path: &str, v: &mut Validator<'_>) {
        if let Some(tls) = self.tls {
            let mut errors = tls.files(tls.key_password.is_some());
            if tls.server_name.is_some() {
                errors.push(super::tls::error(
                    "server_name",
                    "server_name is not supported for Kafka: librdkafka verifies each broker by the host name it advertises",
                ));
            }
            super::tls::report(errors, &format!("{path}.tls"), v);
        }
        if let Some(sasl) = self.sasl
            && sasl.username.is_empty()
        {
            v.error_at(
                &format!("{path}.sasl.username"),
                "username must not be empty",
            );
        }
        if self.tls.is_some() || self.sasl.is_some() {
            for key in options.0.keys() {
                if SECURITY_PROPERTIES.contains(&key.as_str()) {
                    v.error_at_key(
                        &format!("{path}.options"),
                        key,
                        format!("`{key}` is set by the tls and sasl blocks: set it there"),
                    );
                }
            }
        }
    }

    /// Logs the choices a user should know are in effect.
    pub fn warn(&self, pipeline: &str) {
        if self.tls.is_some_and(TlsConfig::is_insecure) {
            tracing::warn!(
                pipeline,
                "tls.insecure_skip_verify is set: Kafka brokers' certificates are not checked"
            );
        }
        if self.tls.is_none()
            && self
                .sasl
                .is_some_and(|s| s.mechanism == SaslMechanism::Plain)
        {
            tracing::warn!(
                pipeline,
                "sasl PLAIN without tls: the password crosses the network unencrypted"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_with_the_current_log_level_keeps_every_value_passwords_too() {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", "b:9092")
            .set("sasl.password", "pw-1")
            .set("ssl.key.password", "pw-2");
        let copy = with_current_log_level(&config);
        assert_eq!(copy.get("bootstrap.servers"), Some("b:9092"));
        assert_eq!(copy.get("sasl.password"), Some("pw-1"));
        assert_eq!(copy.get("ssl.key.password"), Some("pw-2"));
        assert_eq!(copy.config_map().len(), 3);
    }

    #[test]
    fn errors_are_retriable_refused_for_the_event_or_the_output_or_fatal() {
        use RDKafkaErrorCode as C;
        let kind = |code| classify(&KafkaError::MessageProduction(code));
        assert_eq!(kind(C::MessageTimedOut), ErrorKind::Retriable);
        assert_eq!(kind(C::AllBrokersDown), ErrorKind::Retriable);
        assert_eq!(kind(C::NotLeaderForPartition), ErrorKind::Retriable);
        assert_eq!(
            kind(C::MessageSizeTooLarge),
            ErrorKind::Refused(Cause::Event)
        );
        assert_eq!(kind(C::InvalidTimestamp), ErrorKind::Refused(Cause::Event));
        assert_eq!(
            kind(C::TopicAuthorizationFailed),
            ErrorKind::Refused(Cause::Output)
        );
        assert_eq!(
            kind(C::UnknownTopicOrPartition),
            ErrorKind::Refused(Cause::Output)
        );
        assert_eq!(kind(C::Fatal), ErrorKind::Fatal);
        assert_eq!(kind(C::PurgeQueue), ErrorKind::Fatal);
    }

    #[test]
    fn tls_and_sasl_blocks_map_onto_librdkafka_properties() {
        let tls = TlsConfig {
            ca_file: Some("/ca.pem".into()),
            cert_file: Some("/c.pem".into()),
            key_file: Some("/k.pem".into()),
            key_password: Some(Secret("kp".into())),
            ..TlsConfig::default()
        };
        let sasl = SaslConfig {
            mechanism: SaslMechanism::ScramSha512,
            username: "app".into(),
            password: Secret("pw".into()),
        };
        let props = |tls, sasl| Security { tls, sasl }.properties();
        assert_eq!(props(None, None), []);
        assert_eq!(
            props(None, Some(&sasl)),
            [
                ("security.protocol", "SASL_PLAINTEXT".to_string()),
                ("sasl.mechanism", "SCRAM-SHA-512".into()),
                ("sasl.username", "app".into()),
                ("sasl.password", "pw".into()),
            ]
        );
        assert_eq!(
            props(Some(&tls), None),
            [
                ("security.protocol", "SSL".to_string()),
                ("ssl.ca.location", "/ca.pem".into()),
                ("ssl.certificate.location", "/c.pem".into()),
                ("ssl.key.location", "/k.pem".into()),
                ("ssl.key.password", "kp".into()),
            ]
        );
        let insecure = TlsConfig {
            insecure_skip_verify: true,
            ..TlsConfig::default()
        };
        assert_eq!(
            props(Some(&insecure), Some(&sasl))[..3],
            [
                ("security.protocol", "SASL_SSL".to_string()),
                ("enable.ssl.certificate.verification", "false".into()),
                ("ssl.endpoint.identification.algorithm", "none".into()),
            ]
        );
        // Every property they set is accepted by librdkafka as it is.
        let mut cc = ClientConfig::new();
        for (k, v) in props(Some(&tls), Some(&sasl)) {
            cc.set(k, v);
        }
        cc.create_native_config().expect("librdkafka takes them");
        let shown = format!("{sasl:?} {tls:?}");
        assert!(!shown.contains("pw") && !shown.contains("kp"), "{shown}");
    }
}
