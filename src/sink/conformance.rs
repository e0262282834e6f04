//! The contract every output keeps, checked the same way for each: an event is confirmed only
//! once the remote holds it, every event arrives once and in order, failures that may pass are
//! retried, what the remote refuses follows the error policy, and closing the channel drains.
//! An output joins with one line: `conformance!(name, harness)`, its harness saying how to point
//! the output at a place of its own and how to read that place back.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Output, SinkContext};
use crate::config::HumanDuration;
use crate::delivery::{AckMsg, AckSender, Outcome};
use crate::event::{Event, Position};
use crate::observe::Telemetry;
use crate::observe::health::Health;
use crate::policy::{Failures, Route};

/// How the checks drive one output.
pub trait Harness {
    /// The output's configuration (the YAML under `output:`), writing to a place of its own.
    fn output(&self) -> String;
    /// The payloads the place holds, in the order they arrived.
    async fn delivered(&self) -> Vec<Bytes>;
    /// The output configured so that its first `attempts` attempts fail for a passing reason;
    /// None for an output whose every failure is final.
    fn flaky(&self, _attempts: u32) -> Option<String> {
        None
    }
    /// The output configured to refuse a payload for what it is, and that payload; None for
    /// an output that refuses nothing.
    fn refusing(&self) -> Option<(String, Bytes)> {
        None
    }
}

/// The three checks of one output, as tests in a module of its name.
macro_rules! conformance {
    ($name:ident, $harness:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn confirms_each_event_once_the_remote_holds_it_all_once_in_order() {
                confirms_only_what_the_remote_holds(&$harness).await;
            }

            #[tokio::test]
            async fn retries_failures_that_may_pass() {
                retries(&$harness).await;
            }

            #[tokio::test]
            async fn what_the_remote_refuses_follows_the_error_policy() {
                refusals_follow_the_policy(&$harness).await;
            }
        }
    };
}

conformance!(counting, Counting::new());
conformance!(file, File::new());
conformance!(http, Http::new());

/// How long any one wait of a check may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// An output under test, running in a task.
struct Running {
    telemetry: Arc<Telemetry>,
    acks: AckSender,
    answers: mpsc::UnboundedReceiver<AckMsg>,
    tx: Option<mpsc::Sender<Vec<Event>>>,
    task: tokio::task::JoinHandle<Result<(), super::SinkError>>,
}

fn build(output: &str) -> Output {
    let text = format!("input:\n  stdin: {{}}\noutput:\n  {output}\nerrors: drop\n");
    match crate::pipeline::load_str(Path::new("conformance.yaml"), &text, &|_: &str| None) {
        Ok(p) => p.components.output,
        Err(e) => panic!("{text}: {e:?}"),
    }
}

fn start(output: &str) -> Running {
    let telemetry = Telemetry::new("conformance");
    let cx = crate::context::PipelineContext::new("conformance", usize::MAX);
    let (acks, answers) = cx.ack_channel();
    let retry = super::retry::RetryConfig {
        initial_backoff: HumanDuration(Duration::from_millis(1)),
        max_backoff: HumanDuration(Duration::from_millis(2)),
        ..Default::default()
    };
    let ctx = SinkContext {
        pipeline: cx,
        telemetry: telemetry.clone(),
        dead_letter: false,
        failures: Failures::new(telemetry.clone(), Route::Drop),
        link: None,
        health: Health::new(1),
        retry,
        max_event_bytes: 1 << 20,
    };
    let (tx, rx) = mpsc::channel(4);
    let task = tokio::spawn(build(output).run(rx, ctx));
    Running {
        telemetry,
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
    async fn close(mut self, events: usize) -> (Arc<Telemetry>, Vec<AckMsg>) {
        self.tx = None;
        let stopped = tokio::time::timeout(DEADLINE, self.task).await;
        stopped
            .expect("not stopped within the deadline")
            .unwrap()
            .unwrap();
        let answered: Vec<AckMsg> = std::iter::from_fn(|| self.answers.try_recv().ok()).collect();
        assert_eq!(answered.len(), events, "answered when the output stopped");
        (self.telemetry, answered)
    }
}

fn payloads(n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(format!("{{\"n\":{i}}}")))
        .collect()
}

async fn confirms_only_what_the_remote_holds(h: &impl Harness) {
    let sent = payloads(30);
    let mut out = start(&h.output());
    out.send(&sent, 10).await;
    let mut seen = Vec::new();
    for _ in 0..sent.len() {
        let answer = out.answer().await;
        assert_eq!(answer.outcome, Outcome::Delivered);
        let payload = &sent[answer.id as usize];
        assert!(
            h.delivered().await.contains(payload),
            "{payload:?} confirmed before the remote held it"
        );
        seen.push(answer.id);
    }
    let (telemetry, _) = out.close(0).await;
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..30).collect::<Vec<u64>>(),
        "each event confirmed once"
    );
    assert_eq!(h.delivered().await, sent, "every event once, in order");
    assert_eq!(telemetry.summary().sent, 30);
}

