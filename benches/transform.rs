//! Microbenchmarks of the per-event transform path the pipeline's worker threads run: decode the
//! payload, run the transform chain, encode each result (`runtime::processor::Worker::one`).
//!
//! `cargo bench --bench transform` times each benchmark over a batch of 500 events with
//! criterion. Run without `--bench` (as `cargo test --all-targets` does) each benchmark runs once
//! as a check, untimed.

mod common;

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice::codec::{self, Codec};
use sluice::config::load_str;
use sluice::event::{Event, Position};
use sluice::runtime::ack::Ack;
use sluice::transform::{Chain, Record};

/// Events per batch: the default `settings.batch_size`.
const BATCH: usize = 500;

/// The identity program: decode and encode only.
const IDENTITY: &str = ".";
/// W2 of the issue: half the events pass, reshaped.
const W2: &str = "select(.status >= 500) | {ts, service, msg, latency_ms: (.latency * 1000)}";
/// Every item of an event becomes an event.
const FANOUT: &str = ".items[] | {id: .}";
/// Items in each event of the fan-out benchmark.
const ITEMS: u64 = 10;

/// An order with `ITEMS` item ids, for the fan-out benchmark.
fn order(i: u64) -> Vec<u8> {
    let items: Vec<String> = (0..ITEMS)
        .map(|k| format!("\"sku-{:06}\"", (i * ITEMS + k) % 1_000_000))
        .collect();
    format!(
        "{{\"order\":{i},\"ts\":{},\"customer\":\"customer-{}\",\"items\":[{}]}}",
        1_700_000_000_000u64 + i,
        i % 5000,
        items.join(",")
    )
    .into_bytes()
}

/// A batch of input events as a Kafka source reads them: payload, key, offset.
fn batch(payload: impl Fn(u64) -> Vec<u8>) -> Vec<Event> {
    let topic: Arc<str> = Arc::from("input");
    (0..BATCH as u64)
        .map(|i| {
            let position = Position::Kafka {
                topic: topic.clone(),
                partition: (i % 32) as i32,
                offset: i as i64,
            };
            let mut e = Event::new(Bytes::from(payload(i)), position, Ack::untracked());
            e.key = Some(Bytes::from(format!("k{}", i % 64)));
            e.timestamp = Some(1_700_000_000_000 + i as i64);
            e
        })
        .collect()
}

/// A pipeline's transform stage as one worker thread holds it, with its reused buffers.
struct Stage {
    codec: Codec,
    chain: Chain,
    max_event_bytes: usize,
    records: Vec<Record>,
    encoded: Vec<(Record, Bytes)>,
}

impl Stage {
    /// The stage of a pipeline whose input has `codec` and whose only transform is `jq: program`,
    /// loaded from a pipeline file as `sluice run` loads it.
    fn new(codec: &str, program: &str) -> Stage {
        let text = format!(
            "input:\n  stdin: {{codec: {codec}}}\ntransforms:\n  - jq: '{program}'\noutput:\n  stdout: {{}}\nerrors: drop\n"
        );
        let no_env = |_: &str| None;
        let pipeline = load_str(Path::new("bench.yaml"), &text, &no_env)
            .unwrap_or_else(|d| panic!("{program}: {d:#?}"));
        let config = pipeline.config;
        Stage {
            codec: config.input.codec(),
            chain: Chain::build(&config.transforms, config.settings.max_fanout)
                .unwrap_or_else(|e| panic!("{program}: {e}")),
            max_event_bytes: config.settings.max_event_bytes.0,
            records: Vec::new(),
            encoded: Vec::new(),
        }
    }

    /// Decode, chain, encode: `Worker::one` for one event, its results appended to
    /// `self.encoded`.
    fn one(&mut self, event: &Event) -> Result<(), (String, String)> {
        if event.payload.len() > self.max_event_bytes {
            return Err(("limits".to_string(), "too large".to_string()));
        }
        let value = codec::decode(self.codec, &event.payload)
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
            let mut buf = Vec::with_capacity(event.payload.len() + 16);
            codec::encode(self.codec, &r.value, &mut buf)
                .map_err(|e| ("encode".to_string(), e.to_string()))?;
            if buf.len() > self.max_event_bytes {
                return Err(("encode".to_string(), "too large".to_string()));
            }
            self.encoded.push((r, Bytes::from(buf)));
        }
        Ok(())
    }

    /// Runs a batch; returns the number of outputs (the outputs are dropped, as the sink would
    /// once it has delivered them).
    fn batch(&mut self, events: &[Event]) -> usize {
        self.encoded.clear();
        for event in events {
            if let Err((step, reason)) = self.one(event) {
                panic!("{step}: {reason}");
            }
        }
        self.encoded.len()
    }
}

/// Times `program` over `events`, after checking once that it makes `outputs` events.
fn bench(
    c: &mut Criterion,
    name: &str,
    codec: &str,
    program: &str,
    events: &[Event],
    outputs: usize,
) {
    let mut stage = Stage::new(codec, program);
    assert_eq!(stage.batch(events), outputs, "{name}: outputs of one batch");
    let mut group = c.benchmark_group("transform");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function(name, |b| {
        b.iter(|| black_box(stage.batch(black_box(events))))
    });
    group.finish();
}

fn transform(c: &mut Criterion) {
    let events = batch(|i| common::event(i, 1024));
    let orders = batch(order);

    // The identities write back what they read: with the JSON codec the same values (numbers
    // may be spelled differently: `0.0000` comes out as `0.0`), with the raw codec the same bytes.
    let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).ok();
    let mut identity = Stage::new("json", IDENTITY);
    identity.batch(&events);
    for ((_, out), e) in identity.encoded.iter().zip(&events) {
        let got = json(out);
        assert!(
            got.is_some() && got == json(&e.payload),
            "jq '.' changed an event"
        );
    }
    let mut raw = Stage::new("raw", IDENTITY);
    raw.batch(&events);
    for ((_, out), e) in raw.encoded.iter().zip(&events) {
        assert_eq!(*out, e.payload, "raw jq '.' changed an event");
    }

    bench(c, "json_identity", "json", IDENTITY, &events, BATCH);
    bench(c, "json_w2_select_reshape", "json", W2, &events, BATCH / 2);
    bench(
        c,
        "json_fanout_10_items",
        "json",
        FANOUT,
        &orders,
        BATCH * ITEMS as usize,
    );
    bench(c, "raw_identity", "raw", IDENTITY, &events, BATCH);
}

criterion_group!(benches, transform);
criterion_main!(benches);
