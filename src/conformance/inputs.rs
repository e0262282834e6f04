//! The contract every input keeps, checked the same way for each: every message is read once and
//! in order, and acknowledged on its bus only once everything derived from it is answered;
//! while the in-flight budget is used up or the pipeline is full, the input reads no more; at
//! shutdown it stops, acknowledges what was delivered, and loses nothing. An input joins with
//! one line: `conformance!(name, harness)`, its harness saying how to put messages where the
//! input reads and how to see what the bus counts as acknowledged. The check plays the
//! pipeline: it takes the batches and answers each event.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::broker_inputs::{JetStream, Kafka, Nats};
use super::harness::{BATCH, InputHarness as Harness};
use super::local_inputs::{File, Generate, Http, Stdin};
use super::{DEADLINE, Metrics, PIPELINE, context, payloads, run};
use crate::context::PipelineContext;
use crate::delivery::Outcome;
use crate::event::{EVENT_OVERHEAD, Event};
use crate::observe::{Telemetry, names};
use crate::source::{Input, SourceError};

/// The checks of one input, as tests in a module of its name; see `outputs.rs`.
macro_rules! conformance {
    (@tests $harness:expr, $own:literal, $($test:ident => $check:ident,)*) => {
        $(
            #[test]
            fn $test() {
                let path = concat!(module_path!(), "::", stringify!($test));
                run($own, path, |m| async move { $check(&$harness, &m).await });
            }
        )*
    };
    (@ $name:ident, $harness:expr, $own:literal) => {
        mod $name {
            use super::*;

            conformance!(@tests $harness, $own,
                reads_each_message_once_in_order_acknowledged_only_once_answered => acknowledges_only_what_was_answered,
                reads_no_more_while_the_in_flight_budget_is_used_up => holds_back_within_the_budget,
                reads_no_more_while_the_pipeline_is_full => holds_back_while_full,
                stops_at_shutdown_acknowledging_what_was_delivered_losing_nothing => stops_losing_nothing,
            );
        }
    };
    ($name:ident, $harness:expr) => {
        conformance!(@ $name, $harness, false);
    };
    ($name:ident, $harness:expr, own_process) => {
        conformance!(@ $name, $harness, true);
    };
}

conformance!(file, File::new());
conformance!(generate, Generate);
conformance!(http, Http::new());
conformance!(stdin, Stdin::new(), own_process);
conformance!(kafka, Kafka::new());
conformance!(nats, Nats::new().await);
conformance!(jetstream, JetStream::new().await);

/// The pipeline a check plays: the capacity of its channel and its in-flight budget (its
/// batches are of at most [`BATCH`] events).
struct Pipeline {
    capacity: usize,
    budget: usize,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            capacity: 16,
            budget: usize::MAX,
        }
    }
}

/// An input under test, running in a task, its channel read by the check.
struct Running {
    telemetry: Arc<Telemetry>,
    pipeline: PipelineContext,
    rx: mpsc::Receiver<Vec<Event>>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), SourceError>>,
}

fn build(input: &str) -> Input {
    let text = format!("input:\n  {input}\noutput:\n  stdout: {{}}\nerrors: drop\n");
    let file = Path::new("conformance.yaml");
    match crate::pipeline::load_str(file, &text, &|_: &str| None) {
        Ok(p) => p.components.input,
        Err(e) => panic!("{text}: {e:?}"),
    }
}

fn start(input: &str, pipeline: Pipeline) -> Running {
    let telemetry = Telemetry::new(PIPELINE);
    let cx = PipelineContext::new(PIPELINE, pipeline.budget);
    let (tx, rx) = mpsc::channel(pipeline.capacity);
    let shutdown = CancellationToken::new();
    let drain = Duration::from_secs(5);
    let ctx = context::source(&telemetry, &cx, tx, &shutdown, BATCH, drain);
    let task = tokio::spawn(build(input).run(ctx));
    Running {
        telemetry,
        pipeline: cx,
        rx,
        shutdown,
        task,
    }
}

impl Running {
    /// The next batch handed on.
    async fn batch(&mut self) -> Vec<Event> {
        let batch = tokio::time::timeout(DEADLINE, self.rx.recv()).await;
        let batch = batch.expect("nothing handed on within the deadline");
        batch.expect("the input stopped handing on")
    }

