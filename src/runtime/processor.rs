//! The transform stage: batches fan out to worker threads and come back in input order.
//!
//! Transforms are CPU work, so they run on dedicated threads (each with its own compiled jq
//! programs), never on the I/O tasks. Batches are processed in parallel and their results put
//! back in the order they were read, so no partition or key is ever reordered.

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::sync::{mpsc, oneshot};

use crate::codec::Codec;
use crate::codec::payloads::Connected;
use crate::delivery::{ErrorKind, MustStop, Outcome};
use crate::event::Event;
use crate::observe::Telemetry;
use crate::observe::events::pipeline::EventsFiltered;
use crate::pipeline::PipelineConfig;
use crate::pipeline::worker::{Processed, Worker, WorkerError, pass_through};
use crate::policy::Failures;

/// Worker threads get a large stack: jq programs and deep documents recurse.
const WORKER_STACK: usize = crate::transform::nesting::STACK;

/// Why the pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A failed event stops the pipeline.
    #[error(transparent)]
    Stopped(#[from] MustStop),
    /// A worker thread could not start, or stopped answering.
    #[error("transform worker failed to start: {0}")]
    Worker(#[from] WorkerFault),
    /// The output stopped taking events.
    #[error("the output stopped")]
    OutputGone,
}

/// What went wrong with the worker threads. Fatal: a thread the system refuses, steps that can
/// no longer be built, or a worker that panicked (a bug).
#[derive(Debug, thiserror::Error)]
pub enum WorkerFault {
    /// The system would not start a thread.
    #[error("{0}")]
    Spawn(std::io::Error),
    /// A worker could not build its steps or payloads.
    #[error(transparent)]
    Build(#[from] WorkerError),
    /// A worker ended before saying whether it started.
    #[error("worker exited")]
    Exited,
    /// A worker ended while it held a batch.
    #[error("a worker thread died")]
    Died,
    /// Every worker ended while batches were still coming.
    #[error("workers are gone")]
    Gone,
}

impl ProcessError {
    /// A refusal when a failed event stopped the pipeline; otherwise fatal, but for a thread the
    /// system would not start for now.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProcessError::Stopped(e) => e.kind(),
            ProcessError::Worker(WorkerFault::Spawn(e)) => ErrorKind::of_io(e),
            ProcessError::Worker(_) | ProcessError::OutputGone => ErrorKind::Fatal,
        }
    }
}

struct Job {
    batch: Vec<Event>,
    reply: oneshot::Sender<Processed>,
}

/// The transform stage of one pipeline.
pub struct Processor {
    telemetry: Arc<Telemetry>,
    failures: Failures,
    jobs: Option<crossbeam_channel::Sender<Job>>,
    max_pending: usize,
    max_event_bytes: usize,
    /// Events per job at most when batches waiting are joined (`settings.batch_size`).
    batch_size: usize,
    /// What the input's payloads are: without transforms, JSON ones are still checked.
    codec: Codec,
}

