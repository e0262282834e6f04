//! The `nats` input: core NATS subjects, optionally in a queue group. At-most-once.

use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use serde::Deserialize;

use super::{SourceContext, SourceError, send};
use crate::codec::Codec;
use crate::config::{Secret, Validator};
use crate::delivery::Ack;
use crate::event::{Event, Position};
use crate::observe::health::Link;

/// Subscribes to subjects (wildcards allowed). Core NATS is at-most-once: a message published
/// while no replica is subscribed, or dropped because a replica fell behind (a slow consumer),
/// is gone. Use `jetstream` where every event matters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsInputConfig {
    /// Server URLs, `nats://host:port[,nats://host:port...]`.
    pub url: String,
    /// Subjects to subscribe to; `*` and `>` wildcards allowed.
    pub subjects: Vec<String>,
    /// Queue group: replicas in the same group share the messages, each handled by one.
    #[serde(default)]
    pub queue_group: Option<String>,
    /// `json` or `raw`.
    #[serde(default)]
    pub codec: Codec,
    /// Authentication.
    #[serde(default)]
    pub auth: NatsAuth,
}

/// NATS authentication: at most one method.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsAuth {
    /// A `.creds` file (JWT and NKey seed).
    #[serde(default)]
    pub credentials_file: Option<std::path::PathBuf>,
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
        self.credentials_file.is_some() || self.token.is_some() || self.user.is_some()
    }

    /// Checks that the methods given make sense together.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        let methods = [
            self.credentials_file.is_some(),
            self.token.is_some(),
            self.user.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            v.error_at(
                path,
                "give only one of credentials_file, token, or user and password",
            );
        }
        if self.user.is_some() != self.password.is_some() {
            v.error_at(path, "user and password go together");
        }
    }
}

/// Credentials written in a server URL: `nats://user:password@host` or `nats://token@host`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum UrlCredentials {
    UserPassword(String, Secret),
    Token(Secret),
}

