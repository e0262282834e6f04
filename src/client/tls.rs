//! The `tls:` block of a client: which certificate authorities to trust, the client certificate
//! for mutual TLS, and the name to verify the server as; and the `tls:` block of a server: its
//! certificate, and the authorities of the client certificates it accepts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;

use crate::config::{Secret, Validator};

/// TLS settings of a client. With none of them set (`tls: {}`), the connection is encrypted and
/// the server is verified against the system's certificate authorities.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the certificate authorities to trust instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM file of the client certificate (chain), for mutual TLS; with `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key; with `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Password of an encrypted `key_file` (Kafka only: librdkafka decrypts keys itself).
    #[serde(default)]
    pub key_password: Option<Secret>,
    /// The name the server's certificate must carry, when it is not the host name of the URL
    /// (connecting by IP address to a server whose certificate names its DNS name).
    #[serde(default)]
    pub server_name: Option<String>,
    /// Accept any server certificate. The connection is encrypted but anyone on the path can
    /// read it: for tests only. Logged as a warning at every start.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A TLS configuration that trusts no server: for clients of http:// URLs only, so that they
/// never look for a process-wide configuration.
pub fn trusting_nothing() -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth())
}

/// A TLS setting that cannot be used, with the setting it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TlsError {
    /// The key under `tls` (`ca_file`, `cert_file`, ...), or empty for the block itself.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// A problem with the setting `field`.
pub fn error(field: &'static str, message: impl Into<String>) -> TlsError {
    TlsError {
        field,
        message: message.into(),
    }
}

impl TlsConfig {
    /// Builds the rustls client configuration of the block (for NATS), reading each file once.
    /// Every problem is reported at its key under `path`; None when there was one.
    pub fn build(&self, path: &str, v: &mut Validator<'_>) -> Option<ClientConfig> {
        self.rustls().map_err(|errors| report(errors, path, v)).ok()
    }

    /// The rustls client configuration of the block, or every problem with it.
    pub fn rustls(&self) -> Result<ClientConfig, Vec<TlsError>> {
        let mut errors = Vec::new();
        if self.key_password.is_some() {
            errors.push(error(
                "key_password",
                "key_password is only supported for Kafka; give an unencrypted key_file",
            ));
        }
        let name = match &self.server_name {
            Some(name) => keep(
                &mut errors,
                ServerName::try_from(name.clone())
                    .map_err(|e| error("server_name", format!("`{name}`: {e}"))),
            )
            .map(Some),
            None => Some(None),
        };
        let roots = match self.insecure_skip_verify {
            true => Some(None),
            false => keep(&mut errors, self.roots()).map(Some),
        };
        let client = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let certs = keep(&mut errors, certificates(cert, "cert_file"));
                let key = keep(&mut errors, private_key(key));
                certs.zip(key).map(Some)
            }
            (Some(_), None) => keep(
                &mut errors,
                Err(error("cert_file", "cert_file needs key_file")),
            ),
            (None, Some(_)) => keep(
                &mut errors,
                Err(error("key_file", "key_file needs cert_file")),
            ),
            (None, None) => Some(None),
        };
        match (name, roots, client) {
            (Some(name), Some(roots), Some(client)) if errors.is_empty() => {
                assemble(name, roots, client).map_err(|e| vec![e])
            }
            _ => Err(errors),
        }
    }

    /// Problems with the files named: unreadable, not PEM, a certificate without its key. An
    /// `encrypted_key` is only checked for being readable (its client decrypts it).
    pub fn files(&self, encrypted_key: bool) -> Vec<TlsError> {
        let mut errors = Vec::new();
        if let Some(ca) = &self.ca_file {
            errors.extend(certificates(ca, "ca_file").err());
        }
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                errors.extend(certificates(cert, "cert_file").err());
                if encrypted_key {
                    errors.extend(
                        std::fs::metadata(key)
                            .err()
                            .map(|e| error("key_file", format!("{}: {e}", key.display()))),
                    );
                } else {
                    errors.extend(private_key(key).err());
                }
            }
            (Some(_), None) => errors.push(error("cert_file", "cert_file needs key_file")),
            (None, Some(_)) => errors.push(error("key_file", "key_file needs cert_file")),
            (None, None) => {}
        }
        errors
    }

    /// Whether the server certificate goes unchecked; the caller logs a warning.
    pub fn is_insecure(&self) -> bool {
        self.insecure_skip_verify
    }

    fn roots(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                for cert in certificates(path, "ca_file")? {
                    roots
                        .add(cert)
                        .map_err(|e| error("ca_file", format!("{}: {e}", path.display())))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(error(
                        "",
                        "no system certificate authorities found; give tls.ca_file",
                    ));
                }
            }
        }
        Ok(roots)
    }
}

