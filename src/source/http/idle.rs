//! When a connection is closed for want of requests: the head of a request not sent within the
//! header read timeout, or no request under way for the idle timeout.
//!
//! hyper's own HTTP/1.1 header timer also runs while a kept-alive connection waits, so it cannot
//! tell the two apart, and nothing in hyper bounds an HTTP/2 connection without streams or a
//! connection that has not sent its first bytes yet (while HTTP/1.1 and HTTP/2 are told apart).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Version;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, watch};
use tokio::time::timeout;

/// The timeouts of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the connection's start, or the first byte of a request, to its last header.
    pub header_read: Duration,
    /// With no request under way, to the first byte of the next (HTTP/2: to the next stream).
    pub idle: Duration,
}

/// Requests of a connection: how many started, how many are under way.
#[derive(Debug, Clone, Copy, Default)]
struct Requests {
    started: u64,
    busy: usize,
}

/// What a connection is doing: requests under way, bytes read.
pub struct Activity {
    requests: watch::Sender<Requests>,
    bytes: AtomicU64,
    read: Notify,
    http2: AtomicBool,
}

/// A request under way (or its body still being read): the connection is not idle while it
/// lives.
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0
            .requests
            .send_modify(|r| r.busy = r.busy.saturating_sub(1));
    }
}

impl Activity {
    /// A connection just opened.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            requests: watch::Sender::new(Requests::default()),
            bytes: AtomicU64::new(0),
            read: Notify::new(),
            http2: AtomicBool::new(false),
        })
    }

    /// A request of `version` under way, until the guard is dropped.
    pub fn busy(self: &Arc<Self>, version: Version) -> Busy {
        if version == Version::HTTP_2 {
            self.http2.store(true, Ordering::Relaxed);
        }
        self.requests.send_modify(|r| {
            r.started += 1;
            r.busy += 1;
        });
        Busy(self.clone())
    }

    /// Whether the connection speaks HTTP/2 (known from its first request).
    pub fn http2(&self) -> bool {
        self.http2.load(Ordering::Relaxed)
    }

    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Passes when the connection should be closed: its first request's head not in within the
    /// header read timeout; then, each time no request is under way, no first byte of the next
    /// within the idle timeout, or its head not in within the header read timeout after that
    /// byte (HTTP/2: no new stream within the idle timeout).
    pub async fn expired(&self, t: Timeouts) {
        // Counted, not only watched: a request may start and end between two polls.
        let mut requests = self.requests.subscribe();
        if timeout(t.header_read, next(&mut requests, 0))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let Ok(idle) = requests.wait_for(|r| r.busy == 0).await.map(|r| r.started) else {
                return;
            };
            if self.http2() {
                if timeout(t.idle, next(&mut requests, idle)).await.is_err() {
                    return;
                }
                continue;
            }
            let seen = self.bytes();
            let first_byte = async {
                while self.bytes() == seen {
                    self.read.notified().await;
                }
            };
            tokio::select! {
                () = next(&mut requests, idle) => continue,
                read = timeout(t.idle, first_byte) => if read.is_err() {
                    return;
                },
            }
            if timeout(t.header_read, next(&mut requests, idle))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Passes once more than `started` requests have started.
async fn next(requests: &mut watch::Receiver<Requests>, started: u64) {
    // The sender lives as long as the activity the caller borrows: never closed here.
    let _ = requests.wait_for(|r| r.started > started).await;
}

/// A connection's stream, counting the bytes read from it.
pub struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I> Watched<I> {
    /// `io`, reporting reads to `activity`.
    pub fn new(io: I, activity: Arc<Activity>) -> Self {
        Watched { io, activity }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            this.activity
                .bytes
                .fetch_add(read as u64, Ordering::Relaxed);
            this.activity.read.notify_one();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        header_read: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    /// Whether `expired` passes within `secs` more seconds (of paused time).
    async fn within(expired: &mut Pin<&mut impl Future<Output = ()>>, secs: u64) -> bool {
        tokio::select! {
            biased;
            () = expired.as_mut() => true,
            () = tokio::time::sleep(Duration::from_secs(secs)) => false,
        }
    }

    fn byte(a: &Activity) {
        a.bytes.fetch_add(1, Ordering::Relaxed);
        a.read.notify_one();
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_no_request_expires_after_the_header_timeout() {
        let a = Activity::new();
        let expired = a.expired(T);
        tokio::pin!(expired);
        byte(&a);
        assert!(!within(&mut expired, 9).await);
        assert!(within(&mut expired, 2).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_alive_connection_waits_the_idle_timeout_then_the_header_timeout() {
        let a = Activity::new();
        let expired = a.expired(T);
        tokio::pin!(expired);
        let request = a.busy(Version::HTTP_11);
        assert!(!within(&mut expired, 100).await, "busy: never idle");
        drop(request);
        assert!(!within(&mut expired, 50).await, "within the idle timeout");
        // The first byte of the next request: its head must follow within the header timeout.
        byte(&a);
        assert!(!within(&mut expired, 9).await);
        assert!(within(&mut expired, 2).await);

        let a = Activity::new();
        let expired = a.expired(T);
        tokio::pin!(expired);
        drop(a.busy(Version::HTTP_11));
        assert!(!within(&mut expired, 59).await);
        assert!(within(&mut expired, 2).await, "idle past the idle timeout");
    }

    #[tokio::test(start_paused = true)]
    async fn an_http2_connection_without_streams_expires_after_the_idle_timeout() {
        let a = Activity::new();
        let expired = a.expired(T);
        tokio::pin!(expired);
        drop(a.busy(Version::HTTP_2));
        // Frames other than requests (pings, settings) do not keep it open, nor shorten it.
        byte(&a);
        assert!(!within(&mut expired, 59).await);
        assert!(within(&mut expired, 2).await);
    }
}