/// The servers of a `url` setting. Credentials written in the URLs are taken out of them and
/// returned apart, so that the client sends them as authentication and never shows them (it
/// logs server addresses; it does not authenticate with a URL's credentials itself).
pub(crate) struct Servers {
    pub(crate) addrs: Vec<async_nats::ServerAddr>,
    pub(crate) credentials: Option<UrlCredentials>,
    /// The URLs as written, without their credentials, for logs.
    pub(crate) shown: String,
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses `nats://host:port[,...]` (the scheme may be left out, or be `tls`, `ws`, `wss`).
/// Errors show the URL with its password replaced.
pub(crate) fn parse_servers(url: &str) -> Result<Servers, String> {
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

/// URLs must be nats:// (or tls://, ws://, wss://) URLs or host:port; credentials go either in
/// the URL or in `auth`, not both.
pub(crate) fn check_url(url: &str, auth: &NatsAuth, path: &str, v: &mut Validator<'_>) {
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
pub(crate) fn check_subject(subject: &str, wildcards: bool, path: &str, v: &mut Validator<'_>) {
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

impl NatsInputConfig {
    /// Checks values serde cannot.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        check_url(&self.url, &self.auth, &format!("{path}.url"), v);
        if self.subjects.is_empty() {
            v.error_at(
                &format!("{path}.subjects"),
                "subjects must list at least one subject",
            );
        }
        for (i, s) in self.subjects.iter().enumerate() {
            check_subject(s, true, &format!("{path}.subjects.{i}"), v);
        }
        self.auth.validate(&format!("{path}.auth"), v);
    }
}

/// Connects to NATS with the configured authentication. The client reconnects by itself; every
/// reconnect, disconnect and slow-consumer drop is counted and logged, and the connection state
/// is reported to `link` (readiness).
pub async fn connect(
    url: &str,
    auth: &NatsAuth,
    pipeline: &str,
    link: Option<Arc<Link>>,
) -> Result<Connection, String> {
    connect_notify(url, auth, pipeline, link, None).await
}

/// [`connect`], also waking `on_connect` at every (re)connection: server-side state tied to the
/// old connection, like pending pull requests, is gone.
pub async fn connect_notify(
    url: &str,
    auth: &NatsAuth,
    pipeline: &str,
    link: Option<Arc<Link>>,
    on_connect: Option<Arc<tokio::sync::Notify>>,
) -> Result<Connection, String> {
    let servers = parse_servers(url)?;
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("sluice-{pipeline}"))
        .retry_on_initial_connect();
    match servers.credentials {
        Some(UrlCredentials::UserPassword(user, password)) => {
            options = options.user_and_password(user, password.0);
        }
        Some(UrlCredentials::Token(token)) => options = options.token(token.0),
        None => {}
    }
    if let Some(path) = &auth.credentials_file {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| format!("credentials file {}: {e}", path.display()))?;
    }
    if let Some(token) = &auth.token {
        options = options.token(token.0.clone());
    }
    if let (Some(user), Some(password)) = (&auth.user, &auth.password) {
        options = options.user_and_password(user.clone(), password.0.clone());
    }
    let pipeline = pipeline.to_string();
    let watched = link.clone();
    let shown: Arc<str> = Arc::from(servers.shown.as_str());
    // The client reports a failed attempt every time it tries again: the first of a run is
    // logged as a warning, the rest only at debug level until it connects.
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
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
                    failing.store(false, std::sync::atomic::Ordering::Relaxed);
                    connected(true);
                    if let Some(n) = on_connect {
                        n.notify_one();
                    }
                    metrics::counter!("sluice_nats_connects_total", &[label]).increment(1);
                    tracing::info!(pipeline, servers = %shown, "nats connected");
                }
                async_nats::Event::Disconnected => {
                    connected(false);
                    metrics::counter!("sluice_nats_disconnects_total", &[label]).increment(1);
                    tracing::warn!(pipeline, servers = %shown, "nats disconnected; reconnecting");
                }
                async_nats::Event::SlowConsumer(sid) => {
                    metrics::counter!("sluice_nats_slow_consumer_total", &[label]).increment(1);
                    tracing::warn!(
                        pipeline,
                        subscription = sid,
                        "nats slow consumer: messages were dropped"
                    );
                }
                async_nats::Event::ClientError(error) => {
                    if failing.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::debug!(pipeline, servers = %shown, error = %error, "nats connection attempt failed");
                    } else {
                        tracing::warn!(pipeline, servers = %shown, error = %error, "nats connection attempt failed; retrying");
                    }
                }
                other => tracing::info!(pipeline, event = %other, "nats event"),
            }
        }
    });
    let client = options
        .connect(servers.addrs)
        .await
        .map_err(|e| e.to_string())?;
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

fn read_error(message: impl std::fmt::Display) -> SourceError {
    SourceError::Read {
        input: "nats",
        message: message.to_string(),
    }
}

/// Distinct subjects remembered, so that events from one subject share its name; past this the
/// memo starts over, so that subjects with ids in them do not grow memory.
const SUBJECT_MEMO: usize = 4096;

/// Shared names of the subjects messages arrive on.
#[derive(Default)]
pub(crate) struct SubjectMemo {
    all: std::collections::HashMap<String, Arc<str>>,
    /// The last one asked for: runs of messages on one subject skip the lookup.
    last: Option<Arc<str>>,
}

impl SubjectMemo {
    /// The shared name of `subject`.
    pub(crate) fn get(&mut self, subject: &str) -> Arc<str> {
        if let Some(last) = &self.last
            && **last == *subject
        {
            return last.clone();
        }
        let s = match self.all.get(subject) {
            Some(s) => s.clone(),
            None => {
                if self.all.len() >= SUBJECT_MEMO {
                    self.all.clear();
                }
                let s: Arc<str> = Arc::from(subject);
                self.all.insert(subject.to_string(), s.clone());
                s
            }
        };
        self.last = Some(s.clone());
        s
    }
}

