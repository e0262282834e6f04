//! The in-flight budget: how many bytes of inputs may be read and not yet finished.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The bytes of inputs read and not yet finished, against `max_in_flight_bytes`: inputs stop
/// reading while it is used up.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    /// Inputs read and not finished.
    inputs: AtomicUsize,
    limit: usize,
    room: tokio::sync::Notify,
    bytes_gauge: metrics::Gauge,
    inputs_gauge: metrics::Gauge,
}

/// How often the in-flight gauges are brought up to date. Setting them at every event was a
/// floating-point swap per event on a cache line shared by the input and output threads.
pub const GAUGE_REFRESH: std::time::Duration = std::time::Duration::from_millis(200);

impl Budget {
    /// A budget of `limit` bytes, shown in `bytes_gauge`; `inputs_gauge` shows the inputs in
    /// flight.
    pub fn new(limit: usize, bytes_gauge: metrics::Gauge, inputs_gauge: metrics::Gauge) -> Self {
        Budget {
            used: AtomicUsize::new(0),
            inputs: AtomicUsize::new(0),
            limit: limit.max(1),
            room: tokio::sync::Notify::new(),
            bytes_gauge,
            inputs_gauge,
        }
    }

    /// An input of `bytes` was read.
    pub fn charge(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    /// An input of `bytes` is finished.
    pub fn release(&self, bytes: usize) {
        let before = self.used.fetch_sub(bytes, Ordering::AcqRel);
        if before >= self.limit && before - bytes < self.limit {
            self.room.notify_waiters();
        }
    }

    /// An input was read: it is in flight until [`Budget::inputs_finished`].
    pub fn input_started(&self) {
        self.inputs.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` inputs are finished.
    pub fn inputs_finished(&self, n: usize) {
        self.inputs.fetch_sub(n, Ordering::Relaxed);
    }

    /// Bytes and inputs in flight now.
    pub fn in_flight(&self) -> (usize, usize) {
        (
            self.used.load(Ordering::Acquire),
            self.inputs.load(Ordering::Relaxed),
        )
    }

    /// Sets the in-flight gauges to the current figures (every [`GAUGE_REFRESH`] while the
    /// pipeline runs, and when it stops).
    pub fn refresh_gauges(&self) {
        let (bytes, inputs) = self.in_flight();
        self.bytes_gauge.set(bytes as f64);
        self.inputs_gauge.set(inputs as f64);
    }

    /// Whether the budget is used up: inputs should not read more.
    pub fn is_full(&self) -> bool {
        self.used.load(Ordering::Acquire) >= self.limit
    }

    /// Waits until the budget is no longer used up.
    pub async fn room(&self) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.is_full() {
                return;
            }
            notified.await;
        }
    }
}
