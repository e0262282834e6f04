//! The delivery loops, driven by outputs that fail as told.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::HumanDuration;
use crate::context::PipelineContext;
use crate::delivery::{AckMsg, Cause, Outcome};
use crate::event::Position;
use crate::observe::Telemetry;
use crate::observe::health::Health;

/// An output that refuses event 1, fails event 2 on its first two attempts, and delivers the
/// rest; it records what each attempt was given.
struct Flaky {
    attempts: std::sync::Arc<std::sync::Mutex<Vec<Vec<u64>>>>,
    failures_left: u32,
}

fn seq(held: &Held) -> u64 {
    match &*held.event.position {
        Position::Generated { seq } => *seq,
        other => panic!("{other:?}"),
    }
}

impl Protocol for Flaky {
    async fn attempt(
        &mut self,
        batch: Vec<Held>,
        attempt: &mut Attempt,
        _ctx: &SinkContext,
    ) -> Result<(), SinkError> {
        let seqs = batch.iter().map(seq).collect();
        self.attempts.lock().unwrap().push(seqs);
        for held in batch {
            match seq(&held) {
                1 => attempt.refused(Failed::at_output(
                    held.event,
                    "refused".to_string(),
                    Cause::Event,
                )),
                2 if self.failures_left > 0 => {
                    self.failures_left -= 1;
                    attempt.retry(held, "down".to_string());
                }
                _ => attempt.delivered(held.event),
            }
        }
        Ok(())
    }
}

/// An output's context, with `n` events (`seq` 0 to n-1) sent one per batch on a closed
/// channel; the pipeline's counters and the events' answers.
async fn sent(
    name: &str,
    n: u64,
) -> (
    Arc<Telemetry>,
    mpsc::UnboundedReceiver<AckMsg>,
    SinkContext,
    Batches,
) {
    let telemetry = Telemetry::new(name);
    let (acks, answers) = PipelineContext::new(name, usize::MAX).ack_channel();
    let retry = crate::sink::retry::RetryConfig {
        initial_backoff: HumanDuration(Duration::from_millis(1)),
        max_backoff: HumanDuration(Duration::from_millis(2)),
        ..Default::default()
    };
    let ctx = crate::sink::retry::test_context(telemetry.clone(), &Health::new(1), retry);
    let (tx, rx) = mpsc::channel(n as usize);
    for seq in 0..n {
        let event = Event::new(
            bytes::Bytes::from_static(b"{}"),
            Position::Generated { seq },
            acks.ack(0, seq),
        );
        tx.send(vec![event]).await.unwrap();
    }
    (telemetry, answers, ctx, rx)
}

/// The outcome of each event answered so far, by id.
fn outcomes(answers: &mut mpsc::UnboundedReceiver<AckMsg>) -> BTreeMap<u64, Outcome> {
    let mut outcomes = BTreeMap::new();
    while let Ok(answer) = answers.try_recv() {
        outcomes.insert(answer.id, answer.outcome);
    }
    outcomes
}

#[tokio::test]
async fn delivered_confirmed_refused_to_the_policy_and_passing_failures_retried() {
    let (telemetry, mut answers, ctx, rx) = sent("deliver", 4).await;
    let attempts = std::sync::Arc::default();
    let flaky = Flaky {
        attempts: std::sync::Arc::clone(&attempts),
        failures_left: 2,
    };
    run(flaky, rx, ctx).await.unwrap();

    // The four batches were joined into one write; only event 2 was attempted again.
    assert_eq!(
        *attempts.lock().unwrap(),
        [vec![0, 1, 2, 3], vec![2], vec![2]]
    );
    assert_eq!(
        outcomes(&mut answers),
        BTreeMap::from([
            (0, Outcome::Delivered),
            (1, Outcome::Rejected),
            (2, Outcome::Delivered),
            (3, Outcome::Delivered),
        ])
    );
    let totals = telemetry.summary();
    assert_eq!((totals.sent, totals.dropped), (3, 1));
}

/// An output that gathers events into pairs, each written by [`Flaky`], and writes what is left
/// when the channel closes.
struct Pairs {
    gathered: Vec<Held>,
    writer: Flaky,
}

impl Holding for Pairs {
    fn holds(&self) -> bool {
        !self.gathered.is_empty()
    }

    async fn take(&mut self, batch: Vec<Event>, delivery: &mut Delivery) -> Result<(), SinkError> {
        self.gathered.extend(batch.into_iter().map(Held::new));
        while self.gathered.len() >= 2 {
            let pair = self.gathered.drain(..2).collect();
            delivery.deliver(&mut self.writer, pair).await?;
        }
        Ok(())
    }

    /// Pairs are written as they fill: nothing else to wait for.
    async fn ready(&mut self) {
        std::future::pending().await
    }

    async fn work(&mut self, _delivery: &mut Delivery) -> Result<(), SinkError> {
        Ok(())
    }

    async fn close(&mut self, delivery: &mut Delivery) -> Result<(), SinkError> {
        let rest = std::mem::take(&mut self.gathered);
        delivery.deliver(&mut self.writer, rest).await
    }
}

#[tokio::test]
async fn a_holding_output_writes_what_it_gathers_and_what_is_left_at_the_end() {
    let (_, mut answers, ctx, rx) = sent("holding", 5).await;
    let attempts = std::sync::Arc::default();
    let pairs = Pairs {
        gathered: Vec::new(),
        writer: Flaky {
            attempts: std::sync::Arc::clone(&attempts),
            failures_left: 2,
        },
    };
    run_holding(pairs, rx, ctx).await.unwrap();

    // Written in pairs, event 2 again after its failures, and the last one alone at the end.
    assert_eq!(
        *attempts.lock().unwrap(),
        [vec![0, 1], vec![2, 3], vec![2], vec![2], vec![4]]
    );
    assert_eq!(
        outcomes(&mut answers),
        BTreeMap::from([
            (0, Outcome::Delivered),
            (1, Outcome::Rejected),
            (2, Outcome::Delivered),
            (3, Outcome::Delivered),
            (4, Outcome::Delivered),
        ])
    );
}
