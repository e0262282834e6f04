//! W3 (core NATS at rising publish rates) and W4 (JetStream pull -> publish with acks), and the
//! NATS rig W5 shares.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use testkit::measure::{self, Reading, event, watch};
use testkit::nats::NatsServer;
use testkit::{Process, eventually, pipeline};

use super::{PROBE_TIMEOUT, RESHAPE, Row, TIMEOUT, raw_worker, results, sluice};

/// A nats-server of the suite's own, a runtime and a client of it, and sluice's pipeline file
/// for `{prefix}.in` -> the reshape -> `{prefix}.out.sluice`.
pub fn nats_rig(
    dir: &Path,
    prefix: &str,
) -> (
    NatsServer,
    tokio::runtime::Runtime,
    async_nats::Client,
    PathBuf,
) {
    let server = NatsServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(async_nats::connect(server.url())).unwrap();
    let file = pipeline(
        dir,
        prefix,
        &format!(
            "input:\n  nats:\n    url: {url}\n    subjects: [{prefix}.in]\n\
             transforms:\n  - jq: '{RESHAPE}'\n\
             output:\n  nats:\n    url: {url}\n    subject: {prefix}.out.sluice\nerrors: drop\n",
            url = server.url()
        ),
    );
    (server, rt, client, file)
}

