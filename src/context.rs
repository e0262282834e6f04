//! What one running pipeline shares with its input and outputs ([`PipelineContext`]): the
//! in-flight budget, the acknowledgement channels that count against it, and the control
//! channel by which the input tells the outputs what they must do now ([`Signal`]).

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::delivery::{AckMsg, AckSender, Budget};
use crate::observe::InFlightSeries;

/// A pipeline's shared state, cheap to clone: one per running pipeline, given to its input,
/// its transform stage and its outputs.
#[derive(Clone)]
pub struct PipelineContext {
    inner: Arc<Inner>,
}

struct Inner {
    name: Arc<str>,
    budget: Arc<Budget>,
    /// Seconds from reading an input to the delivery of everything derived from it.
    latency: metrics::Histogram,
    control: watch::Sender<Sent>,
}

impl std::fmt::Debug for PipelineContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineContext")
            .field("name", &self.inner.name)
            .field("in_flight", &self.inner.budget.in_flight())
            .finish_non_exhaustive()
    }
}

impl PipelineContext {
    /// The context of pipeline `name`, with an in-flight budget of `max_in_flight_bytes`.
    pub fn new(name: &str, max_in_flight_bytes: usize) -> PipelineContext {
        let series = InFlightSeries::new(name);
        PipelineContext {
            inner: Arc::new(Inner {
                name: Arc::from(name),
                budget: Arc::new(Budget::new(
                    max_in_flight_bytes,
                    series.bytes,
                    series.inputs,
                )),
                latency: series.latency,
                control: watch::Sender::new(Sent::default()),
            }),
        }
    }

    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The pipeline's in-flight byte budget: inputs stop reading while it is used up.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.inner.budget
    }

    /// An input's ack channel (see [`crate::delivery::ack_channel`]): its inputs count against
    /// the budget until acknowledged, and the time to their delivery is the pipeline's latency.
    pub fn ack_channel(&self) -> (AckSender, mpsc::UnboundedReceiver<AckMsg>) {
        crate::delivery::ack_channel(&self.inner.budget, self.inner.latency.clone())
    }

    /// Acks for an input with nothing to acknowledge (core NATS, files, generated events): they
    /// still count against the budget and the latency.
    pub fn ack_counter(&self) -> AckSender {
        crate::delivery::ack_counter(&self.inner.budget, self.inner.latency.clone())
    }

    /// Tells every output `signal`. Signals never block the sender, and an output that was busy
    /// sees it at its next look (several of a kind coming together are seen as one).
    pub fn signal(&self, signal: Signal) {
        self.inner.control.send_modify(|sent| match signal {
            Signal::Rebalance => sent.rebalances += 1,
            Signal::Flush => sent.flushes += 1,
        });
    }

    /// Where an output learns of signals: from now on, not those sent before.
    pub fn control(&self) -> Control {
        let rx = self.inner.control.subscribe();
        let seen = *rx.borrow();
        Control { rx, seen }
    }
}

/// What the input tells the outputs. Today the input is the only sender; transactions and the
/// hand-over of state will be signals too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The input's partitions change (a Kafka rebalance): an output that holds events back to
    /// fill larger writes writes them now (the input waits for the events of the partitions it
    /// gives up to be delivered), and forgets what it knew of the partitions (another member
    /// may have written to them).
    Rebalance,
    /// The input is given no more until it acknowledges what it has (a JetStream consumer at its
    /// `max_ack_pending`): what outputs hold back is written now.
    Flush,
}

/// How many signals of each kind were sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sent {
    rebalances: u64,
    flushes: u64,
}

/// An output's end of the control channel.
#[derive(Debug)]
pub struct Control {
    rx: watch::Receiver<Sent>,
    seen: Sent,
}

impl Control {
    /// The next signal not seen yet, waiting for one; None once the pipeline is gone. A
    /// rebalance includes a flush: with both pending, only the rebalance is returned.
    pub async fn next(&mut self) -> Option<Signal> {
        loop {
            if let Some(signal) = self.pending() {
                return Some(signal);
            }
            self.rx.changed().await.ok()?;
        }
    }

    /// Waits until a signal not seen yet is there, without taking it ([`Control::pending`]
    /// takes it); never returns once the pipeline is gone. Cancel safe.
    pub async fn wait(&mut self) {
        loop {
            if *self.rx.borrow() != self.seen {
                return;
            }
            if self.rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The signal not seen yet, if one was sent, without waiting.
    pub fn pending(&mut self) -> Option<Signal> {
        let sent = *self.rx.borrow_and_update();
        let seen = std::mem::replace(&mut self.seen, sent);
        if sent.rebalances != seen.rebalances {
            Some(Signal::Rebalance)
        } else if sent.flushes != seen.flushes {
            Some(Signal::Flush)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_output_sees_each_signal_sent_after_it_subscribed_once() {
        let cx = PipelineContext::new("control", usize::MAX);
        cx.signal(Signal::Flush);
        let mut control = cx.control();
        assert_eq!(control.pending(), None, "sent before it subscribed");
        cx.signal(Signal::Flush);
        cx.signal(Signal::Flush);
        assert_eq!(control.next().await, Some(Signal::Flush));
        assert_eq!(control.pending(), None, "two flushes together are one");
        cx.signal(Signal::Flush);
        cx.signal(Signal::Rebalance);
        assert_eq!(control.next().await, Some(Signal::Rebalance));
        assert_eq!(control.pending(), None, "a rebalance includes the flush");
        cx.signal(Signal::Flush);
        control.wait().await;
        control.wait().await;
        assert_eq!(
            control.pending(),
            Some(Signal::Flush),
            "waiting does not take it"
        );
    }

    #[tokio::test]
    async fn an_output_waiting_wakes_at_a_signal_and_ends_with_the_pipeline() {
        let cx = PipelineContext::new("control", usize::MAX);
        let mut control = cx.control();
        let waiter = tokio::spawn(async move { (control.next().await, control) });
        cx.signal(Signal::Rebalance);
        let (first, mut control) = waiter.await.unwrap();
        assert_eq!(first, Some(Signal::Rebalance));
        cx.signal(Signal::Flush);
        drop(cx);
        assert_eq!(
            control.next().await,
            Some(Signal::Flush),
            "sent before the end"
        );
        assert_eq!(control.next().await, None);
    }

    #[tokio::test]
    async fn the_budget_blocks_when_used_up_and_wakes_when_room_is_made() {
        let cx = PipelineContext::new("budget", 100);
        let b = cx.budget().clone();
        b.charge(60);
        assert!(!b.is_full());
        b.room().await;
        b.charge(60);
        assert!(b.is_full());
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.room().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "waits while used up");
        b.release(60);
        waiter.await.unwrap();
        assert!(!b.is_full());
    }
}
