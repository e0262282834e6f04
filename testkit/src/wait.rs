//! Waiting on a condition with a deadline, instead of sleeping for a guessed time; pacing a
//! producer.

use std::time::{Duration, Instant};

/// Between two checks of a condition that is cheap to check.
const POLL: Duration = Duration::from_millis(20);
/// Between two checks of an async condition: those usually ask a server.
const POLL_ASYNC: Duration = Duration::from_millis(50);

/// Checks `cond` until it returns Some, or returns None once `timeout` has passed.
///
/// For callers that say more than [`wait_for`] when time is up (progress, logs) or that do
/// something first (kill a child).
pub fn try_wait_for<T>(timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Checks `cond` until it returns Some, or panics after `timeout` naming `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, cond: impl FnMut() -> Option<T>) -> T {
    try_wait_for(timeout, cond)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Awaits `cond` until it returns Some, or returns None once `timeout` has passed. A check still
/// running at the deadline is cancelled; errors while a server restarts are just "not yet".
pub async fn try_eventually<T>(
    timeout: Duration,
    mut cond: impl AsyncFnMut() -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(v)) = tokio::time::timeout_at(deadline, cond()).await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_ASYNC).await;
    }
}

/// Awaits `cond` until it returns Some, or panics after `timeout` naming `what`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    cond: impl AsyncFnMut() -> Option<T>,
) -> T {
    try_eventually(timeout, cond)
        .await
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Paces a producer: `per_10ms` events every 10 ms, catching up after a slow send.
pub struct Pace {
    per_10ms: u64,
    next_tick: Instant,
}

impl Pace {
    /// A pace of `per_10ms` events every 10 ms, starting now.
    pub fn new(per_10ms: u64) -> Pace {
        Pace {
            per_10ms,
            next_tick: Instant::now(),
        }
    }

    /// Waits, if it is early, before event `i` is sent.
    pub fn before(&mut self, i: u64) {
        if i.is_multiple_of(self.per_10ms) {
            self.next_tick += Duration::from_millis(10);
            if let Some(wait) = self.next_tick.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
}
