//! The in-flight budget: how many bytes of inputs may be read and not yet finished.

use std::sync::Arc;
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

    /// The budget in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes `bytes` of the budget if they fit in what is left of it: a [`Hold`] that gives them
    /// back when dropped. For inputs that know what a read costs before making it (an HTTP
    /// request), so that it is taken whole within the budget or refused.
    pub fn hold(self: &Arc<Self>, bytes: usize) -> Result<Hold, NoRoom> {
        let mut hold = Hold {
            budget: self.clone(),
            bytes: 0,
        };
        hold.grow(bytes)?;
        Ok(hold)
    }

    fn take(&self, bytes: usize) -> Result<(), NoRoom> {
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            match used.checked_add(bytes) {
                Some(after) if after <= self.limit => {}
                _ => return Err(NoRoom::Now),
            }
            match self.used.compare_exchange_weak(
                used,
                used + bytes,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
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

/// Why bytes could not be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoRoom {
    /// Not that much is left now; it may be once inputs in flight are finished.
    #[error("the in-flight budget has no room for it now")]
    Now,
    /// More than the whole budget: it never fits.
    #[error("it is over the whole in-flight budget")]
    Ever,
}

/// Bytes taken from a [`Budget`] ahead of the events they are for, given back when dropped.
#[derive(Debug)]
pub struct Hold {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Hold {
    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds `bytes` more, if they fit in what is left of the budget.
    pub fn grow(&mut self, bytes: usize) -> Result<(), NoRoom> {
        if self.bytes.saturating_add(bytes) > self.budget.limit {
            return Err(NoRoom::Ever);
        }
        self.budget.take(bytes)?;
        self.bytes += bytes;
        Ok(())
    }

    /// Gives `bytes` of the hold back (at most what it holds): the events they were held for
    /// now count for themselves.
    pub fn release(&mut self, bytes: usize) {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        self.budget.release(bytes);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_is_taken_within_the_budget_and_given_back_when_dropped() {
        let budget = Arc::new(Budget::new(
            100,
            metrics::Gauge::noop(),
            metrics::Gauge::noop(),
        ));
        assert_eq!(budget.hold(101).err(), Some(NoRoom::Ever));
        let mut a = budget.hold(60).unwrap();
        assert_eq!(budget.hold(41).err(), Some(NoRoom::Now));
        let b = budget.hold(40).unwrap();
        assert!(budget.is_full());
        assert_eq!(a.grow(1), Err(NoRoom::Now));
        assert_eq!(
            a.grow(41),
            Err(NoRoom::Ever),
            "60 + 41 is over the whole budget"
        );
        a.release(10);
        assert_eq!(budget.in_flight().0, 90);
        a.grow(10).unwrap();
        assert_eq!(a.bytes(), 60);
        drop(b);
        drop(a);
        assert_eq!(budget.in_flight().0, 0);
        // Charged past the limit by an input that reads first: no hold fits.
        budget.charge(150);
        assert_eq!(budget.hold(1).err(), Some(NoRoom::Now));
    }
}
