//! The `tls` and `sasl` blocks of the Kafka inputs and outputs, as librdkafka properties.

use serde::Deserialize;

use crate::client::tls::{self, TlsConfig};
use crate::config::{ClientOptions, Secret, Validator};
use crate::observe::events::emit;
use crate::observe::events::kafka::{InsecureTls, PlainWithoutTls};

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
                errors.push(tls::error(
                    "server_name",
                    "server_name is not supported for Kafka: librdkafka verifies each broker by the host name it advertises",
                ));
            }
            tls::report(errors, &format!("{path}.tls"), v);
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
            emit(InsecureTls { pipeline });
        }
        if self.tls.is_none()
            && self
                .sasl
                .is_some_and(|s| s.mechanism == SaslMechanism::Plain)
        {
            emit(PlainWithoutTls { pipeline });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::ClientConfig;

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
