//! The transform stage: batches fan out to worker threads and come back in input order.
//!
//! Transforms are CPU work, so they run on dedicated threads (each with its own compiled jq
//! programs), never on the I/O tasks. Batches are processed in parallel and their results put
//! back in the order they were read, so no partition or key is ever reordered.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::sync::{mpsc, oneshot};

use crate::codec::{self, Codec};
use crate::config::PipelineConfig;
use crate::event::Event;
use crate::observe::Telemetry;
use crate::runtime::ack::Outcome;
use crate::runtime::failures::{Failure, Failures, MustStop};
use crate::transform::{Chain, Record};

/// Worker threads get a large stack: jq programs and deep documents recurse.
const WORKER_STACK: usize = 64 * 1024 * 1024;

/// What came of a batch.
#[derive(Debug, Default)]
pub struct Processed {
    /// Events for the output, in order.
    pub outputs: Vec<Event>,
    /// Inputs that failed.
    pub failures: Vec<Failure>,
    /// Inputs that produced no output.
    pub filtered: usize,
}

/// Why the pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A failed event stops the pipeline.
    #[error(transparent)]
    Stopped(#[from] MustStop),
    /// A worker thread could not start.
    #[error("transform worker failed to start: {0}")]
    Worker(String),
    /// The output stopped taking events.
    #[error("the output stopped")]
    OutputGone,
}

struct Job {
    batch: Vec<Event>,
    reply: oneshot::Sender<Processed>,
}

/// The transform stage of one worker thread: decode, the chain, encode, with buffers reused from
/// event to event.
pub struct Worker {
    chain: Chain,
    codec: Codec,
    /// The only top-level fields of a JSON payload the chain reads, if it reads only some.
    projection: Option<Vec<jaq_json::Val>>,
    max_event_bytes: usize,
    records: Vec<Record>,
    encoded: Vec<(Record, Bytes)>,
    /// Reused for encoding, so each result gets one allocation of its exact size.
    scratch: Vec<u8>,
}

