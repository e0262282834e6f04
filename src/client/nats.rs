//! The NATS client shared by the NATS and JetStream inputs and outputs: server URLs,
//! authentication, connecting, and readiness.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;

use super::ErrorKind;
use super::tls::TlsConfig;
use crate::config::{Secret, Validator};
use crate::delivery::Cause;
use crate::observe::health::Link;

/// Where and how a NATS input or output connects: its `url`, `auth` and `tls` settings.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    /// Server URLs, comma-separated.
    pub url: &'a str,
    /// Authentication.
    pub auth: &'a NatsAuth,
    /// TLS, when the `tls:` block is given.
    pub tls: Option<&'a TlsConfig>,
}

impl Endpoint<'_> {
    /// Checks everything that can be known without connecting: URLs, authentication, and the
    /// TLS files (read and parsed); errors are reported under `path` (`input`, `output`).
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        check_url(self.url, self.auth, &format!("{path}.url"), v);
        self.auth.validate(&format!("{path}.auth"), v);
        if let Some(tls) = self.tls {
            tls.validate(&format!("{path}.tls"), v);
        }
    }
}

/// NATS authentication: at most one method.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsAuth {
    /// A `.creds` file (JWT and NKey seed).
    #[serde(default)]
    pub credentials_file: Option<std::path::PathBuf>,
    /// A file holding an NKey seed (`SU...`), for servers that list the user's public NKey.
    #[serde(default)]
    pub nkey_file: Option<std::path::PathBuf>,
    /// A token.
    #[serde(default)]
    pub token: Option<Secret>,
    /// User name, with `password`.
    #[serde(default)]
    pub user: Option<String>,
    /// Password, with `user`.
    #[serde(default)]
    pub password: Option<Secret>,
}

impl NatsAuth {
    fn is_set(&self) -> bool {
        self.credentials_file.is_some()
            || self.nkey_file.is_some()
            || self.token.is_some()
            || self.user.is_some()
    }

    /// Checks that the methods given make sense together.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        let methods = [
            self.credentials_file.is_some(),
            self.nkey_file.is_some(),
            self.token.is_some(),
            self.user.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            v.error_at(
                path,
                "give only one of credentials_file, nkey_file, token, or user and password",
            );
        }
        if let Some(file) = &self.nkey_file
            && let Err(e) = nkey_seed(file)
        {
            v.error_at(&format!("{path}.nkey_file"), e);
        }
        if self.user.is_some() != self.password.is_some() {
            v.error_at(path, "user and password go together");
        }
    }
}

/// Credentials written in a server URL: `nats://user:password@host` or `nats://token@host`.
#[derive(Clone, PartialEq, Eq)]
enum UrlCredentials {
    UserPassword(String, Secret),
    Token(Secret),
}

/// The servers of a `url` setting. Credentials written in the URLs are taken out of them and
/// returned apart, so that the client sends them as authentication and never shows them (it
/// logs server addresses; it does not authenticate with a URL's credentials itself).
struct Servers {
    addrs: Vec<async_nats::ServerAddr>,
    credentials: Option<UrlCredentials>,
    /// The URLs as written, without their credentials, for logs.
    shown: String,
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses `nats://host:port[,...]` (the scheme may be left out, or be `tls`, `ws`, `wss`).
/// Errors show the URL with its password replaced.
fn parse_servers(url: &str) -> Result<Servers, String> {
    let mut addrs = Vec::new();
    let mut credentials = None;
    let mut shown = Vec::new();
    for server in url.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        shown.push(redact_url(server));
        let invalid =
            |e: &dyn std::fmt::Display| format!("invalid server `{}`: {e}", redact_url(server));
        let text = if server.contains("://") {
            server.to_string()
        } else {
            format!("nats://{server}")
        };
        let mut parsed = url::Url::parse(&text).map_err(|e| invalid(&e))?;
        let user = decode(parsed.username());
        let these = match (user.is_empty(), parsed.password()) {
            (true, None) => None,
            (false, None) => Some(UrlCredentials::Token(Secret(user))),
            (_, Some(password)) => {
                Some(UrlCredentials::UserPassword(user, Secret(decode(password))))
            }
        };
        if these.is_some() {
            if credentials.is_some() && credentials != these {
                return Err("the servers in url give different credentials".into());
            }
            credentials = these;
            // Only fails for URLs that cannot have credentials, which these had.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
        }
        addrs.push(async_nats::ServerAddr::from_url(parsed).map_err(|e| invalid(&e))?);
    }
    if addrs.is_empty() {
        return Err("url must name at least one server".into());
    }
    Ok(Servers {
        addrs,
        credentials,
        shown: shown.join(","),
    })
}

