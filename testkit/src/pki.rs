//! Certificates for TLS tests: a certificate authority, server and client certificates it
//! signed, and an authority that signed nothing, as PEM files in a temp dir.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A certificate authority and certificates it signed, written as PEM files in a temp dir.
/// The files: `ca.pem`; `server.pem` and `server-key.pem` (for `nats.test`); `client.pem` and
/// `client-key.pem`; `broker.pem` and `broker-key.pem` (for `localhost` and 127.0.0.1);
/// `other-ca.pem`.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Makes every certificate and key.
    pub fn generate() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        let ca = pki.authority("ca");
        // The server's certificate names nats.test only: clients connecting to 127.0.0.1
        // must say `server_name: nats.test`.
        pki.issue(&ca, "server", &["nats.test"]);
        pki.issue(&ca, "client", &["client.test"]);
        // A Kafka broker's certificate names the host it advertises.
        pki.issue(&ca, "broker", &["localhost", "127.0.0.1"]);
        // Another authority that signed nothing the server holds.
        pki.authority("other-ca");
        pki
    }

    fn authority(&self, name: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("sluice test {name}"));
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(self.path(&format!("{name}.pem")), ca.pem()).unwrap();
        ca
    }

    fn issue(&self, ca: &CertifiedIssuer<'static, KeyPair>, name: &str, names: &[&str]) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, ca)
            .unwrap();
        std::fs::write(self.path(&format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(self.path(&format!("{name}-key.pem")), key.serialize_pem()).unwrap();
    }

    /// Writes the client key encrypted with `password`, in the two PEM forms OpenSSL reads:
    /// `client-key-pkcs8.pem` (`BEGIN ENCRYPTED PRIVATE KEY`, PBES2 with AES-256-CBC) and
    /// `client-key-traditional.pem` (`BEGIN EC PRIVATE KEY` with a `DEK-Info` header). Uses the
    /// `openssl` command, as a user with such a key would have made it.
    pub fn encrypt_client_key(&self, password: &str) {
        let key = self.show("client-key.pem");
        let pass = format!("pass:{password}");
        let pkcs8 = self.show("client-key-pkcs8.pem");
        let traditional = self.show("client-key-traditional.pem");
        let runs: [&[&str]; 2] = [
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-in",
                &key,
                "-out",
                &pkcs8,
                "-passout",
                &pass,
            ],
            &[
                "ec",
                "-aes256",
                "-in",
                &key,
                "-out",
                &traditional,
                "-passout",
                &pass,
            ],
        ];
        for args in runs {
            let out = std::process::Command::new("openssl")
                .args(args)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Where `file` is.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Where `file` is, as text for pipeline files.
    pub fn show(&self, file: &str) -> String {
        self.path(file).display().to_string()
    }
}