impl Worker {
    /// A worker for `config`'s transforms (jq programs compiled once per worker).
    pub fn new(config: &PipelineConfig) -> Result<Worker, String> {
        Ok(Worker {
            chain: Chain::build(&config.transforms, config.settings.max_fanout)?,
            codec: config.input.codec(),
            projection: match config.input.codec() {
                Codec::Json => crate::transform::projection(&config.transforms),
                Codec::Raw => None,
            },
            max_event_bytes: config.settings.max_event_bytes.0,
            records: Vec::new(),
            encoded: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// Transforms a batch: outputs in input order, failures, and the inputs that produced
    /// nothing (their acks completed).
    pub fn process(&mut self, batch: Vec<Event>) -> Processed {
        let mut done = Processed {
            outputs: Vec::with_capacity(batch.len()),
            ..Processed::default()
        };
        for event in batch {
            match self.one(&event) {
                Ok(()) if self.encoded.is_empty() => {
                    done.filtered += 1;
                    event.ack.complete(Outcome::Delivered);
                }
                Ok(()) => {
                    for (derived, (r, payload)) in self.encoded.drain(..).enumerate() {
                        done.outputs.push(Event {
                            payload,
                            key: r.key,
                            headers: r.headers,
                            timestamp: r.timestamp,
                            destination: r.destination,
                            partition: r.partition,
                            position: event.position.clone(),
                            derived: derived as u32,
                            ack: event.ack.fork(),
                        });
                    }
                    event.ack.complete(Outcome::Delivered);
                }
                Err((step, reason)) => done.failures.push(Failure {
                    event,
                    step,
                    reason,
                }),
            }
        }
        done
    }

    /// Runs one event through decode, the chain and encode; results land in `self.encoded`, all
    /// or nothing.
    fn one(&mut self, event: &Event) -> Result<(), (String, String)> {
        self.encoded.clear();
        check_size(event, self.max_event_bytes)?;
        let value = match &self.projection {
            Some(fields) => codec::decode_fields(&event.payload, fields),
            None => codec::decode(self.codec, &event.payload),
        }
        .map_err(|e| ("decode".to_string(), e.to_string()))?;
        let record = Record {
            value,
            key: event.key.clone(),
            headers: event.headers.clone(),
            timestamp: event.timestamp,
            destination: event.destination.clone(),
            partition: event.partition,
        };
        self.chain
            .run(record, &event.position, &mut self.records)
            .map_err(|e| (e.step, e.reason))?;
        for r in self.records.drain(..) {
            let buf = &mut self.scratch;
            buf.clear();
            if let Err(e) = codec::encode(self.codec, &r.value, buf) {
                self.encoded.clear();
                return Err(("encode".to_string(), e.to_string()));
            }
            if buf.len() > self.max_event_bytes {
                self.encoded.clear();
                return Err((
                    "encode".to_string(),
                    format!(
                        "a result of {} bytes is over max_event_bytes ({})",
                        buf.len(),
                        self.max_event_bytes
                    ),
                ));
            }
            self.encoded.push((r, Bytes::copy_from_slice(buf)));
        }
        Ok(())
    }
}

/// The step name of events refused for their size when read.
pub const LIMITS_STEP: &str = "limits";

/// Refuses an input over `max` bytes before any work is spent on it.
fn check_size(event: &Event, max: usize) -> Result<(), (String, String)> {
    if event.payload.len() > max {
        return Err((LIMITS_STEP.to_string(), oversize(event, max)));
    }
    Ok(())
}

fn oversize(event: &Event, max: usize) -> String {
    format!(
        "event of {} bytes is over max_event_bytes ({max})",
        event.payload.len()
    )
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
}

impl Processor {
    /// Starts the worker threads (none when there are no transforms: events pass through
    /// without being decoded).
    pub fn start(
        telemetry: Arc<Telemetry>,
        config: &PipelineConfig,
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
        };
        if config.transforms.is_empty() {
            return Ok(processor);
        }
        let (tx, rx) = crossbeam_channel::bounded::<Job>(workers * 2);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for i in 0..workers {
            let rx = rx.clone();
            let ready = ready_tx.clone();
            let config = config.clone();
            std::thread::Builder::new()
                .name(format!("{pipeline}-w{i}"))
                .stack_size(WORKER_STACK)
                .spawn(move || {
                    let mut worker = match Worker::new(&config) {
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
                .map_err(|e| ProcessError::Worker(e.to_string()))?;
        }
        drop(ready_tx);
        for _ in 0..workers {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(ProcessError::Worker(e)),
                Err(_) => return Err(ProcessError::Worker("worker exited".into())),
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
            while let Some(mut batch) = input.recv().await {
                batch_in.record(batch.len() as f64);
                if batch.iter().any(|e| e.payload.len() > self.max_event_bytes) {
                    let (fit, over): (Vec<_>, Vec<_>) = batch
                        .into_iter()
                        .partition(|e| e.payload.len() <= self.max_event_bytes);
                    batch = fit;
                    let failures = over
                        .into_iter()
                        .map(|event| Failure {
                            reason: oversize(&event, self.max_event_bytes),
                            step: LIMITS_STEP.to_string(),
                            event,
                        })
                        .collect();
                    self.failures.handle(failures).await?;
                }
                if batch.is_empty() {
                    continue;
                }
                batch_out.record(batch.len() as f64);
                output
                    .send(batch)
                    .await
                    .map_err(|_| ProcessError::OutputGone)?;
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
                    let done = done.map_err(|_| ProcessError::Worker("a worker thread died".into()))?;
                    if !done.outputs.is_empty() {
                        batch_out.record(done.outputs.len() as f64);
                    }
                    self.deliver(done, &output).await?;
                }
                batch = input.recv(), if input_open && pending.len() < self.max_pending => match batch {
                    Some(mut batch) => {
                        super::join_waiting(&mut input, &mut batch, self.batch_size);
                        batch_in.record(batch.len() as f64);
                        let (reply, rx) = oneshot::channel();
                        // Never blocks: at most max_pending jobs are out and the queue holds that many.
                        jobs.send(Job { batch, reply }).map_err(|_| ProcessError::Worker("workers are gone".into()))?;
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
        self.telemetry.filtered(done.filtered);
        self.failures.handle(done.failures).await?;
        if !done.outputs.is_empty() {
            output
                .send(done.outputs)
                .await
                .map_err(|_| ProcessError::OutputGone)?;
        }
        Ok(())
    }
}
