//! A request body that, dropped before its end on HTTP/2, is read to its end in the background
//! and thrown away (within bounds): an early answer (401, 413) then reaches the client, which
//! otherwise sees its upload reset and loses the answer with it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio_util::sync::CancellationToken;

use super::idle::Busy;

/// The most bytes of a refused request read and thrown away. A client sending more sees its
/// stream reset after the answer; below it, a body a few times `max_body_bytes` (10 MiB by
/// default) still gets its answer.
const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// How long the rest of a refused body is read at most, and how long one read may wait: nginx's
/// `lingering_time` and `lingering_timeout`.
const LINGER_TIME: Duration = Duration::from_secs(30);
const LINGER_READ: Duration = Duration::from_secs(5);

/// The body of a request as the handler gets it.
pub struct RequestBody {
    inner: Option<Incoming>,
    /// Whether the rest is read when dropped unfinished: HTTP/2 only, where the stream is
    /// otherwise reset. HTTP/1.1 clients read the answer while sending, and the connection is
    /// closed after it.
    linger: bool,
    /// At shutdown the rest is no longer read.
    stop: CancellationToken,
    /// Keeps the connection busy (not idle) while the body is read.
    busy: Option<Busy>,
}

impl RequestBody {
    /// `inner`, of a request over HTTP/2 when `http2`.
    pub fn new(inner: Incoming, http2: bool, stop: CancellationToken, busy: Busy) -> Self {
        RequestBody {
            inner: Some(inner),
            linger: http2,
            stop,
            busy: Some(busy),
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.get_mut().inner {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let Some(body) = self.inner.take() else {
            return;
        };
        if !self.linger || body.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (stop, busy) = (self.stop.clone(), self.busy.take());
        runtime.spawn(async move {
            tokio::select! {
                _ = tokio::time::timeout(LINGER_TIME, discard(body)) => {}
                () = stop.cancelled() => {}
            }
            drop(busy);
        });
    }
}

/// Reads `body` to its end, or to [`LINGER_BYTES`], or until a read waits [`LINGER_READ`].
async fn discard(mut body: Incoming) {
    let mut left = LINGER_BYTES;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(LINGER_READ, body.frame()).await {
        if let Some(data) = frame.data_ref() {
            left = left.saturating_sub(data.len());
            if left == 0 {
                return;
            }
        }
    }
}