/// The value of `result`, or None with its error kept in `errors`.
fn keep<T>(errors: &mut Vec<TlsError>, result: Result<T, TlsError>) -> Option<T> {
    result.map_err(|e| errors.push(e)).ok()
}

/// The rustls client configuration from the parts of a block: the name to verify the server as,
/// the authorities to trust (none: accept any certificate), and the client certificate.
fn assemble(
    name: Option<ServerName<'static>>,
    roots: Option<RootCertStore>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| error("", e.to_string()))?;
    let webpki = match roots {
        Some(roots) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| error("ca_file", e.to_string()))?,
        ),
        None => None,
    };
    let verifier = Verifier {
        webpki,
        name,
        algorithms: provider.signature_verification_algorithms,
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    match client {
        None => Ok(builder.with_no_client_auth()),
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| error("key_file", format!("does not go with cert_file: {e}"))),
    }
}

/// TLS settings of a server (the `http_server` input).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// PEM file of the server's certificate chain, its own certificate first.
    pub cert_file: PathBuf,
    /// PEM file of the certificate's private key.
    pub key_file: PathBuf,
    /// PEM file of the certificate authorities whose client certificates are accepted: with it,
    /// every client must present one (mutual TLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

impl ServerTlsConfig {
    /// Builds the rustls server configuration, offering `alpn` protocols, reading each file
    /// once. Every problem is reported at its key under `path`; None when there was one.
    pub fn build(
        &self,
        alpn: &[&[u8]],
        path: &str,
        v: &mut Validator<'_>,
    ) -> Option<rustls::ServerConfig> {
        self.rustls(alpn)
            .map_err(|errors| report(errors, path, v))
            .ok()
    }

    /// The rustls server configuration, or every problem with it.
    pub fn rustls(&self, alpn: &[&[u8]]) -> Result<rustls::ServerConfig, Vec<TlsError>> {
        let mut errors = Vec::new();
        let certs = keep(&mut errors, certificates(&self.cert_file, "cert_file"));
        let key = keep(&mut errors, private_key(&self.key_file));
        let clients = match &self.client_ca_file {
            Some(path) => keep(&mut errors, client_roots(path)).map(Some),
            None => Some(None),
        };
        let (Some(certs), Some(key), Some(clients)) = (certs, key, clients) else {
            return Err(errors);
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| vec![error("", e.to_string())])?;
        let builder = match clients {
            None => builder.with_no_client_auth(),
            Some(roots) => {
                let verifier =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
                        .build()
                        .map_err(|e| vec![error("client_ca_file", e.to_string())])?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            vec![error(
                "key_file",
                format!("does not go with cert_file: {e}"),
            )]
        })?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

fn client_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, "client_ca_file")? {
        roots
            .add(cert)
            .map_err(|e| error("client_ca_file", format!("{}: {e}", path.display())))?;
    }
    Ok(Arc::new(roots))
}

/// Reports each problem at its key under `path` (the `tls` block).
pub fn report(errors: Vec<TlsError>, path: &str, v: &mut Validator<'_>) {
    for e in errors {
        let at = if e.field.is_empty() {
            path.to_string()
        } else {
            format!("{path}.{}", e.field)
        };
        v.error_at(&at, e.message);
    }
}

fn certificates(
    path: &Path,
    field: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error(field, format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(error(
            field,
            format!("{}: no PEM certificate in the file", path.display()),
        ));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| error("key_file", format!("{}: {e}", path.display())))
}

/// How the server's certificate is checked: against the trusted authorities (`webpki`, none
/// with `insecure_skip_verify`), as `name` when `server_name` is given instead of the host
/// connected to. Either way the server must hold the key of the certificate it sent.
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    name: Option<ServerName<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.webpki {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                self.name.as_ref().unwrap_or(server_name),
                ocsp_response,
                now,
            ),
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