/// A server URL as it may be shown: the password in it (or a token, written as a user) is
/// replaced by `<redacted>`.
pub fn redact_url(server: &str) -> String {
    let (scheme, rest) = match server.find("://") {
        Some(i) => server.split_at(i + 3),
        None => ("", server),
    };
    let authority = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority].rfind('@') {
        Some(at) => {
            let shown = match rest[..at].split_once(':') {
                Some((user, _)) => format!("{user}:<redacted>"),
                None => "<redacted>".to_string(),
            };
            format!("{scheme}{shown}{}", &rest[at..])
        }
        None => server.to_string(),
    }
}

/// The NKey seed in `file`: its first line that is a seed (nsc writes comments around it).
fn nkey_seed(file: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let seed = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("SU"))
        .ok_or_else(|| format!("{}: no user NKey seed (a line starting SU)", file.display()))?;
    nkeys::KeyPair::from_seed(seed)
        .map_err(|e| format!("{}: not a valid NKey seed: {e}", file.display()))?;
    Ok(seed.to_string())
}

/// URLs must be nats:// (or tls://, ws://, wss://) URLs or host:port; credentials go either in
/// the URL or in `auth`, not both.
fn check_url(url: &str, auth: &NatsAuth, path: &str, v: &mut Validator<'_>) {
    match parse_servers(url) {
        Err(e) => v.error_at(path, e),
        Ok(servers) if servers.credentials.is_some() && auth.is_set() => v.error_at(
            path,
            "credentials are given both in url and in auth: give them in one place",
        ),
        Ok(_) => {}
    }
}

/// Subjects must be non-empty tokens separated by dots.
pub fn check_subject(subject: &str, wildcards: bool, path: &str, v: &mut Validator<'_>) {
    let tokens: Vec<&str> = subject.split('.').collect();
    let bad_token = tokens.iter().enumerate().any(|(i, t)| {
        t.is_empty()
            || t.contains(char::is_whitespace)
            || (!wildcards && (*t == "*" || *t == ">"))
            || (*t == ">" && i + 1 != tokens.len())
            || (t.len() > 1 && (t.contains('*') || t.contains('>')))
    });
    if bad_token {
        v.error_at(path, format!("`{subject}` is not a valid subject"));
    }
}

/// Connects to NATS with the configured authentication. The client reconnects by itself; every
/// reconnect, disconnect and slow-consumer drop is counted and logged, and the connection state
/// is reported to `link` (readiness).
pub async fn connect(
    endpoint: Endpoint<'_>,
    pipeline: &str,
    link: Option<Arc<Link>>,
) -> Result<Connection, String> {
    connect_notify(endpoint, pipeline, link, None).await
}

/// [`connect`], also waking `on_connect` at every (re)connection: server-side state tied to the
/// old connection, like pending pull requests, is gone.
pub async fn connect_notify(
    endpoint: Endpoint<'_>,
    pipeline: &str,
    link: Option<Arc<Link>>,
    on_connect: Option<Arc<tokio::sync::Notify>>,
) -> Result<Connection, String> {
    let servers = parse_servers(endpoint.url)?;
    if endpoint.tls.is_some_and(TlsConfig::is_insecure) {
        tracing::warn!(pipeline, servers = %servers.shown, "tls.insecure_skip_verify is set: the NATS server's certificate is not checked");
    }
    let files = Files::read(endpoint).await?;
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
        options(endpoint, &servers, &files, events)
    };
    // One attempt first: the client's own retry loop reports a failed attempt by its kind only
    // ("IO error"), while this error says what failed (a certificate not trusted, a client
    // certificate required, credentials refused).
    let client = match options()?.connect(servers.addrs.clone()).await {
        Ok(client) => client,
        Err(e) => {
            failing.store(true, Ordering::Relaxed);
            let error = explained(&e.to_string(), endpoint);
            tracing::warn!(pipeline, servers = %servers.shown, error, "nats connection attempt failed; retrying");
            options()?
                .retry_on_initial_connect()
                .connect(servers.addrs.clone())
                .await
                .map_err(|e| e.to_string())?
        }
    };
    let reconcile = watched.map(|link| {
        let state = client.clone();
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(reconcile(link, move || {
            state.connection_state() == async_nats::connection::State::Connected
        })))
    });
    Ok(Connection {
        client,
        _reconcile: reconcile,
    })
}

