//! Microbenchmarks of the per-event transform path the pipeline's worker threads run: decode the
//! payload, run the transform chain, encode each result (`pipeline::worker::Worker`, the
//! same code); and the stage of a pipeline without steps (`pipeline::worker::pass_through`).
//!
//! `cargo bench --bench transform` times each benchmark over a batch of 500 events with
//! criterion. Run without `--bench` (as `cargo test --all-targets` does) each benchmark runs once
//! as a check, untimed.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice::codec::Codec;
use sluice::delivery::Ack;
use sluice::event::{Event, Position};
use sluice::pipeline::load_str;
use sluice::pipeline::worker::{Processed, Worker, pass_through};
use testkit::measure::event;

// The allocator of the `sluice` binary, so these figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Events per batch: the default `settings.batch_size`.
const BATCH: usize = 500;

/// The identity program: decode and encode only.
const IDENTITY: &str = ".";
/// W2 of the issue: half the events pass, reshaped.
const W2: &str = "select(.status >= 500) | {ts, service, msg, latency_ms: (.latency * 1000)}";
/// W3 and W4's reshape.
const RESHAPE: &str = "{id, ts, service, status, latency_ms: (.latency * 1000)}";
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

/// The Avro schema file of the benchmark events, written once.
fn event_schema_file() -> &'static Path {
    static FILE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        // One name, written again by every run: nothing piles up.
        let path = std::env::temp_dir().join("sluice-bench-event.avsc");
        std::fs::write(&path, testkit::measure::EVENT_AVSC).expect("write the schema");
        path
    })
}

/// The same events as bare Avro bodies of [`testkit::measure::EVENT_AVSC`].
fn avro_batch(events: &[Event]) -> Vec<Event> {
    let schema =
        sluice::codec::avro::AvroSchema::parse(testkit::measure::EVENT_AVSC, &[]).expect("schema");
    let mut out = copy(events);
    for e in &mut out {
        let val = sluice::codec::decode(sluice::codec::Codec::Json, &e.payload).expect("json");
        let mut body = Vec::new();
        schema.encode(&val, &mut body).expect("fits the schema");
        e.payload = Bytes::from(body);
    }
    out
}

/// The transform stage of a pipeline whose input has `codec` and whose only transform is
/// `jq: program`, loaded from a pipeline file as `sluice run` loads it: the worker a transform
/// thread runs. `avro` reads bare bodies of [`testkit::measure::EVENT_AVSC`] and writes JSON.
fn worker(codec: &str, program: &str) -> Worker {
    let input = match codec {
        "avro" => format!(
            "kafka: {{brokers: localhost:9092, topics: [t], group_id: g, codec: {{avro: {{schema_file: '{}'}}}}}}",
            event_schema_file().display()
        ),
        _ => format!("stdin: {{codec: {codec}}}"),
    };
    let text = format!(
        "input:\n  {input}\ntransforms:\n  - jq: '{program}'\noutput:\n  stdout: {{}}\nerrors: drop\n"
    );
    let no_env = |_: &str| None;
    let pipeline = load_str(Path::new("bench.yaml"), &text, &no_env)
        .unwrap_or_else(|d| panic!("{program}: {d:#?}"));
    Worker::new(&pipeline.config, &pipeline.components.payloads)
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// A fresh copy of a batch (events are consumed by the worker; payloads are shared).
fn copy(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .map(|e| {
            let mut c = Event::new(e.payload.clone(), (*e.position).clone(), Ack::untracked());
            c.key = e.key.clone();
            c.timestamp = e.timestamp;
            c
        })
        .collect()
}

/// Runs one batch, checking that nothing failed.
fn run(worker: &mut Worker, events: Vec<Event>) -> Processed {
    let done = worker.process(events);
    if let Some(f) = done.failures.first() {
        panic!("{}: {}", f.failure.step, f.failure.reason);
    }
    done
}

/// Times `program` over `events`, after checking once that it makes `outputs` events. Copying
/// the batch in is not timed; dropping the results is.
fn bench(
    c: &mut Criterion,
    name: &str,
    codec: &str,
    program: &str,
    events: &[Event],
    outputs: usize,
) {
    let mut w = worker(codec, program);
    assert_eq!(
        run(&mut w, copy(events)).outputs.len(),
        outputs,
        "{name}: outputs of one batch"
    );
    let mut group = c.benchmark_group("transform");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function(name, |b| {
        b.iter_batched(
            || copy(events),
            |batch| run(&mut w, black_box(batch)).outputs.len(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn transform(c: &mut Criterion) {
    let events = batch(|i| event(i, 1024));
    let orders = batch(order);

    // The identities write back what they read: with the JSON codec the same values (numbers
    // may be spelled differently: `0.0000` comes out as `0.0`), with the raw codec the same bytes.
    let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).ok();
    let out = run(&mut worker("json", IDENTITY), copy(&events));
    for (o, e) in out.outputs.iter().zip(&events) {
        let got = json(&o.payload);
        assert!(
            got.is_some() && got == json(&e.payload),
            "jq '.' changed an event"
        );
    }
    let out = run(&mut worker("raw", IDENTITY), copy(&events));
    for (o, e) in out.outputs.iter().zip(&events) {
        assert_eq!(o.payload, e.payload, "raw jq '.' changed an event");
    }

    bench(c, "json_identity", "json", IDENTITY, &events, BATCH);
    let small = batch(|i| event(i, 256));
    bench(c, "json_w3_reshape_256b", "json", RESHAPE, &small, BATCH);
    bench(c, "json_w2_select_reshape", "json", W2, &events, BATCH / 2);
    // The same events and program with Avro input (JSON output, as W2 writes).
    let avro = avro_batch(&events);
    let json_out = run(&mut worker("json", W2), copy(&events));
    let avro_out = run(&mut worker("avro", W2), copy(&avro));
    let values = |p: &Processed| {
        p.outputs
            .iter()
            .map(|o| json(&o.payload))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        values(&avro_out),
        values(&json_out),
        "Avro in gives what JSON in gives"
    );
    bench(c, "avro_w2_select_reshape", "avro", W2, &avro, BATCH / 2);
    bench(
        c,
        "json_fanout_10_items",
        "json",
        FANOUT,
        &orders,
        BATCH * ITEMS as usize,
    );
    bench(c, "raw_identity", "raw", IDENTITY, &events, BATCH);

    // A pipeline without steps: `codec: json` checks that each payload is JSON (without
    // building it), `codec: raw` only looks at sizes.
    let mut group = c.benchmark_group("transform");
    group.throughput(Throughput::Elements(events.len() as u64));
    for (name, codec) in [
        ("json_pass_through", Codec::Json),
        ("raw_pass_through", Codec::Raw),
    ] {
        let done = pass_through(copy(&events), usize::MAX, false, codec);
        assert_eq!((done.outputs.len(), done.failures.len()), (BATCH, 0));
        group.bench_function(name, |b| {
            b.iter_batched(
                || copy(&events),
                |batch| {
                    pass_through(black_box(batch), usize::MAX, false, codec)
                        .outputs
                        .len()
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, transform);
criterion_main!(benches);