/// W3: the highest of a rising series of publish rates each worker keeps up with, losing
/// nothing.
pub fn core(rows: &mut Vec<Row>, trials: &mut Vec<results::Trial>, dir: &Path, n: u64) {
    let (server, rt, client, file) = nats_rig(dir, "w3");
    let url = server.url();
    let raw_args = ["nats", &url, "w3.in", "w3.out.raw"];
    let reshape_args = ["nats-reshape", &url, "w3.in", "w3.out.raw-reshape"];
    for (runner, start) in [
        ("raw", &(|| raw_worker(&raw_args)) as &dyn Fn() -> Process),
        ("raw-reshape", &|| raw_worker(&reshape_args)),
        ("sluice", &|| Process::spawn(sluice().arg(&file))),
    ] {
        let mut best: Option<Reading> = None;
        let mut note = String::new();
        // W3_RATES=100000,200000 tries only those rates (to profile one, say).
        let rates: Vec<u64> = std::env::var("W3_RATES")
            .ok()
            .map(|r| r.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_else(|| {
                vec![
                    25_000, 50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 350_000, 400_000,
                    500_000, 600_000,
                ]
            });
        // How busy the whole machine (broker, load generator and worker on the same cores) was
        // at the highest rate kept up with and at the one that was not.
        let mut busy = String::new();
        for rate in rates {
            let worker = start();
            let (trial, percent) = rt.block_on(nats_trial(&client, &worker, runner, n, rate));
            trials.push(results::Trial {
                runner,
                rate,
                sent: n,
                lost: *trial.as_ref().err().unwrap_or(&0),
                cpu_us: trial.as_ref().map_or(f64::NAN, Reading::cpu_us),
            });
            match trial {
                Ok(r) => {
                    best = Some(r);
                    busy = format!("machine {percent:.0}% busy at the rate shown");
                }
                Err(lost) => {
                    note = format!("at {rate}/s: {lost} of {n} lost, machine {percent:.0}% busy");
                    break;
                }
            }
        }
        if note.is_empty() {
            note = "kept up at the highest rate tried".into();
        }
        if !busy.is_empty() {
            note = format!("{busy}; {note}");
        }
        rows.push(Row {
            workload: "W3",
            runner: runner.into(),
            reading: best,
            note: format!("256 B; 0 lost at the rate shown; {note}"),
        });
    }
}

/// Publishes `n` events at `rate` to a started worker; Ok with the reading if every event came
/// out, else Err with how many were lost; with how busy the machine was while publishing, in
/// percent of all its cores.
async fn nats_trial(
    client: &async_nats::Client,
    worker: &Process,
    runner: &str,
    n: u64,
    rate: u64,
) -> (Result<Reading, u64>, f64) {
    use futures_util::StreamExt;
    let mut out = client.subscribe(format!("w3.out.{runner}")).await.unwrap();
    client.flush().await.unwrap();
    // Until the worker is subscribed, publishes are lost: probe until one comes back.
    let probe = event(u64::MAX, 256);
    eventually("the worker to subscribe", PROBE_TIMEOUT, async || {
        client.publish("w3.in", probe.clone().into()).await.unwrap();
        tokio::time::timeout(Duration::from_millis(200), out.next())
            .await
            .ok()
    })
    .await;
    // Late probe echoes, then count.
    while tokio::time::timeout(Duration::from_millis(300), out.next())
        .await
        .is_ok()
    {}
    let received = Arc::new(AtomicU64::new(0));
    let counting = {
        let received = received.clone();
        tokio::spawn(async move {
            while out.next().await.is_some() {
                received.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let pid = worker.id();
    let (t0, c0) = (Instant::now(), measure::cpu_seconds(pid));
    let machine0 = measure::machine_ticks();
    let per_tick = (rate / 100).max(1);
    let mut sent = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while sent < n {
        tick.tick().await;
        for _ in 0..per_tick.min(n - sent) {
            client
                .publish("w3.in", event(sent, 256).into())
                .await
                .unwrap();
            sent += 1;
        }
    }
    client.flush().await.unwrap();
    let publish_secs = t0.elapsed().as_secs_f64();
    let busy = measure::busy_percent(machine0, measure::machine_ticks());
    // Done when nothing more arrives for a second.
    let mut last = (received.load(Ordering::Relaxed), Instant::now());
    while received.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = received.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(1) {
            break;
        }
    }
    let cpu = measure::cpu_seconds(pid) - c0;
    let peak = measure::peak_rss_mib(pid);
    counting.abort();
    let got = received.load(Ordering::Relaxed);
    if got < n {
        return (Err(n - got), busy);
    }
    let reading = Reading {
        events: n as f64,
        seconds: publish_secs,
        cpu_seconds: cpu,
        peak_rss_mib: peak,
    };
    (Ok(reading), busy)
}

/// W4: a pre-loaded stream drained through a durable pull consumer into another stream.
pub fn jetstream(rows: &mut Vec<Row>, dir: &Path, n: u64) {
    use testkit::nats::{create_stream, publish_all, stored};
    let server = NatsServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let js = rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
        for (name, subject) in [
            ("IN", "w4.in.>"),
            ("RAW", "w4.raw"),
            ("SLUICE", "w4.sluice"),
        ] {
            create_stream(&js, name, &[subject.to_string()]).await;
        }
        let events = (0..n).map(|i| (format!("w4.in.{}", i % 8), event(i, 512).into()));
        publish_all(&js, events).await;
        js
    });
    let stored = |name: &str| rt.block_on(stored(&js, name)).unwrap_or(0);
    let raw = raw_worker(&["jetstream", &server.url(), "IN", "w4.raw", &n.to_string()]);
    let reading = watch(raw.id(), n, 1.0, TIMEOUT, || stored("RAW"));
    drop(raw);
    rows.push(Row {
        workload: "W4",
        runner: "raw".into(),
        reading: Some(reading),
        note: "512 B; fetch -> publish -> await acks -> ack, no parsing".into(),
    });
    let file = pipeline(
        dir,
        "w4",
        &format!(
            "input:\n  jetstream:\n    url: {url}\n    stream: IN\n    consumer: sluice\n\
             transforms:\n  - jq: '{RESHAPE}'\n\
             output:\n  jetstream:\n    url: {url}\n    subject: w4.sluice\nerrors: drop\n",
            url = server.url()
        ),
    );
    let worker = Process::spawn(sluice().arg(&file));
    let reading = watch(worker.id(), n, 1.0, TIMEOUT, || stored("SLUICE"));
    drop(worker);
    rows.push(Row {
        workload: "W4",
        runner: "sluice".into(),
        reading: Some(reading),
        note: "512 B; jq reshape".into(),
    });
}