impl Processor {
    /// Starts the worker threads (none when there are no transforms: events pass through
    /// without being decoded).
    pub fn start(
        telemetry: Arc<Telemetry>,
        config: &PipelineConfig,
        payloads: &Connected,
        converts: bool,
        failures: Failures,
    ) -> Result<Processor, ProcessError> {
        let workers = config.settings.worker_count();
        let pipeline = telemetry.pipeline().to_string();
        let mut processor = Processor {
            telemetry,
            failures,
            jobs: None,
            max_pending: workers * 2,
            max_event_bytes: config.settings.max_event_bytes.0,
            batch_size: config.settings.batch_size,
            codec: config.input.codec().plain(),
        };
        if config.transforms.is_empty() && !converts {
            return Ok(processor);
        }
        let (tx, rx) = crossbeam_channel::bounded::<Job>(workers * 2);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for i in 0..workers {
            let rx = rx.clone();
            let ready = ready_tx.clone();
            let config = config.clone();
            let payloads = payloads.clone();
            std::thread::Builder::new()
                .name(format!("{pipeline}-w{i}"))
                .stack_size(WORKER_STACK)
                .spawn(move || {
                    let mut worker = match Worker::with(&config, &payloads) {
                        Ok(worker) => {
                            let _ = ready.send(Ok(()));
                            worker
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    // Ends when the processor drops the sender.
                    while let Ok(job) = rx.recv() {
                        let _ = job.reply.send(worker.process(job.batch));
                    }
                })
                .map_err(WorkerFault::Spawn)?;
        }
        drop(ready_tx);
        for _ in 0..workers {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(WorkerFault::Build(e).into()),
                Err(_) => return Err(WorkerFault::Exited.into()),
            }
        }
        processor.jobs = Some(tx);
        Ok(processor)
    }

    /// Takes batches until the input closes, sends results on in order, and applies the error
    /// policy to failures.
    pub async fn run(
        self,
        mut input: mpsc::Receiver<Vec<Event>>,
        output: mpsc::Sender<Vec<Event>>,
    ) -> Result<(), ProcessError> {
        let batch_in = self.telemetry.batch_size_histogram("input");
        let batch_out = self.telemetry.batch_size_histogram("output");
        let Some(jobs) = &self.jobs else {
            while let Some(batch) = input.recv().await {
                batch_in.record(batch.len() as f64);
                let done = pass_through(
                    batch,
                    self.max_event_bytes,
                    self.failures.stops(),
                    self.codec,
                );
                if !done.outputs.is_empty() {
                    batch_out.record(done.outputs.len() as f64);
                }
                self.deliver(done, &output).await?;
            }
            return Ok(());
        };
        let mut pending = FuturesOrdered::new();
        let mut input_open = true;
        loop {
            tokio::select! {
                biased;
                Some(done) = pending.next(), if !pending.is_empty() => {
                    let done: Result<Processed, _> = done;
                    let done = done.map_err(|_| WorkerFault::Died)?;
                    if !done.outputs.is_empty() {
                        batch_out.record(done.outputs.len() as f64);
                    }
                    self.deliver(done, &output).await?;
                }
                batch = input.recv(), if input_open && pending.len() < self.max_pending => match batch {
                    Some(mut batch) => {
                        crate::delivery::join_waiting(&mut input, &mut batch, self.batch_size);
                        batch_in.record(batch.len() as f64);
                        let (reply, rx) = oneshot::channel();
                        // Never blocks: at most max_pending jobs are out and the queue holds that many.
                        jobs.send(Job { batch, reply }).map_err(|_| WorkerFault::Gone)?;
                        pending.push_back(rx);
                    }
                    None => input_open = false,
                },
                else => break,
            }
        }
        Ok(())
    }

    async fn deliver(
        &self,
        done: Processed,
        output: &mpsc::Sender<Vec<Event>>,
    ) -> Result<(), ProcessError> {
        self.telemetry.emit(EventsFiltered {
            count: done.filtered.len(),
        });
        for ack in done.filtered {
            ack.complete(Outcome::Delivered);
        }
        // Outputs first: under `errors: stop` they all come before the failure that stops the
        // pipeline, and are delivered before it stops.
        if !done.outputs.is_empty() {
            output
                .send(done.outputs)
                .await
                .map_err(|_| ProcessError::OutputGone)?;
        }
        self.failures.handle(done.failures).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::event::Position;
    use crate::policy::Route;

    /// Runs `n` inputs `{"n": i}` through the stage under `errors: stop`, in batches of
    /// `batch_size`, the output confirming everything it gets. The input at `fail_at` fails: it
    /// is `not json`, or with `oversize` a payload over `max_event_bytes`. Returns the `n` of
    /// every event that reached the output, and the outcome of each input read (the stage stops
    /// taking batches once stopped, so later ones are never read).
    async fn stop_at(
        transforms: &str,
        n: u64,
        fail_at: u64,
        batch_size: usize,
        oversize: bool,
    ) -> (Vec<u64>, Vec<Option<Outcome>>) {
        let text = format!(
            "input: {{stdin: {{}}}}\n{transforms}\noutput: {{stdout: {{}}}}\nerrors: stop\n\
             settings: {{batch_size: {batch_size}, workers: 2, max_event_bytes: 64}}\n"
        );
        let pipeline = crate::pipeline::load_str(Path::new("t.yaml"), &text, &|_: &str| None)
            .expect("valid pipeline");
        let (config, payloads) = (pipeline.config, pipeline.components.payloads);
        let telemetry = Telemetry::new("stop");
        let cx = crate::context::PipelineContext::new("stop", usize::MAX);
        let failures = Failures::new(telemetry.clone(), Route::Stop);
        let connected = payloads.offline().unwrap();
        let processor =
            Processor::start(telemetry.clone(), &config, &connected, false, failures).unwrap();
        let (acks, mut answers) = cx.ack_channel();
        let (in_tx, in_rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel::<Vec<Event>>(4);
        let source = tokio::spawn(async move {
            let inputs: Vec<u64> = (0..n).collect();
            for chunk in inputs.chunks(batch_size) {
                let batch = chunk
                    .iter()
                    .map(|&i| {
                        let payload = match i == fail_at {
                            true if oversize => {
                                format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(64))
                            }
                            true => "not json".to_string(),
                            false => format!("{{\"n\":{i}}}"),
                        };
                        let position = Position::Line {
                            source: "t".into(),
                            line: i + 1,
                        };
                        Event::new(bytes::Bytes::from(payload), position, acks.ack(0, i))
                    })
                    .collect();
                // The stage stops taking batches once it has stopped.
                if in_tx.send(batch).await.is_err() {
                    break;
                }
            }
        });
        let sink = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(batch) = out_rx.recv().await {
                for e in batch {
                    let v: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
                    seen.push(v["n"].as_u64().unwrap());
                    e.ack.complete(Outcome::Delivered);
                }
            }
            seen
        });
        let result = processor.run(in_rx, out_tx).await;
        assert!(
            matches!(result, Err(ProcessError::Stopped(_))),
            "the failure stops the stage: {result:?}"
        );
        source.await.unwrap();
        let seen = sink.await.unwrap();
        let mut outcomes = vec![None; n as usize];
        // Ends once every input read is finished and the source is gone.
        while let Some(msg) = answers.recv().await {
            assert_eq!(outcomes[msg.id as usize], None, "one answer per input");
            outcomes[msg.id as usize] = Some(msg.outcome);
        }
        (seen, outcomes)
    }

