//! Listening: connections accepted (over TLS when configured), served with HTTP/1.1 or HTTP/2,
//! and at shutdown no new ones, while the requests in flight are answered.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::HttpServerInput;
use super::handler::Handler;
use crate::source::submit::Submitter;
use crate::source::{SourceContext, SourceError};

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long after shutdown began requests on connections already open (or waiting to be
/// accepted) are still read, to be answered 503: long enough for those already sent to arrive,
/// short next to the drain timeout (of which it takes a quarter at most).
const LAST_CALL: Duration = Duration::from_secs(2);

/// After the drain timeout, how long answers have to reach their clients before the connections
/// still open are dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

fn read_error(message: String) -> SourceError {
    SourceError::Read {
        input: "http_server",
        message,
    }
}

/// Serves until shutdown, then waits for the requests in flight to be answered.
pub async fn serve(input: HttpServerInput, ctx: SourceContext) -> Result<(), SourceError> {
    let address = &input.config.address;
    let listener = TcpListener::bind(address.as_str())
        .await
        .map_err(|e| read_error(format!("cannot listen on {address}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| read_error(e.to_string()))?;
    let pipeline = ctx.telemetry.pipeline().to_string();
    tracing::info!(pipeline = %pipeline, address = %local, path = %input.config.path, tls = input.tls.is_some(), "http_server: listening");
    if let Some(link) = &ctx.link {
        link.set(true);
    }
    let submitter = Submitter::new(ctx.intake, ctx.telemetry.clone(), ctx.counted);
    let handler = Arc::new(Handler::new(
        &input.config,
        submitter,
        ctx.shutdown.clone(),
        ctx.drain_timeout,
        &pipeline,
    ));
    let acceptor = input.tls.map(TlsAcceptor::from);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Slow or idle clients cannot hold a connection open forever before sending a request.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    // From shutdown on, connections and requests still come in for a moment, to be answered
    // 503 (HTTP/1.1 with `Connection: close`) rather than cut off unanswered.
    let last_call = tokio::time::sleep(Duration::MAX);
    tokio::pin!(last_call);
    let mut closing = false;
    loop {
        if closing && connections.is_empty() {
            break;
        }
        let stream = tokio::select! {
            () = ctx.shutdown.cancelled(), if !closing => {
                closing = true;
                let window = LAST_CALL.min(ctx.drain_timeout / 4);
                last_call.as_mut().reset(tokio::time::Instant::now() + window);
                continue;
            }
            () = &mut last_call, if closing => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, usually: it passes as connections close.
                    tracing::warn!(pipeline = %pipeline, error = %e, "http_server: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            match acceptor {
                None => connection(stream, handler, builder, watcher).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => connection(tls, handler, builder, watcher).await,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "http_server: TLS handshake failed")
                        }
                        Err(_) => tracing::debug!("http_server: TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    drop(handler);
    if let Some(link) = &ctx.link {
        link.set(false);
    }
    // Requests in flight wait at most the drain timeout for their events, then are answered.
    let closed = tokio::time::timeout(ctx.drain_timeout + CLOSE_GRACE, graceful.shutdown()).await;
    if closed.is_err() {
        tracing::warn!(pipeline = %pipeline, "http_server: connections still open at the shutdown deadline were closed");
    }
    // Connections that never got a request through (a TLS handshake under way) go too; with them
    // the last hold on the pipeline's input, which then ends.
    connections.shutdown().await;
    Ok(())
}

async fn connection<I>(
    io: I,
    handler: Arc<Handler>,
    builder: auto::Builder<TokioExecutor>,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler.handle(request).await) }
    });
    let served = watcher
        .watch(
            builder
                .serve_connection(TokioIo::new(io), service)
                .into_owned(),
        )
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "http_server: connection ended with an error");
    }
}
