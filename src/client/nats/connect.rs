//! Connecting: a [`Connector`] is built from an [`Endpoint`](super::Endpoint) before anything
//! runs, then connects, reporting the connection state to readiness.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::NatsAuth;
use super::servers::{Servers, UrlCredentials};
use crate::observe::events::emit;
use crate::observe::events::nats::{
    NatsAttemptFailed, NatsClientEvent, NatsConnected, NatsDisconnected, NatsFirstAttemptFailed,
    NatsInsecureTls, NatsSlowConsumer,
};
use crate::observe::health::Link;

/// Why a NATS client did not connect. Every one stops the input or output: the client retries
/// a server that is down by itself, so what is left is what retrying would not fix.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A server that does not speak TLS will not start to by trying again: the `tls` block or
    /// the address is wrong.
    #[error("the server did not answer TLS at {servers}: {source}")]
    NotTls {
        /// The servers, as they may be shown.
        servers: String,
        /// The client's error.
        source: async_nats::ConnectError,
    },
    /// The credentials file, read at check, is refused by the client.
    #[error("credentials file {}: {source}", file.display())]
    Credentials {
        /// The file.
        file: std::path::PathBuf,
        /// The client's reason.
        source: std::io::Error,
    },
    /// The client's own error.
    #[error(transparent)]
    Client(#[from] async_nats::ConnectError),
}

/// A NATS client ready to connect: its servers parsed, and what its options take from files
/// read once for every connection attempt.
#[derive(Clone)]
pub struct Connector {
    pub(super) servers: Arc<Servers>,
    pub(super) auth: NatsAuth,
    pub(super) nkey: Option<String>,
    pub(super) credentials: Option<String>,
    pub(super) tls: Option<rustls::ClientConfig>,
    pub(super) insecure: bool,
    pub(super) client_certificate: bool,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("servers", &self.servers.shown)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Connects with the configured authentication. The client reconnects by itself; every
    /// reconnect, disconnect and slow-consumer drop is counted and logged, and the connection
    /// state is reported to `link` (readiness).
    pub async fn connect(
        &self,
        pipeline: &str,
        link: Option<Arc<Link>>,
    ) -> Result<Client, ConnectError> {
        self.connect_notify(pipeline, link, None).await
    }

    /// [`Connector::connect`], also waking `on_connect` at every (re)connection: server-side
    /// state tied to the old connection, like pending pull requests, is gone.
    pub async fn connect_notify(
        &self,
        pipeline: &str,
        link: Option<Arc<Link>>,
        on_connect: Option<Arc<tokio::sync::Notify>>,
    ) -> Result<Client, ConnectError> {
        let servers = &self.servers;
        if self.insecure {
            emit(NatsInsecureTls {
                pipeline,
                servers: &servers.shown,
            });
        }
        let failing = Arc::new(AtomicBool::new(false));
        let watched = link.clone();
        let options = || {
            let events = Events {
                pipeline: pipeline.to_string(),
                shown: Arc::from(servers.shown.as_str()),
                link: link.clone(),
                on_connect: on_connect.clone(),
                failing: failing.clone(),
            };
            self.options(events)
        };
        // One attempt first: the client's own retry loop reports a failed attempt by its kind
        // only ("IO error"), while this error says what failed (a certificate not trusted, a
        // client certificate required, credentials refused).
        let client = match options()?.connect(servers.addrs.clone()).await {
            Ok(client) => client,
            // A server that does not speak TLS will not start to by trying again: the
            // `tls` block or the address is wrong.
            Err(e) if self.tls.is_some() && not_tls(&e) => {
                return Err(ConnectError::NotTls {
                    servers: servers.shown.clone(),
                    source: e,
                });
            }
            Err(e) => {
                failing.store(true, Ordering::Relaxed);
                let error = self.explained(&e.to_string());
                emit(NatsFirstAttemptFailed {
                    pipeline,
                    servers: &servers.shown,
                    error: &error,
                });
                options()?
                    .retry_on_initial_connect()
                    .connect(servers.addrs.clone())
                    .await?
            }
        };
        let reconcile = watched.map(|link| {
            let state = client.clone();
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(reconcile(link, move || {
                state.connection_state() == async_nats::connection::State::Connected
            })))
        });
        Ok(Client {
            client,
            _reconcile: reconcile,
        })
    }

    /// A connection error, with what to check when the TLS alert alone does not say it: a
    /// server that requires a client certificate answers one missing with a bare
    /// `BadCertificate` (TLS 1.2) or `CertificateRequired` (TLS 1.3) alert.
    fn explained(&self, error: &str) -> String {
        if !self.client_certificate
            && (error.contains("BadCertificate") || error.contains("CertificateRequired"))
        {
            format!(
                "{error} (the server may require a client certificate: tls.cert_file and tls.key_file)"
            )
        } else {
            error.to_string()
        }
    }
}