    /// Every input before the failing one is delivered (or filtered) and acknowledged, in order;
    /// the failing one and every one after it are not, whichever batch they are in.
    fn check(seen: &[u64], outcomes: &[Option<Outcome>], fail_at: u64, kept: impl Fn(u64) -> bool) {
        let expected: Vec<u64> = (0..fail_at).filter(|i| kept(*i)).collect();
        assert_eq!(
            seen, expected,
            "events before the failure, in order, and nothing after"
        );
        for (i, o) in outcomes.iter().enumerate() {
            let want = if (i as u64) < fail_at {
                Some(Outcome::Delivered)
            } else if i as u64 == fail_at {
                Some(Outcome::Failed)
            } else {
                // Never read, or read and left unfinished.
                o.and(Some(Outcome::Failed))
            };
            assert_eq!(*o, want, "input {i} (failure at {fail_at})");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn errors_stop_delivers_everything_before_the_failure_and_nothing_after() {
        let transforms = "transforms: [{filter: '.n % 7 != 3'}, {jq: '{n}'}]";
        let n = 1_500;
        for batch_size in [1, 500] {
            // Start, middle and end of the first batch, and of a later one.
            for fail_at in [0, 250, 499, 500, 749, 999, 1_499] {
                let (seen, outcomes) = stop_at(transforms, n, fail_at, batch_size, false).await;
                check(&seen, &outcomes, fail_at, |i| i % 7 != 3);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn errors_stop_without_transforms_stops_at_an_oversized_input() {
        for batch_size in [1, 500] {
            for fail_at in [0, 250, 499, 999] {
                let (seen, outcomes) = stop_at("", 1_000, fail_at, batch_size, true).await;
                check(&seen, &outcomes, fail_at, |_| true);
            }
        }
    }
}
