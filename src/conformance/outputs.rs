//! The contract every output keeps, checked the same way for each: an event is confirmed only
//! once the remote holds it, every event arrives once and in order, failures that may pass are
//! retried, what the remote refuses follows the error policy, closing the channel drains, and the
//! metrics count what happened. An output joins with one line: `conformance!(name, harness)`,
//! its harness saying how to point the output at a place of its own and how to read it back.

use std::path::Path;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::broker_outputs::{JetStream, Kafka, Nats};
use super::harness::OutputHarness as Harness;
use super::local_outputs::{Counting, File, Http, Stdout};
use super::store_outputs::{LocalStore, S3};
use super::{DEADLINE, Metrics, PIPELINE, context, payloads, run};
use crate::context::PipelineContext;
use crate::delivery::{AckMsg, AckSender, Outcome};
use crate::event::{Event, Position};
use crate::observe::Telemetry;
use crate::sink::{Output, SinkError};

/// The checks of one output, as tests in a module of its name. `$harness` is made inside each
/// test's runtime (it may start servers and tasks); `own_process` runs each check in a process
/// of its own (see [`super::run`]).
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
                confirms_each_event_once_the_remote_holds_it_all_once_in_order => confirms_only_what_the_remote_holds,
                retries_failures_that_may_pass => retries,
                what_the_remote_refuses_follows_the_error_policy => refusals_follow_the_policy,
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

conformance!(counting, Counting::new());
conformance!(file, File::new());
conformance!(http, Http::new());
conformance!(stdout, Stdout::new(), own_process);
conformance!(kafka, Kafka::new());
conformance!(nats, Nats::new().await);
conformance!(jetstream, JetStream::new().await);
conformance!(object_store_s3, S3::new().await);
conformance!(object_store_local, LocalStore::new());

/// An output under test, running in a task.
struct Running {
    acks: AckSender,
    answers: mpsc::UnboundedReceiver<AckMsg>,
    tx: Option<mpsc::Sender<Vec<Event>>>,
    task: tokio::task::JoinHandle<Result<(), SinkError>>,
}

fn build(output: &str) -> Output {
    let text = format!("input:\n  stdin: {{}}\noutput:\n  {output}\nerrors: drop\n");
    let file = Path::new("conformance.yaml");
    match crate::pipeline::load_str(file, &text, &|_: &str| None) {
        Ok(p) => p.components.output,
        Err(e) => panic!("{text}: {e:?}"),
    }
}

fn start(output: &str) -> Running {
    let telemetry = Telemetry::new(PIPELINE);
    let cx = PipelineContext::new(PIPELINE, usize::MAX);
    let (acks, answers) = context::ack_channel(&cx);
    let ctx = context::sink(&telemetry, &cx);
    let (tx, rx) = mpsc::channel(4);
    let task = tokio::spawn(build(output).run(rx, ctx));
    Running {
        acks,
        answers,
        tx: Some(tx),
        task,
    }
}

impl Running {
    /// Sends `payloads` in batches of `per_batch`, the i-th with input id i.
    async fn send(&mut self, payloads: &[Bytes], per_batch: usize) {
        let tx = self.tx.as_ref().expect("sending after the channel closed");
        for (b, chunk) in payloads.chunks(per_batch).enumerate() {
            let batch = (chunk.iter().enumerate())
                .map(|(i, p)| {
                    let seq = (b * per_batch + i) as u64;
                    Event::new(
                        p.clone(),
                        Position::Generated { seq },
                        self.acks.ack(0, seq),
                    )
                })
                .collect();
            tx.send(batch)
                .await
                .expect("the output stopped taking events");
        }
    }

    async fn answer(&mut self) -> AckMsg {
        let answer = tokio::time::timeout(DEADLINE, self.answers.recv()).await;
        answer
            .expect("no confirmation within the deadline")
            .expect("acks closed")
    }

    /// Closes the channel and waits for the output to stop: it must have answered for every
    /// event by then.
    async fn close(mut self, events: usize) -> Vec<AckMsg> {
        self.tx = None;
        let stopped = tokio::time::timeout(DEADLINE, self.task).await;
        stopped
            .expect("not stopped within the deadline")
            .expect("the output panicked")
            .expect("the output failed");
        let answered: Vec<AckMsg> = std::iter::from_fn(|| self.answers.try_recv().ok()).collect();
        assert_eq!(answered.len(), events, "answered when the output stopped");
        answered
    }
}

async fn confirms_only_what_the_remote_holds(h: &impl Harness, m: &Metrics) {
    let sent = payloads(30);
    let mut out = start(&h.output());
    out.send(&sent, 10).await;
    let mut seen = Vec::new();
    // What the remote held when last read: it only grows, so a payload in it was held before
    // its confirmation was looked at.
    let mut held = h.delivered().await;
    for _ in 0..sent.len() {
        let answer = out.answer().await;
        assert_eq!(answer.outcome, Outcome::Delivered);
        let payload = &sent[answer.id as usize];
        if !held.contains(payload) {
            held = h.delivered().await;
        }
        assert!(
            held.contains(payload),
            "{payload:?} confirmed before the remote held it"
        );
        seen.push(answer.id);
    }
    out.close(0).await;
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..30).collect::<Vec<u64>>(),
        "each event confirmed once"
    );
    assert_eq!(h.delivered().await, sent, "every event once, in order");
    m.assert_outcomes(30, 0, 0);
}

async fn retries(h: &impl Harness, m: &Metrics) {
    let Some(flaky) = h.flaky(2).await else {
        return;
    };
    let sent = payloads(12);
    let mut out = start(&flaky);
    out.send(&sent, 4).await;
    let answered = out.close(sent.len()).await;
    assert!(answered.iter().all(|a| a.outcome == Outcome::Delivered));
    assert_eq!(h.delivered().await, sent, "every event once, in order");
    m.assert_outcomes(12, 0, 0);
}

async fn refusals_follow_the_policy(h: &impl Harness, m: &Metrics) {
    let Some((refusing, refused)) = h.refusing().await else {
        return;
    };
    let mut sent = payloads(2);
    sent.insert(1, refused);
    let mut out = start(&refusing);
    out.send(&sent, 3).await;
    let mut answered = out.close(3).await;
    answered.sort_by_key(|a| a.id);
    let outcomes: Vec<Outcome> = answered.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Delivered, Outcome::Rejected, Outcome::Delivered]
    );
    assert_eq!(h.delivered().await, [sent[0].clone(), sent[2].clone()]);
    m.assert_outcomes(2, 1, 1);
}
