//! What happens to one batch of events between the input and the output: decode, the transform
//! chain, encode, and the size limits. The runtime runs it on worker threads; `sluice test` runs
//! it on the events a test gives.

use bytes::Bytes;

use super::{ErrorPolicy, PipelineConfig};
use crate::codec::Codec;
use crate::codec::format::{Decode, Encode};
use crate::codec::json::JsonError;
use crate::codec::payloads::{Connected, Decoder, Encoder};
use crate::delivery::{Ack, Outcome};
use crate::delivery::{ErrorKind, Failure, Step};
use crate::event::{Arena, Event, Failed};
use crate::observe::events::emit;
use crate::observe::events::pipeline::InputsLeftUnfinished;
use crate::transform::{Chain, ChainError, Record};

/// Why a worker could not be made. Checking the file rules these out, unless a file it names
/// changed since.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A step of the chain could not be built.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The payloads' schemas need a Schema Registry, which a worker made offline has not.
    #[error("{0}")]
    Payloads(String),
}

/// What came of a batch.
#[derive(Debug, Default)]
pub struct Processed {
    /// Events for the output, in order.
    pub outputs: Vec<Event>,
    /// Inputs that failed.
    pub failures: Vec<Failed>,
    /// Inputs that produced no output. Their acks are completed by the stage when the batch's
    /// turn comes, not by the worker: a batch after one that stops the pipeline must leave its
    /// inputs unacknowledged.
    pub filtered: Vec<Ack>,
}

/// The transform stage of one worker thread: decode, the chain, encode, with buffers reused from
/// event to event.
pub struct Worker {
    chain: Chain,
    decoder: Decoder,
    encoder: Encoder,
    max_event_bytes: usize,
    /// `errors: stop`: the first failure ends the batch; the inputs after it are left
    /// unfinished, so nothing after the failure is delivered or acknowledged.
    stop_at_failure: bool,
    records: Vec<Record>,
    encoded: Vec<(Record, Bytes)>,
    /// Reused for encoding.
    scratch: Vec<u8>,
    /// Where the results' payloads are copied to.
    arena: Arena,
}

impl Worker {
    /// A worker for `config`'s transforms (jq programs compiled once per worker), for a
    /// pipeline whose payloads need no Schema Registry (`sluice test`, benchmarks).
    pub fn new(
        config: &PipelineConfig,
        payloads: &crate::codec::payloads::Payloads,
    ) -> Result<Worker, WorkerError> {
        let connected = payloads
            .offline()
            .map_err(|e| WorkerError::Payloads(e.to_string()))?;
        Worker::with(config, &connected)
    }

    /// A worker for `config`'s transforms, decoding and encoding with `payloads`.
    pub fn with(config: &PipelineConfig, payloads: &Connected) -> Result<Worker, WorkerError> {
        Ok(Worker {
            chain: Chain::build(&config.transforms, config.settings.max_fanout)?,
            decoder: payloads.decoder(crate::transform::projection(&config.transforms)),
            encoder: payloads.encoder(),
            max_event_bytes: config.settings.max_event_bytes.0,
            stop_at_failure: matches!(config.errors, ErrorPolicy::Stop),
            records: Vec::new(),
            encoded: Vec::new(),
            scratch: Vec::new(),
            arena: Arena::default(),
        })
    }

    /// Transforms a batch: outputs in input order, failures, and the inputs that produced
    /// nothing. Under `errors: stop` the batch ends at its first failure: the inputs after it
    /// are dropped unfinished (they count as failed and are never acknowledged).
    pub fn process(&mut self, batch: Vec<Event>) -> Processed {
        let mut done = Processed {
            outputs: Vec::with_capacity(batch.len()),
            ..Processed::default()
        };
        for event in batch {
            if self.stop_at_failure && !done.failures.is_empty() {
                break;
            }
            match self.one(&event) {
                Err(Undone::Stopped(reason)) => {
                    // Shutdown while the registry was unavailable: this input and the rest of
                    // the batch are left unfinished, to be read again.
                    emit(InputsLeftUnfinished { reason: &reason });
                    break;
                }
                Err(Undone::Failed(failure)) => done.failures.push(Failed { event, failure }),
                Ok(()) if self.encoded.is_empty() => done.filtered.push(event.ack),
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
                            oversize: None,
                            derived: derived as u32,
                            ack: event.ack.fork(),
                        });
                    }
                    event.ack.complete(Outcome::Delivered);
                }
            }
        }
        done
    }

    /// Runs one event through decode, the chain and encode; results land in `self.encoded`, all
    /// or nothing.
    fn one(&mut self, event: &Event) -> Result<(), Undone> {
        self.encoded.clear();
        check_size(event, self.max_event_bytes)?;
        let value = self
            .decoder
            .decode(&event.payload)
            .map_err(|e| match e.kind() {
                ErrorKind::Retriable => Undone::Stopped(e.to_string()),
                ErrorKind::Refused(_) | ErrorKind::Fatal => {
                    Undone::Failed(Failure::of_event(Step::Decode, e.to_string()))
                }
            })?;
        let record = Record {
            value,
            key: event.key.clone(),
            headers: event.headers.clone(),
            timestamp: event.timestamp,
            destination: event.destination.clone(),
            partition: event.partition,
        };
        self.chain.run(record, &event.position, &mut self.records)?;
        for r in self.records.drain(..) {
            let buf = &mut self.scratch;
            buf.clear();
            if let Err(reason) = self.encoder.encode(&r.value, buf) {
                self.encoded.clear();
                return Err(Failure::of_event(Step::Encode, reason.to_string()).into());
            }
            if buf.len() > self.max_event_bytes {
                self.encoded.clear();
                return Err(Undone::Failed(Failure::of_event(
                    Step::Encode,
                    format!(
                        "a result of {} bytes is over max_event_bytes ({})",
                        buf.len(),
                        self.max_event_bytes
                    ),
                )));
            }
            let payload = self.arena.copy(buf);
            self.encoded.push((r, payload));
        }
        Ok(())
    }
}

