//! `sluice eval`: what every step of a pipeline makes of each event given, and what the output
//! (or the error policy) would receive. Nothing is connected.

use std::fmt::Write as _;

use bytes::Bytes;

use crate::codec::format::Decode;
use crate::codec::payloads::Decoder;
use crate::codec::{self, Codec};
use crate::context::PipelineContext;
use crate::event::{Event, Position};
use crate::pipeline::worker::{Worker, WorkerError, pass_through};
use crate::pipeline::{ErrorPolicy, Pipeline};
use crate::transform::{Chain, ChainError, Record};

/// Why the events could not be evaluated: the pipeline's steps could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A step could not be built.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The transform stage could not be made.
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

/// The step-by-step account of each payload in `payloads` (read as the pipeline's input would
/// read them: its codec decodes them), numbered from 1.
pub fn eval(pipeline: &Pipeline, payloads: &[String]) -> Result<String, EvalError> {
    let config = &pipeline.config;
    let chain = Chain::build(&config.transforms, config.settings.max_fanout)?;
    let forms = &pipeline.components.payloads;
    let mut worker = match config.transforms.is_empty() && !forms.converts() {
        true => None,
        false => Some(Worker::new(config, forms)?),
    };
    let acks = PipelineContext::new(&pipeline.name, usize::MAX).ack_counter();
    // Avro and Protobuf results are shown as the JSON they hold.
    let mut shown = forms.offline().ok().and_then(|c| c.output_decoder());
    let output = &pipeline.components.output;
    let codec = config.input.codec().plain();
    let mut out = String::new();
    for (i, payload) in payloads.iter().enumerate() {
        let n = i + 1;
        let _ = writeln!(out, "event {n}: {payload}");
        let position = Position::Line {
            source: "eval".into(),
            line: n as u64,
        };
        steps(&chain, codec, payload, &position, &mut out);
        // What comes out is what the pipeline's own transform stage makes of it.
        let event = Event::new(
            Bytes::from(payload.clone()),
            position,
            acks.ack(0, n as u64),
        );
        let stops = matches!(config.errors, ErrorPolicy::Stop);
        let done = match &mut worker {
            Some(worker) => worker.process(vec![event]),
            None => pass_through(vec![event], config.settings.max_event_bytes.0, stops, codec),
        };
        if !done.filtered.is_empty() {
            let _ = writeln!(out, "  => filtered: nothing reaches the output");
        }
        let policy = match &config.errors {
            ErrorPolicy::Drop => "dropped (errors: drop)".to_string(),
            ErrorPolicy::Stop => "the pipeline stops (errors: stop)".to_string(),
            ErrorPolicy::Output(o) => format!("dead letter to the {} output", o.kind()),
        };
        let kind = config.output.kind();
        for e in &done.outputs {
            match output.rejects(&e.payload) {
                Some(reason) => {
                    let _ = writeln!(out, "  => refused by the {kind} output: {reason}; {policy}");
                }
                None => {
                    let _ = writeln!(out, "  => {kind} output: {}", describe(e, &mut shown));
                }
            }
        }
        for failed in &done.failures {
            let f = &failed.failure;
            let _ = writeln!(out, "  => failed at {}: {}; {policy}", f.step, f.reason);
        }
    }
    Ok(out)
}

/// Each step's results for one payload, or where it failed.
fn steps(chain: &Chain, codec: Codec, payload: &str, position: &Position, out: &mut String) {
    let payload = Bytes::from(payload.to_string());
    let value = match codec::decode(codec, &payload) {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(out, "  decode: failed: {e}");
            return;
        }
    };
    let record = Record {
        value,
        key: None,
        headers: Vec::new(),
        timestamp: None,
        destination: None,
        partition: None,
    };
    let mut results = Vec::new();
    let shown = chain.run_observed(record, position, &mut results, |step, made| match made {
        [] => {
            let _ = writeln!(out, "  {step}: filtered out");
        }
        [one] => {
            let _ = writeln!(out, "  {step}: {}", record_text(one));
        }
        many => {
            let _ = writeln!(out, "  {step}: {} events", many.len());
            for r in many {
                let _ = writeln!(out, "    {}", record_text(r));
            }
        }
    });
    if let Err(failure) = shown {
        let _ = writeln!(out, "  {}: failed: {}", failure.step, failure.reason);
    }
}

/// A record as shown: its value, and the routing fields and headers set.
fn record_text(r: &Record) -> String {
    let mut buf = Vec::new();
    let value = match codec::write_json(&r.value, &mut buf, 0) {
        Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
        Err(e) => format!("(cannot be written as JSON: {e})"),
    };
    let mut text = value;
    metadata(
        &mut text,
        r.key.as_deref(),
        &r.headers,
        r.destination.as_deref(),
        r.partition,
        r.timestamp,
    );
    text
}

/// An event the output would receive, as shown: an Avro or Protobuf body as the JSON it holds,
/// with its format and size.
fn describe(e: &Event, shown: &mut Option<(&'static str, Decoder)>) -> String {
    let mut text = match shown {
        Some((format, decoder)) => {
            let mut buf = Vec::new();
            let json = decoder
                .decode(&e.payload)
                .map_err(|e| e.to_string())
                .and_then(|v| codec::write_json(&v, &mut buf, 0).map_err(|e| e.to_string()));
            match json {
                Ok(()) => format!(
                    "{} ({format}, {} bytes)",
                    String::from_utf8_lossy(&buf),
                    e.payload.len()
                ),
                Err(reason) => format!(
                    "({format}, {} bytes; not readable: {reason})",
                    e.payload.len()
                ),
            }
        }
        None => String::from_utf8_lossy(&e.payload).into_owned(),
    };
    metadata(
        &mut text,
        e.key.as_deref(),
        &e.headers,
        e.destination.as_deref(),
        e.partition,
        e.timestamp,
    );
    text
}

fn metadata(
    text: &mut String,
    key: Option<&[u8]>,
    headers: &crate::event::Headers,
    destination: Option<&str>,
    partition: Option<i32>,
    timestamp: Option<i64>,
) {
    if let Some(k) = key {
        let _ = write!(text, " key={:?}", String::from_utf8_lossy(k));
    }
    for (name, value) in headers {
        let _ = write!(text, " header {name}={:?}", String::from_utf8_lossy(value));
    }
    if let Some(d) = destination {
        let _ = write!(text, " destination={d:?}");
    }
    if let Some(p) = partition {
        let _ = write!(text, " partition={p}");
    }
    if let Some(t) = timestamp {
        let _ = write!(text, " timestamp={t}");
    }
}
