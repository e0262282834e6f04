//! What a broker starts from: its listeners, the Java command line, a fresh cluster id, and the
//! settings and storage written into its folder.

use std::fmt::Write as _;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

use super::{Broker, PASSWORD, USER};
use crate::pki::Pki;

/// The one-node settings every broker starts from.
const BASE_SETTINGS: &str = include_str!("../../../scripts/apache-kafka/server.properties");

/// A listener of the broker: how clients reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// No TLS, no authentication: the test's own clients, and the broker's own traffic.
    Plaintext,
    /// TLS with the certificate `broker.pem` of the [`Pki`]; no client certificate asked for.
    Tls,
    /// TLS requiring a client certificate signed by the [`Pki`]'s authority.
    MutualTls,
    /// SASL (PLAIN or SCRAM-SHA-512, as [`USER`]) without TLS.
    Sasl,
    /// SASL over TLS.
    SaslTls,
    /// No TLS, no authentication, for containers on the machine's podman networks: bound on
    /// every address, advertised as `host.containers.internal`, the name podman gives the
    /// machine inside its containers (the machine's own address on their network).
    Containers,
}

impl Listener {
    pub(super) const SECURED: [Listener; 4] = [
        Listener::Tls,
        Listener::MutualTls,
        Listener::Sasl,
        Listener::SaslTls,
    ];

    /// The listener's name in the broker's settings.
    fn name(self) -> &'static str {
        match self {
            Listener::Plaintext => "PLAINTEXT",
            Listener::Tls => "TLS",
            Listener::MutualTls => "MTLS",
            Listener::Sasl => "SASL",
            Listener::SaslTls => "SASL_TLS",
            Listener::Containers => "CONTAINERS",
        }
    }

    /// Its security protocol.
    fn protocol(self) -> &'static str {
        match self {
            Listener::Plaintext | Listener::Containers => "PLAINTEXT",
            Listener::Tls | Listener::MutualTls => "SSL",
            Listener::Sasl => "SASL_PLAINTEXT",
            Listener::SaslTls => "SASL_SSL",
        }
    }
}

/// Where Apache Kafka's jars are: `$SLUICE_KAFKA_LIBS`, else where `scripts/setup.sh kafka`
/// puts them.
fn libs() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLUICE_KAFKA_LIBS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    Path::new(&home).join(".cache/sluice/apache-kafka/libs")
}

/// A `java` command with the broker's class path, heap bound and log settings.
pub(super) fn java(dir: &Path) -> Command {
    let mut cmd = Command::new("java");
    cmd.args(["-Xms128m", "-Xmx512m", "-XX:+ExitOnOutOfMemoryError"])
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            dir.join("log4j2.properties").display()
        ))
        .arg("-cp")
        .arg(format!("{}/*", libs().display()))
        .stdin(Stdio::null());
    cmd
}

/// A fresh cluster id: 16 random bytes in URL-safe base64 without padding, as Kafka's
/// `random-uuid` prints them, and like those never starting with `-` (a command line would
/// take it for an option).
fn cluster_id() -> String {
    loop {
        // Each `RandomState` is seeded from the OS's randomness.
        let mut bytes = [0u8; 16];
        for half in bytes.chunks_mut(8) {
            half.copy_from_slice(&RandomState::new().hash_one(0u8).to_le_bytes());
        }
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        if !id.starts_with('-') {
            return id;
        }
    }
}