async fn retries(h: &impl Harness) {
    let Some(flaky) = h.flaky(2) else {
        return;
    };
    let sent = payloads(12);
    let mut out = start(&flaky);
    out.send(&sent, 4).await;
    let (telemetry, answered) = out.close(sent.len()).await;
    assert!(answered.iter().all(|a| a.outcome == Outcome::Delivered));
    assert_eq!(h.delivered().await, sent, "every event once, in order");
    let totals = telemetry.summary();
    assert_eq!((totals.sent, totals.failed, totals.dropped), (12, 0, 0));
}

async fn refusals_follow_the_policy(h: &impl Harness) {
    let Some((refusing, refused)) = h.refusing() else {
        return;
    };
    let mut sent = payloads(2);
    sent.insert(1, refused);
    let mut out = start(&refusing);
    out.send(&sent, 3).await;
    let (telemetry, mut answered) = out.close(3).await;
    answered.sort_by_key(|a| a.id);
    let outcomes: Vec<Outcome> = answered.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Delivered, Outcome::Rejected, Outcome::Delivered]
    );
    assert_eq!(h.delivered().await, [sent[0].clone(), sent[2].clone()]);
    let totals = telemetry.summary();
    assert_eq!((totals.sent, totals.failed, totals.dropped), (2, 1, 1));
}

/// The `counting` output.
struct Counting(String);

impl Counting {
    fn new() -> Counting {
        Counting(format!("tally-{}", nuid::next()))
    }
}

impl Harness for Counting {
    fn output(&self) -> String {
        format!("counting: {{tally: {}}}", self.0)
    }

    async fn delivered(&self) -> Vec<Bytes> {
        super::counting::delivered(&self.0)
    }

    fn flaky(&self, attempts: u32) -> Option<String> {
        Some(format!(
            "counting: {{tally: {}, fail_first: {attempts}}}",
            self.0
        ))
    }

    fn refusing(&self) -> Option<(String, Bytes)> {
        let output = format!("counting: {{tally: {}, refuse: 'no'}}", self.0);
        Some((output, Bytes::from_static(b"no")))
    }
}

/// The `file` output, writing lines.
struct File(tempfile::TempDir);

impl File {
    fn new() -> File {
        File(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> std::path::PathBuf {
        self.0.path().join("out.ndjson")
    }
}

impl Harness for File {
    fn output(&self) -> String {
        format!("file: {{path: {:?}}}", self.path())
    }

    async fn delivered(&self) -> Vec<Bytes> {
        let text = std::fs::read(self.path()).unwrap_or_default();
        (text.split(|b| *b == b'\n'))
            .filter(|l| !l.is_empty())
            .map(Bytes::copy_from_slice)
            .collect()
    }
}

/// The `http` output, sending to an endpoint that keeps what it takes, answers 503 while told to
/// fail and 400 to the payload `no`.
struct Http {
    port: u16,
    endpoint: Arc<Endpoint>,
}

#[derive(Default)]
struct Endpoint {
    taken: std::sync::Mutex<Vec<Bytes>>,
    failures_left: std::sync::atomic::AtomicU32,
}

impl Http {
    fn new() -> Http {
        use axum::extract::State;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let endpoint = Arc::new(Endpoint::default());
        let answer = |State(e): State<Arc<Endpoint>>, uri: axum::http::Uri, body: Bytes| async move {
            use std::sync::atomic::Ordering::SeqCst;
            let failing = e
                .failures_left
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
            if failing.is_ok() {
                return axum::http::StatusCode::SERVICE_UNAVAILABLE;
            }
            if &body[..] == b"no" {
                return axum::http::StatusCode::BAD_REQUEST;
            }
            let mut taken = e.taken.lock().unwrap();
            match uri.path() {
                "/single" => taken.push(body),
                _ => (body.split(|b| *b == b'\n'))
                    .filter(|l| !l.is_empty())
                    .for_each(|l| taken.push(Bytes::copy_from_slice(l))),
            }
            axum::http::StatusCode::OK
        };
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(endpoint.clone());
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Http { port, endpoint }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Harness for Http {
    fn output(&self) -> String {
        format!("http: {{url: '{}', encoding: ndjson}}", self.url("ndjson"))
    }

    async fn delivered(&self) -> Vec<Bytes> {
        self.endpoint.taken.lock().unwrap().clone()
    }

    fn flaky(&self, attempts: u32) -> Option<String> {
        (self.endpoint.failures_left).store(attempts, std::sync::atomic::Ordering::SeqCst);
        Some(self.output())
    }

    fn refusing(&self) -> Option<(String, Bytes)> {
        let output = format!("http: {{url: '{}', encoding: single}}", self.url("single"));
        Some((output, Bytes::from_static(b"no")))
    }
}
