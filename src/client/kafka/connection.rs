//! Where and how a Kafka input or output connects: `brokers`, `tls`, `sasl` and librdkafka
//! `options`, checked and turned into a client configuration the same way for each.

use rdkafka::ClientConfig;

use super::{STATS_INTERVAL_MS, SaslConfig, Security, client_error};
use crate::client::tls::TlsConfig;
use crate::config::{ClientOptions, Validator};

/// Declares a Kafka input's or output's configuration (see
/// [`connected_config`](crate::client::connected_config)): `brokers` first, then its own keys,
/// then `options` (documented by `$options`, the properties of which client), `tls` and
/// `sasl`, all read into its `connection`.
macro_rules! kafka_config {
    (
        $(#[doc = $doc:tt])*
        pub struct $name:ident { $($own:tt)* }
        options: $options:tt
    ) => {
        $crate::client::connected_config! {
            $(#[doc = $doc])*
            pub struct $name { $($own)* }
            connection $crate::client::kafka::Connection {
                first {
                    /// Bootstrap brokers, `host:port[,host:port...]`.
                    brokers: String,
                }
                last {
                    #[doc = $options]
                    #[serde(default)]
                    options: $crate::config::ClientOptions,
                    /// TLS to the brokers: `ca_file`, `cert_file` + `key_file` (with `key_password` for an
                    /// encrypted key), `insecure_skip_verify`.
                    #[serde(default)]
                    tls: Option<$crate::client::tls::TlsConfig>,
                    /// SASL authentication: `mechanism` (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`),
                    /// `username`, `password`.
                    #[serde(default)]
                    sasl: Option<$crate::client::kafka::SaslConfig>,
                }
            }
        }
    };
}

pub(crate) use kafka_config;

/// What every Kafka input and output is given: brokers, the `tls` and `sasl` blocks, and
/// librdkafka `options`.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Bootstrap brokers, `host:port[,...]`.
    pub brokers: String,
    /// librdkafka properties from the file.
    pub options: ClientOptions,
    /// TLS to the brokers.
    pub tls: Option<TlsConfig>,
    /// SASL authentication.
    pub sasl: Option<SaslConfig>,
}

impl Connection {
    /// The `tls` and `sasl` blocks.
    pub fn security(&self) -> Security<'_> {
        Security {
            tls: self.tls.as_ref(),
            sasl: self.sasl.as_ref(),
        }
    }

    /// Checks the brokers, the `tls` and `sasl` blocks, and `options`, which may not set
    /// `reserved` (what the input or output sets from its own keys). `path` is the input or
    /// output.
    pub fn check(&self, reserved: &[&str], path: &str, v: &mut Validator<'_>) {
        check_brokers(&self.brokers, &format!("{path}.brokers"), v);
        self.security().validate(&self.options, path, v);
        check_options(&self.options, reserved, &format!("{path}.options"), v);
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
        cc.set("bootstrap.servers", &self.brokers)
            .set("client.id", format!("sluice-{pipeline}"))
            .set("statistics.interval.ms", STATS_INTERVAL_MS);
        for (k, v) in own {
            cc.set(k, v);
        }
        for (k, v) in self.security().properties() {
            cc.set(k, v);
        }
        for (k, v) in &self.options.0 {
            cc.set(k, v);
        }
        cc
    }
}

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
