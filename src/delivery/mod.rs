//! Delivery bookkeeping shared by every input, output and the runtime: acknowledgements, the
//! in-flight budget, ordered positions, and what a failure is. It depends on nothing else in
//! the crate.

pub mod ack;
pub mod budget;
pub mod failure;
pub mod tracker;

pub use ack::{Ack, AckMsg, AckSender, Outcome, ack_channel, ack_counter};
pub use budget::{Budget, GAUGE_REFRESH, Hold, NoRoom};
pub use failure::{Cause, ErrorKind, Failure, MustStop, Step};
pub use tracker::{OrderedTracker, UnknownId};

/// Adds to `batch` the batches already waiting in `rx`, while it holds fewer than `limit`
/// events: under load, small batches join into fewer, larger ones, each handed on once.
pub fn join_waiting<T>(
    rx: &mut tokio::sync::mpsc::Receiver<Vec<T>>,
    batch: &mut Vec<T>,
    limit: usize,
) {
    while batch.len() < limit {
        match rx.try_recv() {
            Ok(more) => batch.extend(more),
            Err(_) => break,
        }
    }
}