    /// The next `n` events handed on, and no more.
    async fn take(&mut self, n: usize) -> Vec<Event> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            events.extend(self.batch().await);
        }
        assert_eq!(events.len(), n, "events handed on");
        events
    }

    /// Events read and not answered yet, by the count of what was read.
    fn in_flight(&self, answered: usize) -> usize {
        (self.telemetry.summary().received as usize).saturating_sub(answered)
    }

    /// Waits for the input to return once shutdown was requested; the events it handed on that
    /// the check had not taken.
    async fn stopped(mut self) -> Vec<Event> {
        self.shutdown.cancel();
        let stopped = tokio::time::timeout(DEADLINE, self.task).await;
        stopped
            .expect("not stopped within the deadline")
            .expect("the input panicked")
            .expect("the input failed");
        std::iter::from_fn(|| self.rx.try_recv().ok())
            .flatten()
            .collect()
    }
}

fn payloads_of(events: &[Event]) -> Vec<Bytes> {
    events.iter().map(|e| e.payload.clone()).collect()
}

fn answer(events: impl IntoIterator<Item = Event>) -> usize {
    let mut n = 0;
    for event in events {
        event.ack.complete(Outcome::Delivered);
        n += 1;
    }
    n
}

/// Waits until the bus counts at least `n` payloads acknowledged; what it counts then.
async fn acknowledged_at_least(h: &impl Harness, n: usize) -> usize {
    let what = format!("{n} payloads acknowledged");
    testkit::eventually(&what, DEADLINE, async || {
        h.acknowledged().await.filter(|acked| *acked >= n)
    })
    .await
}

async fn acknowledges_only_what_was_answered(h: &impl Harness, m: &Metrics) {
    // Put in two parts, so that the last part is a message (a request) of its own.
    let sent = payloads(10);
    let (first, last) = sent.split_at(8);
    let mut input = start(&h.input(sent.len()), Pipeline::default());
    h.ready().await;
    h.put(first).await;
    let mut events = input.take(first.len()).await;
    h.put(last).await;
    events.extend(input.take(last.len()).await);
    assert_eq!(payloads_of(&events), sent, "every message once, in order");

    let held = events.pop().expect("the last event");
    for (i, event) in events.into_iter().enumerate() {
        // Dead-lettered or dropped counts as done too.
        let outcome = if i == 1 {
            Outcome::Rejected
        } else {
            Outcome::Delivered
        };
        event.ack.complete(outcome);
    }
    if h.acknowledged().await.is_some() {
        let acked = acknowledged_at_least(h, first.len()).await;
        assert!(acked < sent.len(), "acknowledged before it was answered");
    }
    answer([held]);
    if h.acknowledged().await.is_some() {
        let acked = acknowledged_at_least(h, sent.len()).await;
        assert_eq!(acked, sent.len(), "acknowledged");
    }
    assert!(input.stopped().await.is_empty(), "read more than was put");
    let received = m.counter(names::EVENTS_RECEIVED_TOTAL, &[]);
    assert_eq!(received, sent.len() as u64, "events counted received");
}

async fn holds_back_within_the_budget(h: &impl Harness, m: &Metrics) {
    // Every event counts at least its overhead against the budget, which a few events use up:
    // the input reads on only while there is room, so at most one read past it.
    let budget = 4 * EVENT_OVERHEAD;
    let most = (budget - 1) / EVENT_OVERHEAD + h.reads_ahead();
    let pipeline = Pipeline {
        budget,
        ..Pipeline::default()
    };
    let sent = payloads(4 * most);
    let mut input = start(&h.input(sent.len()), pipeline);
    h.ready().await;
    for payload in sent.chunks(1) {
        h.put(payload).await;
    }
    // Used up, or too little left for another event (an HTTP request is taken only whole).
    testkit::eventually("the budget used up", DEADLINE, async || {
        (context::budget_left(&input.pipeline) < 2 * EVENT_OVERHEAD).then_some(())
    })
    .await;
    let in_flight = input.in_flight(0);
    assert!(in_flight <= most, "{in_flight} events read past the budget");
    let (mut read, mut answered) = (Vec::new(), 0);
    while read.len() < sent.len() {
        let batch = input.batch().await;
        let in_flight = input.in_flight(answered);
        assert!(in_flight <= most, "{in_flight} events read past the budget");
        read.extend(payloads_of(&batch));
        answered += answer(batch);
    }
    each_once(read, &sent);
    assert!(input.stopped().await.is_empty(), "read more than was put");
    let received = m.counter(names::EVENTS_RECEIVED_TOTAL, &[]);
    assert_eq!(received, sent.len() as u64, "events counted received");
}

