//! Listening: connections accepted (over TLS when configured), served with HTTP/1.1 or HTTP/2,
//! and at shutdown no new ones, while the requests in flight are answered.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::HttpServerInput;
use super::handler::Handler;
use super::idle::{Activity, Timeouts, Watched};
use super::linger::RequestBody;
use crate::observe::events::emit;
use crate::observe::events::http::{
    AcceptFailed, ConnectionClosed, ConnectionError, ConnectionLimitReached, ConnectionOpened,
    ConnectionsCutAtDeadline, IdleConnectionClosed, Listening, TlsHandshakeFailed,
};
use crate::source::submit::Submitter;
use crate::source::{SourceContext, SourceError};

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long after shutdown began requests on connections already open (or waiting to be
/// accepted) are still read, to be answered 503: long enough for those already sent to arrive,
/// short next to the drain timeout (of which it takes a quarter at most).
const LAST_CALL: Duration = Duration::from_secs(2);

/// After the drain timeout, how long answers have to reach their clients before the connections
/// still open are dropped; and how long a connection closed for idleness has to say goodbye
/// (HTTP/2 GOAWAY).
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// How often reaching the connection limit is logged at most.
const LIMIT_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// What every connection of one server shares.
#[derive(Clone)]
struct Shared {
    handler: Arc<Handler>,
    builder: auto::Builder<TokioExecutor>,
    acceptor: Option<TlsAcceptor>,
    timeouts: Timeouts,
    /// Shutdown began: requests are answered 503 (HTTP/1.1 with `Connection: close`).
    stop: CancellationToken,
    /// The last call after shutdown is over: connections close once their requests under way
    /// are answered (HTTP/2 with a GOAWAY).
    close: CancellationToken,
    pipeline: Arc<str>,
}

/// Serves until shutdown, then waits for the requests in flight to be answered.
pub async fn serve(input: HttpServerInput, ctx: SourceContext) -> Result<(), SourceError> {
    let address = &input.config.address;
    let listener = TcpListener::bind(address.as_str())
        .await
        .map_err(|source| SourceError::Listen {
            input: "http_server",
            address: address.clone(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| SourceError::Io {
        input: "http_server",
        path: None,
        source,
    })?;
    let pipeline = ctx.telemetry.pipeline().to_string();
    let limit = input.config.connection_limit();
    emit(Listening {
        pipeline: &pipeline,
        address: &local,
        path: &input.config.path,
        tls: input.tls.is_some(),
        max_connections: limit,
    });
    if let Some(link) = &ctx.link {
        link.set(true);
    }
    let submitter = Submitter::new(ctx.intake, ctx.pipeline, ctx.counted);
    let handler = Arc::new(Handler::new(
        &input.config,
        submitter,
        ctx.shutdown.clone(),
        ctx.drain_timeout,
        &pipeline,
    ));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The header read timeout is kept by `idle` (hyper's would also cut kept-alive
    // connections short of the idle timeout); the timers serve HTTP/2 pings and hyper's own.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    builder.http2().timer(TokioTimer::new());
    let shared = Shared {
        handler,
        builder,
        acceptor: input.tls.map(TlsAcceptor::from),
        timeouts: Timeouts {
            header_read: input.config.header_read_timeout.0,
            idle: input.config.idle_timeout.0,
        },
        stop: ctx.shutdown.clone(),
        close: CancellationToken::new(),
        pipeline: Arc::from(pipeline.as_str()),
    };
    let last_call = LAST_CALL.min(ctx.drain_timeout / 4);
    let mut connections = accept(&listener, &shared, limit, last_call).await;
    // The last call is over: connections close once their requests under way are answered.
    shared.close.cancel();
    drop(listener);
    drop(shared);
    if let Some(link) = &ctx.link {
        link.set(false);
    }
    // Requests in flight wait at most the drain timeout for their events, then are answered.
    let closed = tokio::time::timeout(ctx.drain_timeout + CLOSE_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if closed.is_err() {
        emit(ConnectionsCutAtDeadline {
            pipeline: &pipeline,
        });
    }
    // Connections that never got a request through (a TLS handshake under way) go too; with them
    // the last hold on the pipeline's input, which then ends.
    connections.shutdown().await;
    Ok(())
}

/// Takes connections until shutdown and `last_call` after it (or until none is open), at most
/// `limit` open at once: at the limit no more are accepted (they wait in the listen queue) until
/// one closes, so that open files never run out. In the last call, requests still arrive to be
/// answered 503 rather than cut off unanswered.
async fn accept(
    listener: &TcpListener,
    shared: &Shared,
    limit: usize,
    last_call: Duration,
) -> tokio::task::JoinSet<()> {
    let slots = Arc::new(Semaphore::new(limit));
    let mut connections = tokio::task::JoinSet::new();
    let mut slot: Option<OwnedSemaphorePermit> = None;
    let mut warned: Option<tokio::time::Instant> = None;
    let closing = tokio::time::sleep(Duration::MAX);
    tokio::pin!(closing);
    let mut stopping = false;
    loop {
        if stopping && connections.is_empty() {
            break;
        }
        tokio::select! {
            () = shared.stop.cancelled(), if !stopping => {
                stopping = true;
                closing.as_mut().reset(tokio::time::Instant::now() + last_call);
            }
            () = &mut closing, if stopping => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            permit = slots.clone().acquire_owned(), if slot.is_none() => match permit {
                Ok(permit) => slot = Some(permit),
                Err(_) => break,
            },
            accepted = listener.accept(), if slot.is_some() => match accepted {
                Ok((stream, _)) => {
                    let Some(permit) = slot.take() else { continue };
                    connections.spawn(connection(stream, shared.clone(), permit));
                }
                Err(e) => {
                    // Out of file descriptors (other pipelines, outputs): it passes as files close.
                    emit(AcceptFailed {
                        pipeline: &shared.pipeline,
                        error: &e,
                    });
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
        // Once a minute at most: at the limit, every connection closed lets one more in.
        let full = slots.available_permits() == 0 && slot.is_none();
        if full && warned.is_none_or(|at| at.elapsed() >= LIMIT_WARNING_INTERVAL) {
            emit(ConnectionLimitReached {
                pipeline: &shared.pipeline,
                max_connections: limit,
            });
            warned = Some(tokio::time::Instant::now());
        }
    }
    connections
}

/// Serves one connection, holding its `slot` of the connection limit until it closes.
async fn connection(stream: TcpStream, shared: Shared, slot: OwnedSemaphorePermit) {
    let _ = stream.set_nodelay(true);
    let pipeline = &*shared.pipeline;
    emit(ConnectionOpened { pipeline });
    match &shared.acceptor {
        None => http(stream, &shared).await,
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => http(tls, &shared).await,
                Ok(Err(e)) => emit(TlsHandshakeFailed { error: Some(&e) }),
                Err(_) => emit(TlsHandshakeFailed { error: None }),
            }
        }
    }
    emit(ConnectionClosed { pipeline });
    drop(slot);
}

/// Serves HTTP/1.1 or HTTP/2 on `io` until the client closes it, it stays idle too long, or
/// shutdown (then the requests under way are answered first).
async fn http<I>(io: I, shared: &Shared)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let service = hyper::service::service_fn({
        let (handler, activity, stop) = (
            shared.handler.clone(),
            activity.clone(),
            shared.stop.clone(),
        );
        move |request: Request<Incoming>| {
            let handler = handler.clone();
            let version = request.version();
            let busy = activity.busy(version);
            let http2 = version == hyper::Version::HTTP_2;
            let request = request
                .map(|body| RequestBody::new(body, http2, stop.clone(), activity.busy(version)));
            async move {
                let answer = handler.handle(request).await;
                drop(busy);
                Ok::<_, Infallible>(answer)
            }
        }
    });
    let io = TokioIo::new(Watched::new(io, activity.clone()));
    let conn = shared.builder.serve_connection(io, service);
    tokio::pin!(conn);
    let stopping = tokio::select! {
        served = conn.as_mut() => return ended(served),
        () = shared.close.cancelled() => true,
        () = activity.expired(shared.timeouts) => false,
    };
    if stopping {
        conn.as_mut().graceful_shutdown();
        // Bounded by the server's shutdown deadline.
        ended(conn.await);
    } else if activity.http2() {
        // No stream is open: a GOAWAY tells the client not to start one here.
        emit(IdleConnectionClosed { http2: true });
        conn.as_mut().graceful_shutdown();
        if let Ok(served) = tokio::time::timeout(CLOSE_GRACE, conn).await {
            ended(served);
        }
    } else {
        // No request is under way: HTTP/1.1 has nothing to say before closing.
        emit(IdleConnectionClosed { http2: false });
    }
}

fn ended(served: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(e) = served {
        emit(ConnectionError { error: &e });
    }
}