/// The messages of several subscriptions as one stream, taken in turn. Unlike
/// `futures_util::stream::select_all`, it moves and allocates nothing per message: it polls the
/// subscriptions where they are.
struct Merged {
    subscriptions: Vec<async_nats::Subscriber>,
    /// Where the next poll starts, so that no subscription starves the others.
    next: usize,
}

impl Merged {
    fn new(subscriptions: Vec<async_nats::Subscriber>) -> Merged {
        Merged {
            subscriptions,
            next: 0,
        }
    }
}

impl futures_util::Stream for Merged {
    type Item = async_nats::Message;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        let n = this.subscriptions.len();
        let mut ended = 0;
        for i in 0..n {
            let at = (this.next + i) % n;
            match this.subscriptions[at].poll_next_unpin(cx) {
                Poll::Ready(Some(m)) => {
                    this.next = (at + 1) % n;
                    return Poll::Ready(Some(m));
                }
                Poll::Ready(None) => ended += 1,
                Poll::Pending => {}
            }
        }
        if ended == n {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

/// Builds an event from a NATS message.
pub(crate) fn to_event(msg: async_nats::Message, position: Position, ack: Ack) -> Event {
    let mut event = Event::new(msg.payload, position, ack);
    if let Some(headers) = &msg.headers {
        for (name, values) in headers.iter() {
            for value in values {
                event.headers.push((
                    name.to_string(),
                    bytes::Bytes::copy_from_slice(value.as_str().as_bytes()),
                ));
            }
        }
    }
    event
}

/// Subscribes and reads until shutdown. Messages already received are delivered; messages in
/// flight on the server at shutdown are not (core NATS keeps nothing).
pub async fn run(config: &NatsInputConfig, ctx: SourceContext) -> Result<(), SourceError> {
    let subscribe = async {
        let client = connect(
            &config.url,
            &config.auth,
            ctx.telemetry.pipeline(),
            ctx.link.clone(),
        )
        .await
        .map_err(read_error)?;
        let mut subscriptions = Vec::new();
        for subject in &config.subjects {
            let sub = match &config.queue_group {
                Some(group) => client.queue_subscribe(subject.clone(), group.clone()).await,
                None => client.subscribe(subject.clone()).await,
            }
            .map_err(read_error)?;
            subscriptions.push(sub);
        }
        // Make sure the server has the subscriptions before saying so. This waits for the first
        // connection, however long the server takes to be reachable.
        client.flush().await.map_err(read_error)?;
        Ok::<_, SourceError>((client, subscriptions))
    };
    let (client, subscriptions) = tokio::select! {
        biased;
        // Nothing was read: nothing to finish.
        _ = ctx.shutdown.cancelled() => {
            tracing::info!(pipeline = %ctx.telemetry.pipeline(), "nats input stopped before it subscribed");
            return Ok(());
        }
        subscribed = subscribe => subscribed?,
    };
    tracing::info!(pipeline = %ctx.telemetry.pipeline(), subjects = ?config.subjects, queue_group = ?config.queue_group, "nats subscribed");
    let mut messages = Merged::new(subscriptions);
    let mut subjects = SubjectMemo::default();
    let mut position = |subject: &str| Position::Nats {
        subject: subjects.get(subject),
        stream: None,
    };
    loop {
        let first = tokio::select! {
            biased;
            _ = ctx.shutdown.cancelled() => break,
            m = messages.next() => m,
        };
        let Some(first) = first else { break };
        let mut batch = Vec::with_capacity(ctx.batch_size.min(1024));
        let p = position(&first.subject);
        batch.push(to_event(first, p, ctx.counted.ack(0, 0)));
        // Take what is already buffered, without waiting.
        while batch.len() < ctx.batch_size {
            match messages.next().now_or_never() {
                Some(Some(m)) => {
                    let p = position(&m.subject);
                    batch.push(to_event(m, p, ctx.counted.ack(0, 0)));
                }
                _ => break,
            }
        }
        if !send(&ctx, batch).await {
            break;
        }
    }
    // Stop the server sending more; what it already sent is dropped with the subscriptions.
    drop(messages);
    let _ = client.flush().await;
    Ok(())
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
