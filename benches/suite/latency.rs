//! W5: events stamped with their send time, produced at a fixed rate through the raw loop and
//! sluice, on Kafka (the mock cluster and Apache Kafka) and core NATS; latency from send to
//! receipt by a consumer in this driver.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use testkit::kafka::TopicReader;
use testkit::measure::event;
use testkit::{Process, eventually};

use super::kafka::kafka_pipeline;
use super::nats::nats_rig;
use super::{PROBE_TIMEOUT, W2_PROGRAM, raw_worker, sluice};

/// How long each latency run publishes, after a warm-up.
const LATENCY_SECS: u64 = 10;
/// Partitions of W5's Kafka topics on Apache Kafka.
const LATENCY_PARTITIONS: i32 = 4;
const WARM_UP: Duration = Duration::from_secs(3);

/// One line of the latency table.
pub struct Latency {
    pub bus: &'static str,
    pub runner: &'static str,
    pub rate: u64,
    /// Microseconds from the producer's timestamp to the consumer's receipt, sorted.
    pub samples: Vec<u64>,
    pub expected: u64,
}

impl Latency {
    /// The `q` quantile of the latencies, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let last = self.samples.len().saturating_sub(1);
        (self
            .samples
            .get(((self.samples.len() as f64 * q) as usize).min(last)))
        .map_or(f64::NAN, |us| *us as f64 / 1000.0)
    }
}

pub fn print(rows: &[Latency]) {
    println!(
        "\n| W5 | runner | rate/s | p50 ms | p99 ms | p99.9 ms | received of expected |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in rows {
        let at = |q: f64| r.quantile_ms(q);
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {} of {} |",
            r.bus,
            r.runner,
            r.rate,
            at(0.5),
            at(0.99),
            at(0.999),
            r.samples.len(),
            r.expected
        );
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Event `i` of `size` bytes whose `ts` is the time it is sent, in microseconds.
fn timed_event(i: u64, size: usize) -> Vec<u8> {
    let e = String::from_utf8(event(i, size)).unwrap_or_default();
    e.replacen(
        &format!("\"ts\":{}", 1_700_000_000_000u64 + i),
        &format!("\"ts\":{}", now_us()),
        1,
    )
    .into_bytes()
}

/// Microseconds since the `ts` of a payload, if it was sent after `since`.
fn latency_of(payload: &[u8], since: u64) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let ts = v["ts"].as_u64()?;
    (ts >= since).then(|| now_us().saturating_sub(ts))
}

/// W5 on Kafka, on librdkafka's mock cluster and on Apache Kafka: 512-byte events produced at `rate`
/// through the raw loop and through sluice's W2 pipeline; latency of the events sent in the
/// window.
pub fn kafka(dir: &Path, rate: u64) -> Vec<Latency> {
    let mut out = Vec::new();
    // The mock cluster answers a fetch only when its wait is up, even with records to give:
    // every consumer here waits at most 1 ms, so that adds up to 1 ms per hop, alike for both.
    // It keeps at most 5 MB per partition, dropping the oldest: at 20,000 events/s on 4
    // partitions a consumer 2 s behind lost events. 16 partitions give it 8 s.
    let partitions = 16;
    let cluster = MockCluster::new(1).unwrap();
    let create = |topics: &[&str]| {
        for t in topics {
            cluster.create_topic(t, partitions, 1).unwrap();
        }
    };
    out.extend(kafka_on(
        "Kafka mock",
        &cluster.bootstrap_servers(),
        &create,
        partitions,
        "1",
        dir,
        rate,
    ));
    match testkit::kraft::Broker::try_start(None) {
        Ok(broker) => out.extend(kafka_on(
            "Kafka",
            &broker.address(),
            &|topics| {
                let topics: Vec<_> = topics.iter().map(|t| (*t, LATENCY_PARTITIONS)).collect();
                broker.create_topics(&topics)
            },
            LATENCY_PARTITIONS,
            "5",
            dir,
            rate,
        )),
        Err(e) => eprintln!("W5 on Apache Kafka not run: {e}"),
    }
    out
}