/// Whether a connection failed because the server answered a TLS handshake with something else
/// than TLS (a plaintext server answers the client hello with a protocol error in plain text).
fn not_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        // An I/O error's `source` skips the error it wraps: look at that one too.
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for e in std::iter::once(e).chain(inner) {
            if let Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) =
                e.downcast_ref::<rustls::Error>()
            {
                return true;
            }
        }
        next = e.source();
    }
    false
}

/// What the client's event callback reports to: the pipeline's logs and metrics, readiness, and
/// whoever waits for (re)connections. The client reports a failed attempt every time it tries
/// again: the first of a run is logged as a warning (`failing` set), the rest only at debug
/// level until it connects.
struct Events {
    pipeline: String,
    shown: Arc<str>,
    link: Option<Arc<Link>>,
    on_connect: Option<Arc<tokio::sync::Notify>>,
    failing: Arc<AtomicBool>,
}

impl Connector {
    /// The client options: name, TLS, authentication, and the event callback.
    fn options(&self, events: Events) -> Result<async_nats::ConnectOptions, ConnectError> {
        let auth = &self.auth;
        let mut options =
            async_nats::ConnectOptions::new().name(format!("sluice-{}", events.pipeline));
        if let Some(config) = &self.tls {
            options = options.require_tls(true).tls_client_config(config.clone());
        }
        if let Some(seed) = &self.nkey {
            options = options.nkey(seed.clone());
        }
        match &self.servers.credentials {
            Some(UrlCredentials::UserPassword(user, password)) => {
                options = options.user_and_password(user.clone(), password.0.clone());
            }
            Some(UrlCredentials::Token(token)) => options = options.token(token.0.clone()),
            None => {}
        }
        if let (Some(path), Some(creds)) = (&auth.credentials_file, &self.credentials) {
            options = options
                .credentials(creds)
                .map_err(|source| ConnectError::Credentials {
                    file: path.clone(),
                    source,
                })?;
        }
        if let Some(token) = &auth.token {
            options = options.token(token.0.clone());
        }
        if let (Some(user), Some(password)) = (&auth.user, &auth.password) {
            options = options.user_and_password(user.clone(), password.0.clone());
        }
        let events = Arc::new(events);
        Ok(options.event_callback(move |event| events.clone().report(event)))
    }
}

impl Events {
    /// Logs and counts one event of the client, and passes connection changes on.
    async fn report(self: Arc<Self>, event: async_nats::Event) {
        let pipeline = self.pipeline.as_str();
        let shown = &self.shown;
        let connected = |up: bool| {
            if let Some(l) = &self.link {
                l.set(up);
            }
        };
        match event {
            async_nats::Event::Connected => {
                self.failing.store(false, Ordering::Relaxed);
                connected(true);
                if let Some(n) = &self.on_connect {
                    n.notify_one();
                }
                emit(NatsConnected {
                    pipeline,
                    servers: shown,
                });
            }
            async_nats::Event::Disconnected => {
                connected(false);
                emit(NatsDisconnected {
                    pipeline,
                    servers: shown,
                });
            }
            async_nats::Event::SlowConsumer(sid) => {
                emit(NatsSlowConsumer {
                    pipeline,
                    subscription: sid,
                });
            }
            async_nats::Event::ClientError(error) => emit(NatsAttemptFailed {
                pipeline,
                servers: shown,
                error: &error,
                again: self.failing.swap(true, Ordering::Relaxed),
            }),
            other => emit(NatsClientEvent {
                pipeline,
                event: &other,
            }),
        }
    }
}

/// A NATS client, with the task that keeps readiness in line with its connection state; the
/// task stops when this is dropped.
pub struct Client {
    client: async_nats::Client,
    _reconcile: Option<tokio_util::task::AbortOnDropHandle<()>>,
}

impl std::ops::Deref for Client {
    type Target = async_nats::Client;

    fn deref(&self) -> &async_nats::Client {
        &self.client
    }
}

/// How often readiness is brought in line with the client's connection state.
const RECONCILE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps `link` in line with `connected()`. The client reports connections through events, and
/// drops events while its event channel is full, so readiness driven by them alone could stay
/// wrong.
async fn reconcile(link: Arc<Link>, connected: impl Fn() -> bool) {
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        link.set(connected());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::health::Health;

    /// Lets the reconciling task run one tick.
    async fn one_tick() {
        tokio::time::advance(RECONCILE_EVERY).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_follows_the_connection_state_even_without_events() {
        let health = Health::new(1);
        health.pipeline_started();
        let link = health.link("p", "input", "nats");
        let up = Arc::new(AtomicBool::new(false));
        let state = up.clone();
        let task = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(reconcile(
            link.clone(),
            move || state.load(Ordering::Relaxed),
        )));
        one_tick().await;
        assert!(!health.is_ready());
        // Connected, and no event said so.
        up.store(true, Ordering::Relaxed);
        one_tick().await;
        assert!(link.is_up() && health.is_ready());
        // An event said connected, but the connection is gone.
        up.store(false, Ordering::Relaxed);
        one_tick().await;
        assert!(!link.is_up());
        assert_eq!(health.problems(), ["p: nats input not connected"]);
        drop(task);
    }
}
