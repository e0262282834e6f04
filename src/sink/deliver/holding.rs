//! Outputs that hold events between batches: records handed to a client that reports on each
//! later (Kafka: librdkafka's own queue and its delivery reports), or events gathered into larger
//! writes (object stores: written when full, old, or asked for). The loop that takes batches,
//! wakes the output in between and waits for it to let go of everything is written once here.

use super::Delivery;
use crate::event::Event;
use crate::sink::{Batches, SinkContext, SinkError};

/// An output that holds events between batches. [`run_holding`] hands it each batch when it has
/// room, and otherwise lets it do work of its own (settle the reports that came in, write what is
/// old); it settles what it learns of each event through the [`Delivery`] it is given: delivered,
/// refused to the error policy, or retried after the backoff (while events wait for a retry, the
/// output takes no new batch, so the input stops reading).
pub trait Holding: Send {
    /// Whether another batch may be taken now. By default, always: an output that bounds what it
    /// holds, or stops taking while its circuit is open, says no.
    fn has_room(&self, _delivery: &Delivery) -> bool {
        true
    }

    /// Whether events are held: [`run_holding`] returns once the channel is closed and none are.
    fn holds(&self) -> bool;

    /// Takes a batch in: hands its events on, or holds them.
    fn take(
        &mut self,
        batch: Vec<Event>,
        delivery: &mut Delivery,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Waits until the output has work of its own (reports came in, a deadline passed, a flush
    /// was asked for). Cancel safe: dropped before it is ready, it loses nothing. Never ready
    /// when no such work can come.
    fn ready(&mut self) -> impl Future<Output = ()> + Send;

    /// Does the work [`Holding::ready`] waited for.
    fn work(
        &mut self,
        delivery: &mut Delivery,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// The channel closed: what is held is written or handed on. [`run_holding`] then keeps
    /// waking the output until it holds nothing.
    fn close(
        &mut self,
        delivery: &mut Delivery,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// Runs `output` until the channel closes and it holds nothing more. Its own work comes before a
/// new batch: what it learned is settled before more is taken.
pub async fn run_holding<H: Holding>(
    mut output: H,
    mut rx: Batches,
    ctx: SinkContext,
) -> Result<(), SinkError> {
    let mut delivery = Delivery::new(ctx);
    let mut open = true;
    while open || output.holds() {
        let take = open && output.has_room(&delivery);
        tokio::select! {
            biased;
            () = output.ready() => output.work(&mut delivery).await?,
            batch = rx.recv(), if take => match batch {
                Some(batch) => output.take(batch, &mut delivery).await?,
                None => {
                    open = false;
                    output.close(&mut delivery).await?;
                }
            },
        }
    }
    Ok(())
}
