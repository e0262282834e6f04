//! A TLS endpoint in front of a plain TCP server: it terminates TLS with a certificate made by
//! [`crate::pki::Pki`] (optionally requiring a client certificate) and forwards the bytes. It
//! puts TLS in front of the plain HTTP servers tests start (an HTTP output's endpoint, a Schema
//! Registry).

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};

use crate::pki::Pki;

/// A running TLS front; it stops with the test process.
pub struct TlsProxy {
    port: u16,
    upstream: Arc<AtomicU16>,
}

impl TlsProxy {
    /// Listens on a free port with `pki`'s `broker.pem`; with `mutual`, clients must present a
    /// certificate signed by `ca.pem`. Connections are refused until [`TlsProxy::forward_to`].
    pub fn start(pki: &Pki, mutual: bool) -> TlsProxy {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = vec![CertificateDer::from_pem_file(pki.path("broker.pem")).unwrap()];
        let key = PrivateKeyDer::from_pem_file(pki.path("broker-key.pem")).unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if mutual {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_file(pki.path("ca.pem")).unwrap())
                .unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = Arc::new(builder.with_single_cert(certs, key).unwrap());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = Arc::new(AtomicU16::new(0));
        let target = upstream.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(serve(listener, config, target));
        });
        TlsProxy { port, upstream }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Forwards connections to 127.0.0.1:`port`.
    pub fn forward_to(&self, port: u16) {
        self.upstream.store(port, Ordering::Release);
    }
}

async fn serve(
    listener: std::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    upstream: Arc<AtomicU16>,
) {
    let listener = TcpListener::from_std(listener).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let port = upstream.load(Ordering::Acquire);
        tokio::spawn(async move {
            // A client that fails the handshake (an untrusted or missing certificate) is dropped.
            let Ok(mut tls) = acceptor.accept(client).await else {
                return;
            };
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", port)).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
        });
    }
}
