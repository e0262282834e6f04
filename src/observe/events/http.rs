//! The HTTP server input (listening, connections, requests answered) and the HTTP output's
//! settings a user should know are in effect.

use std::fmt::Display;

use super::InternalEvent;
use crate::observe::names;

/// The server listens.
pub struct Listening<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The address it listens on.
    pub address: &'a dyn Display,
    /// The path it takes requests on.
    pub path: &'a str,
    /// Whether it speaks TLS.
    pub tls: bool,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl InternalEvent for Listening<'_> {
    fn emit(self) {
        tracing::info!(pipeline = %self.pipeline, address = %self.address, path = %self.path, tls = self.tls, max_connections = self.max_connections, "http_server: listening");
    }
}

/// A connection was accepted: it counts in `sluice_http_connections` until
/// [`ConnectionClosed`].
pub struct ConnectionOpened<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
}

impl InternalEvent for ConnectionOpened<'_> {
    fn emit(self) {
        metrics::gauge!(names::HTTP_CONNECTIONS, "pipeline" => self.pipeline.to_string())
            .increment(1.0);
    }
}

/// A connection closed.
pub struct ConnectionClosed<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
}

impl InternalEvent for ConnectionClosed<'_> {
    fn emit(self) {
        metrics::gauge!(names::HTTP_CONNECTIONS, "pipeline" => self.pipeline.to_string())
            .decrement(1.0);
    }
}

/// Accepting a connection failed (out of file descriptors, most often): it passes as files
/// close.
pub struct AcceptFailed<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// Why.
    pub error: &'a dyn Display,
}

impl InternalEvent for AcceptFailed<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, error = %self.error, "http_server: accepting a connection failed");
    }
}

/// As many connections are open as allowed: new ones wait in the listen queue.
pub struct ConnectionLimitReached<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The limit.
    pub max_connections: usize,
}

impl InternalEvent for ConnectionLimitReached<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, max_connections = self.max_connections, "http_server: connection limit reached; new connections wait until one closes");
    }
}

/// Connections were still open at the shutdown deadline: they were closed.
pub struct ConnectionsCutAtDeadline<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
}

impl InternalEvent for ConnectionsCutAtDeadline<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, "http_server: connections still open at the shutdown deadline were closed");
    }
}

/// A TLS handshake failed (`error`) or timed out (None).
pub struct TlsHandshakeFailed<'a> {
    /// Why, or None when it took too long.
    pub error: Option<&'a dyn Display>,
}

impl InternalEvent for TlsHandshakeFailed<'_> {
    fn emit(self) {
        match self.error {
            Some(error) => tracing::debug!(error = %error, "http_server: TLS handshake failed"),
            None => tracing::debug!("http_server: TLS handshake timed out"),
        }
    }
}

/// A connection idle for too long was closed.
pub struct IdleConnectionClosed {
    /// Whether it speaks HTTP/2 (it is told with a GOAWAY).
    pub http2: bool,
}

impl InternalEvent for IdleConnectionClosed {
    fn emit(self) {
        if self.http2 {
            tracing::debug!("http_server: closing an idle HTTP/2 connection");
        } else {
            tracing::debug!("http_server: closing a connection idle for too long");
        }
    }
}

/// A connection ended with an error (the client went away mid-request, a protocol error).
pub struct ConnectionError<'a> {
    /// What went wrong.
    pub error: &'a dyn Display,
}

impl InternalEvent for ConnectionError<'_> {
    fn emit(self) {
        tracing::debug!(error = %self.error, "http_server: connection ended with an error");
    }
}

/// A request was answered.
pub struct RequestAnswered<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The status code (`200`, `503`...).
    pub status: &'a str,
}

impl InternalEvent for RequestAnswered<'_> {
    fn emit(self) {
        metrics::counter!(
            names::HTTP_REQUESTS_TOTAL,
            "pipeline" => self.pipeline.to_string(),
            "status" => self.status.to_string()
        )
        .increment(1);
    }
}

/// A request was answered 503: not every one of its events was delivered in time.
pub struct RequestUnfinished<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The request, as it may be shown.
    pub request: &'a dyn Display,
    /// Its events.
    pub events: usize,
    /// Of them, those that failed.
    pub failed: usize,
    /// Of them, those not answered in time.
    pub unfinished: usize,
}

impl InternalEvent for RequestUnfinished<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, request = %self.request, events = self.events, failed = self.failed, unfinished = self.unfinished, "http_server: answered 503, not every event of the request was delivered");
    }
}

/// `tls.insecure_skip_verify` is set on the HTTP output.
pub struct OutputInsecureTls<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
}

impl InternalEvent for OutputInsecureTls<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, "tls.insecure_skip_verify is set: the HTTP server's certificate is not checked");
    }
}

#[cfg(test)]
mod tests {
    use super::super::{captured, emit};
    use super::*;

    #[test]
    fn connections_open_and_requests_answered_are_counted_by_pipeline() {
        let seen = captured(|| {
            let pipeline = "orders";
            emit(ConnectionOpened { pipeline });
            emit(ConnectionOpened { pipeline });
            emit(ConnectionClosed { pipeline });
            emit(RequestAnswered {
                pipeline,
                status: "200",
            });
            emit(RequestAnswered {
                pipeline,
                status: "503",
            });
            emit(RequestUnfinished {
                pipeline,
                request: &"POST /events",
                events: 3,
                failed: 1,
                unfinished: 1,
            });
            emit(ConnectionLimitReached {
                pipeline,
                max_connections: 2,
            });
        });
        assert_eq!(
            seen.metrics,
            [
                "sluice_http_connections{pipeline=\"orders\"} 1",
                "sluice_http_requests_total{pipeline=\"orders\",status=\"200\"} 1",
                "sluice_http_requests_total{pipeline=\"orders\",status=\"503\"} 1",
            ]
        );
        assert_eq!(
            seen.logs,
            [
                "WARN http_server: answered 503, not every event of the request was delivered pipeline=orders request=POST /events events=3 failed=1 unfinished=1",
                "WARN http_server: connection limit reached; new connections wait until one closes pipeline=orders max_connections=2",
            ]
        );
    }
}
