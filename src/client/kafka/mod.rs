//! The Kafka client settings shared by the Kafka input and output: the connection keys and
//! their checks, error text without secrets, what errors mean, and readiness from librdkafka's
//! statistics.

mod connection;
mod link;
mod security;

pub(crate) use connection::kafka_config;
pub use connection::{Connection, check_brokers, check_options};
pub use link::BrokerLink;
pub use security::{SaslConfig, SaslMechanism, Security};

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::config::Validator;
use crate::delivery::Cause;
use crate::delivery::ErrorKind;

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

/// A Kafka client (consumer, producer) that librdkafka would not make. Its text is
/// [`client_error`]'s, and the error it holds has the value of a secret property taken out:
/// librdkafka's own error quotes it, in its text and its `Debug` form alike.
#[derive(Debug, thiserror::Error)]
#[error("{}", client_error(.0))]
pub struct ClientError(#[source] KafkaError);

impl From<KafkaError> for ClientError {
    fn from(error: KafkaError) -> Self {
        use rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN;
        ClientError(match error {
            // A property librdkafka does not know may be a misspelled secret.
            KafkaError::ClientConfig(res, description, key, value)
                if (crate::config::is_secret(&key) || res == RD_KAFKA_CONF_UNKNOWN)
                    && !value.is_empty() =>
            {
                let description = description.replace(value.as_str(), "<redacted>");
                KafkaError::ClientConfig(res, description, key, "<redacted>".into())
            }
            other => other,
        })
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
    fn a_client_refused_for_a_secret_property_never_shows_its_value() {
        let refused = ClientConfig::new()
            .set("sasl.passwrod", "pw-1")
            .create::<rdkafka::producer::BaseProducer>()
            .map(|_| ())
            .map_err(ClientError::from);
        let error = refused.expect_err("librdkafka refuses a property it does not know");
        assert_eq!(
            error.to_string(),
            "unknown librdkafka property `sasl.passwrod`"
        );
        assert!(!format!("{error:?}").contains("pw-1"), "{error:?}");
        let secret = KafkaError::ClientConfig(
            rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"pw-2\" for sasl.password".into(),
            "sasl.password".into(),
            "pw-2".into(),
        );
        let error = ClientError::from(secret);
        assert_eq!(
            error.to_string(),
            "librdkafka property `sasl.password`: Invalid value \"<redacted>\" for sasl.password"
        );
        assert!(!format!("{error:?}").contains("pw-2"), "{error:?}");
    }
}