impl Broker {
    /// Writes `server.properties` and `log4j2.properties` into the broker's folder.
    pub(super) fn write_settings(&self, pki: Option<&Pki>) -> Result<(), String> {
        let dir = self.dir.path();
        let mut s = String::from(BASE_SETTINGS);
        let at = |l: &(Listener, u16), host: &str| format!("{}://{host}:{}", l.0.name(), l.1);
        let (listen, advertised): (Vec<String>, Vec<String>) = self
            .ports
            .iter()
            .map(|l| match l.0 {
                Listener::Containers => (at(l, "0.0.0.0"), at(l, "host.containers.internal")),
                _ => (at(l, "127.0.0.1"), at(l, "127.0.0.1")),
            })
            .unzip();
        let mut protocols: Vec<String> = self
            .ports
            .iter()
            .map(|(l, _)| format!("{}:{}", l.name(), l.protocol()))
            .collect();
        protocols.push("CONTROLLER:PLAINTEXT".into());
        let _ = writeln!(s, "node.id=1");
        let _ = writeln!(
            s,
            "controller.quorum.voters=1@127.0.0.1:{}",
            self.controller_port
        );
        let _ = writeln!(
            s,
            "listeners={},CONTROLLER://127.0.0.1:{}",
            listen.join(","),
            self.controller_port
        );
        let _ = writeln!(s, "advertised.listeners={}", advertised.join(","));
        let _ = writeln!(s, "listener.security.protocol.map={}", protocols.join(","));
        let _ = writeln!(s, "log.dirs={}", dir.join("logs").display());
        if let Some(pki) = pki {
            // A PEM key store is the key followed by the certificate.
            let read =
                |f: &str| std::fs::read_to_string(pki.path(f)).map_err(|e| format!("{f}: {e}"));
            let store = dir.join("broker-store.pem");
            std::fs::write(&store, read("broker-key.pem")? + &read("broker.pem")?)
                .map_err(|e| format!("write key store: {e}"))?;
            let _ = writeln!(s, "ssl.keystore.type=PEM");
            let _ = writeln!(s, "ssl.keystore.location={}", store.display());
            let _ = writeln!(s, "ssl.truststore.type=PEM");
            let _ = writeln!(s, "ssl.truststore.location={}", pki.show("ca.pem"));
            let _ = writeln!(s, "listener.name.mtls.ssl.client.auth=required");
            let _ = writeln!(s, "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512");
            for listener in ["sasl", "sasl_tls"] {
                let _ = writeln!(
                    s,
                    "listener.name.{listener}.plain.sasl.jaas.config=\
                     org.apache.kafka.common.security.plain.PlainLoginModule required \
                     user_{USER}=\"{PASSWORD}\";"
                );
                let _ = writeln!(
                    s,
                    "listener.name.{listener}.scram-sha-512.sasl.jaas.config=\
                     org.apache.kafka.common.security.scram.ScramLoginModule required;"
                );
            }
        }
        std::fs::write(dir.join("server.properties"), s)
            .map_err(|e| format!("write server.properties: {e}"))?;
        let log4j = format!(
            "\
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
logger.state.name = state.change.logger
logger.state.level = WARN
",
            self.log_path().display()
        );
        std::fs::write(dir.join("log4j2.properties"), log4j)
            .map_err(|e| format!("write log4j2.properties: {e}"))
    }

    /// Formats the storage with a fresh cluster id; with `users`, creating [`USER`]'s SCRAM
    /// credentials.
    pub(super) fn format(&self, users: bool) -> Result<(), String> {
        let dir = self.dir.path();
        let out = java(dir)
            .args(["kafka.tools.StorageTool", "format"])
            .arg(format!("--cluster-id={}", cluster_id()))
            .arg("--config")
            .arg(dir.join("server.properties"))
            .args(
                users
                    .then(|| {
                        [
                            "--add-scram".to_string(),
                            format!("SCRAM-SHA-512=[name={USER},password={PASSWORD}]"),
                        ]
                    })
                    .into_iter()
                    .flatten(),
            )
            .output()
            .map_err(|e| format!("cannot run java (scripts/setup.sh test installs Kafka): {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "formatting the storage failed ({}; are the jars in {}? scripts/setup.sh kafka \
             puts them there): {}{}",
            out.status,
            libs().display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_are_22_url_safe_characters_not_starting_with_a_dash_and_differ() {
        let ids: Vec<String> = (0..1000).map(|_| cluster_id()).collect();
        for id in &ids {
            assert_eq!(id.len(), 22, "{id}");
            assert!(
                id.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
                "{id}"
            );
            assert!(!id.starts_with('-'), "{id}");
        }
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
