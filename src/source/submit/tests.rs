//! Tests of submissions: items handed on in batches, what became of each, and the handoff.

use super::*;
use crate::observe::Telemetry;
use tokio_util::sync::CancellationToken;

fn item(n: u32) -> Item {
    Item {
        payload: Bytes::from(n.to_string()),
        key: Some(Bytes::from_static(b"k")),
        headers: vec![("h".into(), Bytes::from_static(b"v"))],
        timestamp: Some(7),
        position: Position::Request {
            source: "test",
            request: Arc::from("r"),
            index: n,
        },
    }
}

fn submitter(capacity: usize, batch_size: usize) -> (Submitter, mpsc::Receiver<Vec<Event>>) {
    let cx = PipelineContext::new("submit", 1 << 20);
    let (tx, rx) = mpsc::channel(capacity);
    let (telemetry, budget) = (Telemetry::new("submit"), cx.budget().clone());
    let intake = Intake::new(tx, telemetry, budget, CancellationToken::new(), batch_size);
    let counted = cx.ack_counter();
    (Submitter::new(intake, cx, counted), rx)
}

/// Submits items `0..n`, waiting for what becomes of them.
async fn tracked(s: &Submitter, n: u32) -> Pending {
    let items = (0..n).map(item).collect();
    let pending = s.submit(items, true, Duration::from_secs(1)).await;
    pending
        .unwrap()
        .expect("a tracked submission is waited for")
}

#[tokio::test]
async fn each_item_is_answered_for_in_order_once_its_events_are_done() {
    let (s, mut rx) = submitter(4, 2);
    let pending = tracked(&s, 5).await;
    let mut events = Vec::new();
    while events.len() < 5 {
        let batch = rx.recv().await.unwrap();
        assert!(batch.len() <= 2, "batches are at most batch_size");
        events.extend(batch);
    }
    let seen: Vec<_> = events.iter().map(|e| e.payload.clone()).collect();
    assert_eq!(seen, ["0", "1", "2", "3", "4"]);
    assert_eq!(events[3].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(events[3].headers.len(), 1);
    assert_eq!(events[3].timestamp, Some(7));
    assert_eq!(events[3].position.to_string(), "test:r#3");
    let mut events = events.into_iter();
    // Item 1 fans out to two events, one dead-lettered; item 4 is lost.
    for (i, e) in events.by_ref().take(4).enumerate() {
        if i == 1 {
            e.ack.fork().complete(Outcome::Rejected);
        }
        e.ack.complete(Outcome::Delivered);
    }
    drop(events);
    let outcomes = pending.wait(std::future::pending()).await;
    assert_eq!(
        outcomes.0,
        [
            Some(Outcome::Delivered),
            Some(Outcome::Rejected),
            Some(Outcome::Delivered),
            Some(Outcome::Delivered),
            Some(Outcome::Failed)
        ]
    );
    assert!(!outcomes.all_done());
    assert_eq!(outcomes.count(Outcome::Delivered), 3);
}

#[tokio::test]
async fn a_deadline_leaves_unfinished_items_unanswered() {
    let (s, mut rx) = submitter(4, 10);
    let pending = tracked(&s, 2).await;
    let mut batch = rx.recv().await.unwrap();
    batch.remove(0).ack.complete(Outcome::Delivered);
    let outcomes = pending.wait(async {}).await;
    assert_eq!(outcomes.unfinished(), 1);
    assert_eq!(outcomes.0[0], Some(Outcome::Delivered));
}

fn context(telemetry: &Arc<Telemetry>) -> (SourceContext, mpsc::Receiver<Vec<Event>>) {
    let (tx, rx) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    let cx = PipelineContext::new(telemetry.pipeline(), 1 << 20);
    let budget = cx.budget().clone();
    let ctx = SourceContext {
        pipeline: cx.clone(),
        telemetry: telemetry.clone(),
        intake: Intake::new(tx, telemetry.clone(), budget, shutdown.clone(), 10),
        shutdown,
        max_event_bytes: 1 << 20,
        counted: cx.ack_counter(),
        drain_timeout: Duration::from_secs(1),
        link: None,
    };
    (ctx, rx)
}

#[tokio::test]
async fn a_handoff_hands_the_submitter_over_once_and_ends_at_shutdown() {
    let telemetry = Telemetry::new("handoff");
    let (handoff, submitter) = Handoff::new("lambda");
    assert_eq!(handoff.kind(), "lambda");
    let (ctx, mut rx) = context(&telemetry);
    let shutdown = ctx.shutdown.clone();
    let input = tokio::spawn(handoff.clone().run(ctx));
    let submitter = submitter.await.unwrap();
    submitter
        .submit(vec![item(0)], false, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(rx.recv().await.unwrap()[0].payload, "0");
    shutdown.cancel();
    input.await.unwrap().unwrap();
    assert!(submitter.stopping().is_cancelled());
    // The pipeline's input ends with the last Submitter.
    drop(submitter);
    assert!(rx.recv().await.is_none());

    let (ctx, _rx) = context(&telemetry);
    assert!(handoff.run(ctx).await.is_err(), "handed over once only");
}

/// Submits items 1 to 3, counted by `hold` already, waiting at most `wait`: its refusal.
async fn submit_held(s: &Submitter, hold: &mut Hold, wait: Duration) -> Option<Refusal> {
    let items = (1..4).map(item).collect::<Vec<_>>();
    s.submit_held(items, false, wait, Some(hold)).await.err()
}

#[tokio::test]
async fn a_held_submission_is_refused_at_once_by_a_full_pipeline_and_says_what_was_taken() {
    let (s, mut rx) = submitter(1, 2);
    let budget = s.budget().clone();
    // Each event counts its overhead and its copy of the item's header.
    let per = EVENT_OVERHEAD + copied_headers(&item(0).headers);
    assert_eq!(
        per,
        EVENT_OVERHEAD + std::mem::size_of::<(String, Bytes)>() + 1
    );
    s.submit(vec![item(0)], false, Duration::ZERO)
        .await
        .unwrap();
    // Full: refused after a moment, not after the whole wait.
    let mut hold = budget.hold(3 * per).unwrap();
    let refused = submit_held(&s, &mut hold, Duration::from_secs(3600)).await;
    assert_eq!(refused, Some(Refusal::new(Refused::Busy, 0)));
    assert_eq!(hold.bytes(), 3 * per, "nothing of it was made");
    rx.recv().await.unwrap();
    // The first batch goes; nobody takes it, so the second finds no room in time.
    let refused = submit_held(&s, &mut hold, Duration::from_millis(10)).await;
    assert_eq!(refused, Some(Refusal::new(Refused::Busy, 2)));
    assert_eq!(hold.bytes(), per, "the events made count for themselves");
    let batch = rx.recv().await.unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(budget.in_flight().0, 3 * per);
    drop(batch);
    drop(hold);
    assert_eq!(budget.in_flight().0, 0);
}

#[tokio::test]
async fn a_full_pipeline_is_busy_and_a_closed_one_is_closed() {
    let (s, rx) = submitter(1, 10);
    assert!(
        s.submit(vec![item(0)], false, Duration::ZERO)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.submit(vec![item(1)], false, Duration::from_millis(1))
            .await
            .err(),
        Some(Refused::Busy)
    );
    drop(rx);
    assert_eq!(
        s.submit(vec![item(2)], false, Duration::from_millis(1))
            .await
            .err(),
        Some(Refused::Closed)
    );
}