/// Asserts that `read` holds each of `sent` once, in whatever order (requests sent at once).
fn each_once(mut read: Vec<Bytes>, sent: &[Bytes]) {
    let mut sent = sent.to_vec();
    read.sort();
    sent.sort();
    assert_eq!(read, sent, "every message once");
}

async fn holds_back_while_full(h: &impl Harness, m: &Metrics) {
    // The channel's batches, and one more being handed on.
    let capacity = 1;
    let most = (capacity + 1) * BATCH;
    let pipeline = Pipeline {
        capacity,
        ..Pipeline::default()
    };
    let sent = payloads(4 * most);
    let mut input = start(&h.input(sent.len()), pipeline);
    h.ready().await;
    for payload in sent.chunks(1) {
        h.put(payload).await;
    }
    testkit::eventually("the pipeline full", DEADLINE, async || {
        (input.rx.len() == capacity).then_some(())
    })
    .await;
    let in_flight = input.in_flight(0);
    assert!(
        in_flight <= most,
        "{in_flight} events read into a full pipeline"
    );
    let mut read = Vec::new();
    while read.len() < sent.len() {
        let batch = input.batch().await;
        read.extend(payloads_of(&batch));
        answer(batch);
        let in_flight = input.in_flight(read.len());
        assert!(
            in_flight <= most,
            "{in_flight} events read into a full pipeline"
        );
    }
    each_once(read, &sent);
    assert!(input.stopped().await.is_empty(), "read more than was put");
    let received = m.counter(names::EVENTS_RECEIVED_TOTAL, &[]);
    assert_eq!(received, sent.len() as u64, "events counted received");
}

async fn stops_losing_nothing(h: &impl Harness, m: &Metrics) {
    let sent = payloads(6);
    let (first, last) = sent.split_at(4);
    let config = h.input(sent.len());
    let mut input = start(&config, Pipeline::default());
    h.ready().await;
    h.put(first).await;
    let mut events = input.take(first.len()).await;
    h.put(last).await;
    events.extend(input.take(last.len()).await);
    assert_eq!(payloads_of(&events), sent, "every message once, in order");
    // Two answered before shutdown, three while it drains, and the last never delivered.
    let lost = events.pop().expect("the last event");
    let late = events.split_off(2);
    answer(events);
    input.shutdown.cancel();
    answer(late);
    let lost_payload = lost.payload.clone();
    drop(lost);
    // Not delivered, it may be handed on again before the input stops (a JetStream redelivery).
    let left = payloads_of(&input.stopped().await);
    let again = left.iter().all(|p| *p == lost_payload);
    assert!(again, "read after shutdown: {left:?}");
    let received = m.counter(names::EVENTS_RECEIVED_TOTAL, &[]);
    let read = sent.len() + left.len();
    assert_eq!(received, read as u64, "events counted received");
    let acked = match h.acknowledged().await {
        Some(_) => {
            let acked = acknowledged_at_least(h, first.len()).await;
            assert!(acked < sent.len(), "acknowledged what was not delivered");
            Some(acked)
        }
        None => None,
    };
    if h.reads_again() {
        read_again(&config, &sent, acked).await;
    }
}

/// Starts the input again: it reads the payload the last run did not deliver and, where it
/// acknowledges, starts at the first payload not acknowledged.
async fn read_again(config: &str, sent: &[Bytes], acked: Option<usize>) {
    let mut again = start(config, Pipeline::default());
    let lost = sent.last().expect("payloads");
    let mut read = Vec::new();
    while !read.contains(lost) {
        let batch = again.batch().await;
        read.extend(payloads_of(&batch));
        answer(batch);
    }
    if let Some(acked) = acked {
        assert_eq!(
            read[0], sent[acked],
            "read again from what was not acknowledged"
        );
    }
    again.stopped().await;
}