/// A connection error, with what to check when the TLS alert alone does not say it: a server
/// that requires a client certificate answers one missing with a bare `BadCertificate` (TLS 1.2)
/// or `CertificateRequired` (TLS 1.3) alert.
fn explained(error: &str, endpoint: Endpoint<'_>) -> String {
    let no_client_certificate = endpoint.tls.is_none_or(|t| t.cert_file.is_none());
    if no_client_certificate
        && (error.contains("BadCertificate") || error.contains("CertificateRequired"))
    {
        format!(
            "{error} (the server may require a client certificate: tls.cert_file and tls.key_file)"
        )
    } else {
        error.to_string()
    }
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

/// The client options of `endpoint`: name, TLS, authentication, and the event callback.
/// What an endpoint's client options take from files, read once for every connection attempt.
struct Files {
    tls: Option<rustls::ClientConfig>,
    nkey: Option<String>,
    credentials: Option<String>,
}

impl Files {
    async fn read(endpoint: Endpoint<'_>) -> Result<Files, String> {
        let tls = match endpoint.tls {
            Some(tls) => Some(tls.rustls().map_err(|e| format!("tls: {e}"))?),
            None => None,
        };
        let nkey = match &endpoint.auth.nkey_file {
            Some(file) => Some(nkey_seed(file)?),
            None => None,
        };
        let credentials = match &endpoint.auth.credentials_file {
            Some(path) => Some(
                tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| format!("credentials file {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(Files {
            tls,
            nkey,
            credentials,
        })
    }
}

fn options(
    endpoint: Endpoint<'_>,
    servers: &Servers,
    files: &Files,
    events: Events,
) -> Result<async_nats::ConnectOptions, String> {
    let auth = endpoint.auth;
    let Events {
        pipeline,
        shown,
        link,
        on_connect,
        failing,
    } = events;
    let mut options = async_nats::ConnectOptions::new().name(format!("sluice-{pipeline}"));
    if let Some(config) = &files.tls {
        options = options.require_tls(true).tls_client_config(config.clone());
    }
    if let Some(seed) = &files.nkey {
        options = options.nkey(seed.clone());
    }
    match &servers.credentials {
        Some(UrlCredentials::UserPassword(user, password)) => {
            options = options.user_and_password(user.clone(), password.0.clone());
        }
        Some(UrlCredentials::Token(token)) => options = options.token(token.0.clone()),
        None => {}
    }
    if let (Some(path), Some(creds)) = (&auth.credentials_file, &files.credentials) {
        options = options
            .credentials(creds)
            .map_err(|e| format!("credentials file {}: {e}", path.display()))?;
    }
    if let Some(token) = &auth.token {
        options = options.token(token.0.clone());
    }
    if let (Some(user), Some(password)) = (&auth.user, &auth.password) {
        options = options.user_and_password(user.clone(), password.0.clone());
    }
    options = options.event_callback(move |event| {
        let pipeline = pipeline.clone();
        let on_connect = on_connect.clone();
        let link = link.clone();
        let shown = shown.clone();
        let failing = failing.clone();
        let connected = move |up: bool| {
            if let Some(l) = &link {
                l.set(up);
            }
        };
        async move {
            let label = ("pipeline", pipeline.clone());
            match event {
                async_nats::Event::Connected => {
                    failing.store(false, Ordering::Relaxed);
                    connected(true);
                    if let Some(n) = on_connect {
                        n.notify_one();
                    }
                    metrics::counter!(crate::observe::names::NATS_CONNECTS_TOTAL, &[label]).increment(1);
                    tracing::info!(pipeline, servers = %shown, "nats connected");
                }
                async_nats::Event::Disconnected => {
                    connected(false);
                    metrics::counter!(crate::observe::names::NATS_DISCONNECTS_TOTAL, &[label]).increment(1);
                    tracing::warn!(pipeline, servers = %shown, "nats disconnected; reconnecting");
                }
                async_nats::Event::SlowConsumer(sid) => {
                    metrics::counter!(crate::observe::names::NATS_SLOW_CONSUMER_TOTAL, &[label]).increment(1);
                    tracing::warn!(
                        pipeline,
                        subscription = sid,
                        "nats slow consumer: messages were dropped"
                    );
                }
                async_nats::Event::ClientError(error) => {
                    if failing.swap(true, Ordering::Relaxed) {
                        tracing::debug!(pipeline, servers = %shown, error = %error, "nats connection attempt failed");
                    } else {
                        tracing::warn!(pipeline, servers = %shown, error = %error, "nats connection attempt failed; retrying");
                    }
                }
                other => tracing::info!(pipeline, event = %other, "nats event"),
            }
        }
    });
    Ok(options)
}

/// A NATS client, with the task that keeps readiness in line with its connection state; the
/// task stops when this is dropped.
pub struct Connection {
    client: async_nats::Client,
    _reconcile: Option<tokio_util::task::AbortOnDropHandle<()>>,
}

impl std::ops::Deref for Connection {
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

/// What a JetStream publish error means, for every JetStream output. "No stream for the
/// subject" is a refusal: retrying would hold the output forever for an event routed where
/// nothing stores it.
pub fn classify_publish(e: &async_nats::jetstream::context::PublishError) -> ErrorKind {
    use async_nats::jetstream::context::PublishErrorKind as K;
    // JetStream's "message size exceeds maximum allowed" (the stream's max_msg_size).
    const MESSAGE_TOO_LARGE: u64 = 10054;
    let code = || {
        std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>())
            .map(|j| j.error_code())
    };
    match e.kind() {
        // No acknowledgement in time, the connection lost, or the server saying it cannot
        // store anything right now.
        K::TimedOut | K::BrokenPipe | K::MaxAckPending => ErrorKind::Retriable,
        K::Other if code().is_some_and(unavailable) => ErrorKind::Retriable,
        // Too large for the server or the stream, or a failed expectation.
        K::MaxPayloadExceeded | K::WrongLastMessageId | K::WrongLastSequence => {
            ErrorKind::Refused(Cause::Event)
        }
        K::Other if code().is_some_and(|c| c.0 == MESSAGE_TOO_LARGE) => {
            ErrorKind::Refused(Cause::Event)
        }
        _ => ErrorKind::Refused(Cause::Output),
    }
}

/// JetStream errors saying the server or cluster cannot answer right now (no leader, JetStream
/// temporarily unavailable, out of resources, a store failure), as opposed to a wrong request.
pub fn unavailable(code: async_nats::jetstream::ErrorCode) -> bool {
    matches!(code.0, 10004..=10011 | 10023 | 10040 | 10044 | 10077)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::health::Health;
    use std::sync::atomic::{AtomicBool, Ordering};

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

    #[test]
    fn publish_errors_are_retriable_or_refused_for_the_event_or_the_output() {
        use async_nats::jetstream::context::{PublishError, PublishErrorKind as K};
        let kind = |k| classify_publish(&PublishError::new(k));
        assert_eq!(kind(K::TimedOut), ErrorKind::Retriable);
        assert_eq!(kind(K::BrokenPipe), ErrorKind::Retriable);
        assert_eq!(
            kind(K::MaxPayloadExceeded),
            ErrorKind::Refused(Cause::Event)
        );
        assert_eq!(kind(K::WrongLastSequence), ErrorKind::Refused(Cause::Event));
        assert_eq!(kind(K::StreamNotFound), ErrorKind::Refused(Cause::Output));
        assert_eq!(kind(K::Other), ErrorKind::Refused(Cause::Output));
    }

    #[test]
    fn credentials_come_out_of_urls_and_urls_are_shown_without_them() {
        let servers = parse_servers("nats://bob:p%40ss@a:4222, b:4223").unwrap();
        assert_eq!(servers.addrs.len(), 2);
        assert!(matches!(
            servers.credentials,
            Some(UrlCredentials::UserPassword(ref u, ref p)) if u == "bob" && p.0 == "p@ss"
        ));
        assert!(!format!("{:?}", servers.addrs).contains("p%40ss"));
        assert!(matches!(
            parse_servers("tok3n@a").unwrap().credentials,
            Some(UrlCredentials::Token(ref t)) if t.0 == "tok3n"
        ));
        assert_eq!(
            redact_url("nats://bob:secret@a:4222/x"),
            "nats://bob:<redacted>@a:4222/x"
        );
        assert_eq!(redact_url("tok3n@a:4222"), "<redacted>@a:4222");
        assert_eq!(redact_url("nats://a:4222"), "nats://a:4222");
        assert!(parse_servers("nats://u:1@a,nats://u:2@b").is_err());
        assert!(parse_servers(" , ").is_err());
    }
}