/// W5 on one Kafka broker: `create` makes topics of `partitions` there; the workers fetch with
/// `fetch.wait.max.ms` = `fetch_wait_ms`.
fn kafka_on(
    bus: &'static str,
    brokers: &str,
    create: &dyn Fn(&[&str]),
    partitions: i32,
    fetch_wait_ms: &str,
    dir: &Path,
    rate: u64,
) -> Vec<Latency> {
    let brokers = brokers.to_string();
    let mut out = Vec::new();
    for runner in ["raw", "sluice"] {
        let (input, output) = (format!("lat-in-{runner}"), format!("lat-out-{runner}"));
        create(&[&input, &output]);
        let worker = if runner == "raw" {
            // It runs until killed: how many events it will see is not known in advance.
            raw_worker(&[
                "kafka",
                &brokers,
                &input,
                &output,
                &u64::MAX.to_string(),
                fetch_wait_ms,
            ])
        } else {
            let file = kafka_pipeline(&brokers, &input, &output, fetch_wait_ms, Some(W2_PROGRAM))
                .write(dir, &output);
            Process::spawn(sluice().arg(&file))
        };
        let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
        // The window opens a warm-up after the worker's first output is read (a group join
        // takes seconds, and events waiting for it would be measured), in microseconds since
        // the epoch; until then nothing is measured.
        let measured_from = Arc::new(AtomicU64::new(u64::MAX));
        let flowing = Arc::new(AtomicBool::new(false));
        let produced = Arc::new(AtomicBool::new(false));
        let reader = {
            let (brokers, output, samples) = (brokers.clone(), output.clone(), samples.clone());
            let (measured_from, flowing, produced) =
                (measured_from.clone(), flowing.clone(), produced.clone());
            std::thread::spawn(move || {
                // The mock cluster answers a fetch only when its wait is up: 1 ms, as above.
                let reader = TopicReader::with_fetch_wait(&brokers, &output, partitions, 1);
                // Reads on for 5 s after the last event is produced.
                let mut until = None;
                while until.is_none_or(|u| Instant::now() < u) {
                    if until.is_none() && produced.load(Ordering::Relaxed) {
                        until = Some(Instant::now() + Duration::from_secs(5));
                    }
                    if let Some(r) = reader.next_record(Duration::from_millis(100)) {
                        flowing.store(true, Ordering::Relaxed);
                        let since = measured_from.load(Ordering::Relaxed);
                        if let Some(l) = latency_of(&r.payload, since) {
                            samples.lock().unwrap().push(l);
                        }
                    }
                }
            })
        };
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            // With no linger at all this producer falls behind at 5,000 events/s (one request per
            // event), and its queue, not the pipeline, is measured: seconds. 1 ms batches them;
            // every runner's events wait alike.
            .set("linger.ms", "1")
            .create()
            .unwrap();
        let start = Instant::now();
        let mut end: Option<Instant> = None;
        for i in 0.. {
            // Paced: event i goes out at i / rate seconds.
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            match end {
                Some(end) if due >= end => break,
                Some(_) => {}
                None if flowing.load(Ordering::Relaxed) => {
                    measured_from.store(now_us() + WARM_UP.as_micros() as u64, Ordering::Relaxed);
                    end = Some(Instant::now() + WARM_UP + Duration::from_secs(LATENCY_SECS));
                }
                None => assert!(
                    start.elapsed() < Duration::from_secs(120),
                    "{bus} {runner}: no output within 120 s"
                ),
            }
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let payload = timed_event(i, 512);
            let mut rec = BaseRecord::<(), [u8]>::to(&input).payload(&payload);
            while let Err((_, back)) = producer.send(rec) {
                rec = back;
                producer.poll(Duration::from_millis(1));
            }
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(30)).unwrap();
        produced.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        drop(worker);
        let mut samples = std::mem::take(&mut *samples.lock().unwrap());
        samples.sort_unstable();
        let measured = rate * LATENCY_SECS;
        out.push(Latency {
            bus,
            runner: if runner == "raw" { "raw" } else { "sluice W2" },
            rate,
            samples,
            expected: if runner == "raw" {
                measured
            } else {
                measured / 2
            },
        });
    }
    out
}

/// W5 on core NATS: 256-byte events published at `rate` through the raw loop and through
/// sluice's reshape; latency of the events sent after the warm-up.
pub fn nats(dir: &Path, rate: u64) -> Vec<Latency> {
    use futures_util::StreamExt;
    let (server, rt, client, file) = nats_rig(dir, "lat");
    let mut out = Vec::new();
    for runner in ["raw", "sluice"] {
        let worker = if runner == "raw" {
            raw_worker(&["nats", &server.url(), "lat.in", "lat.out.raw"])
        } else {
            Process::spawn(sluice().arg(&file))
        };
        let samples = rt.block_on(async {
            let mut sub = client.subscribe(format!("lat.out.{runner}")).await.unwrap();
            client.flush().await.unwrap();
            // Until the worker is subscribed, publishes are lost: probe until one comes back.
            eventually("the worker to subscribe", PROBE_TIMEOUT, async || {
                client
                    .publish("lat.in", timed_event(0, 256).into())
                    .await
                    .unwrap();
                tokio::time::timeout(Duration::from_millis(200), sub.next())
                    .await
                    .ok()
            })
            .await;
            let measured_from = now_us() + WARM_UP.as_micros() as u64;
            let reading = tokio::spawn(async move {
                let mut samples = Vec::new();
                let until =
                    tokio::time::Instant::now() + WARM_UP + Duration::from_secs(LATENCY_SECS + 3);
                while let Ok(Some(m)) = tokio::time::timeout_at(until, sub.next()).await {
                    if let Some(l) = latency_of(&m.payload, measured_from) {
                        samples.push(l);
                    }
                }
                samples
            });
            let total = rate * (WARM_UP.as_secs() + LATENCY_SECS);
            let start = tokio::time::Instant::now();
            for i in 0..total {
                let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                tokio::time::sleep_until(due).await;
                client
                    .publish("lat.in", timed_event(i, 256).into())
                    .await
                    .unwrap();
            }
            client.flush().await.unwrap();
            reading.await.unwrap()
        });
        drop(worker);
        let mut samples = samples;
        samples.sort_unstable();
        out.push(Latency {
            bus: "NATS",
            runner: if runner == "raw" { "raw" } else { "sluice jq" },
            rate,
            samples,
            expected: rate * LATENCY_SECS,
        });
    }
    out
}