/// Why an input was not finished by [`Worker::one`].
enum Undone {
    /// It failed: it follows the error policy.
    Failed(Failure),
    /// Shutdown came while its schema could not be fetched: it is left unacknowledged.
    Stopped(String),
}

impl From<Failure> for Undone {
    fn from(f: Failure) -> Self {
        Undone::Failed(f)
    }
}

/// Whether an input is over `max` bytes (or was cut at the input for being so).
fn too_large(event: &Event, max: usize) -> bool {
    event.payload.len() > max || event.oversize.is_some()
}

/// Refuses an input over `max` bytes before any work is spent on it.
fn check_size(event: &Event, max: usize) -> Result<(), Failure> {
    if too_large(event, max) {
        return Err(Failure::of_event(Step::Limits, oversize(event, max)));
    }
    Ok(())
}

/// The stage without transforms: events pass unchanged, but those over `max_event_bytes` fail
/// at `limits`, and under `codec: json` those that are not JSON fail at `decode`, as they would
/// with transforms (checked without building their values; `raw` payloads are not looked at).
/// Under `errors: stop` the batch ends at the first failure, as in [`Worker::process`].
pub fn pass_through(
    batch: Vec<Event>,
    max: usize,
    stop_at_failure: bool,
    codec: Codec,
) -> Processed {
    let check = |event: &Event| {
        check_size(event, max)?;
        match codec {
            Codec::Json => check_json(event),
            Codec::Raw => Ok(()),
        }
    };
    let Some(first) = batch.iter().position(|e| check(e).is_err()) else {
        return Processed {
            outputs: batch,
            ..Processed::default()
        };
    };
    let mut done = Processed::default();
    let mut events = batch.into_iter();
    done.outputs.extend(events.by_ref().take(first));
    for event in events {
        if stop_at_failure && !done.failures.is_empty() {
            break;
        }
        match check(&event) {
            Ok(()) => done.outputs.push(event),
            Err(failure) => done.failures.push(Failed { event, failure }),
        }
    }
    done
}

/// Refuses a payload that is not one JSON document, with the reason decoding it would give.
fn check_json(event: &Event) -> Result<(), Failure> {
    match serde_json::from_slice::<serde::de::IgnoredAny>(&event.payload) {
        Ok(_) => Ok(()),
        Err(e) => Err(Failure::of_event(
            Step::Decode,
            JsonError::MalformedJson(e.to_string()).to_string(),
        )),
    }
}

fn oversize(event: &Event, max: usize) -> String {
    match event.oversize {
        Some(size) => format!(
            "event of {size} bytes is over max_event_bytes ({max}); only its first {} bytes were kept",
            event.payload.len()
        ),
        None => format!(
            "event of {} bytes is over max_event_bytes ({max})",
            event.payload.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Position;

    fn batch(payloads: &[&'static str]) -> Vec<Event> {
        payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let position = Position::Generated { seq: i as u64 };
                Event::new(
                    Bytes::from_static(p.as_bytes()),
                    position,
                    crate::delivery::Ack::untracked(),
                )
            })
            .collect()
    }

    #[test]
    fn without_transforms_the_input_codec_decides_what_is_a_bad_event() {
        let payloads = ["{\"a\":1}", "not json", "[1, 2]", "{} {}", "7"];
        let done = pass_through(batch(&payloads), 100, false, Codec::Json);
        let out: Vec<_> = done.outputs.iter().map(|e| e.payload.clone()).collect();
        assert_eq!(out, ["{\"a\":1}", "[1, 2]", "7"]);
        let failed: Vec<_> = done
            .failures
            .iter()
            .map(|f| f.event.payload.clone())
            .collect();
        assert_eq!(failed, ["not json", "{} {}"]);
        let failure = &done.failures[0].failure;
        assert_eq!(failure.step, Step::Decode);
        assert!(
            failure.reason.contains("malformed JSON"),
            "{}",
            failure.reason
        );

        // Under `errors: stop` the batch ends at the first bad event.
        let done = pass_through(batch(&payloads), 100, true, Codec::Json);
        assert_eq!((done.outputs.len(), done.failures.len()), (1, 1));

        // Raw payloads are not looked at; only their size is.
        let done = pass_through(batch(&payloads), 100, false, Codec::Raw);
        assert_eq!((done.outputs.len(), done.failures.len()), (5, 0));
        let done = pass_through(batch(&payloads), 7, false, Codec::Raw);
        assert_eq!((done.outputs.len(), done.failures.len()), (4, 1));
    }
}
