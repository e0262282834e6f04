//! W1 on Apache Kafka, which can hold a backlog of millions of events, unlike the mock cluster.

use std::path::Path;
use std::time::Instant;

use testkit::kafka::Collector;
use testkit::kraft::Broker;
use testkit::measure::{Reading, cpu_seconds, peak_rss_mib};
use testkit::{Process, try_wait_for};

use super::kafka::{backlog as produce_backlog, kafka_pipeline};
use super::{Row, TIMEOUT, W2_PROGRAM, baseline_from, raw_worker, sluice};

/// The runners of W1, in order; W2 runs all but the raw loop.
const RUNNERS: [&str; 7] = [
    "raw",
    "sluice",
    "kcat-jaq",
    "quixstreams",
    "bytewax",
    "kafka-streams",
    "kafka-streams-eos",
];

/// Watches a worker until `count()` reaches `expect` outputs: its whole run from `started`
/// (start-up and the group join included, as `run.py` measures the other tools), and its
/// CPU time in all.
fn whole_run(
    worker: &Process,
    started: Instant,
    inputs: u64,
    expect: u64,
    count: impl Fn() -> u64,
) -> Reading {
    let pid = worker.id();
    let left = TIMEOUT.saturating_sub(started.elapsed());
    if try_wait_for(left, || (count() >= expect).then_some(())).is_none() {
        panic!("timed out at {} of {expect} outputs", count());
    }
    Reading {
        events: inputs as f64,
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: cpu_seconds(pid),
        peak_rss_mib: peak_rss_mib(pid),
    }
}

/// W1: a backlog of `n` events on one partition, then on two, drained by each runner.
pub fn backlog(rows: &mut Vec<Row>, dir: &Path, n: u64) {
    for partitions in [1, 2] {
        // A broker of its own for each, so the second does not share a disk cache and log
        // with the first's outputs.
        let broker = match Broker::try_start(None) {
            Ok(broker) => broker,
            Err(e) => {
                rows.push(Row {
                    workload: "W1 kafka",
                    runner: "all".into(),
                    reading: None,
                    note: format!("not run: {e}"),
                });
                return;
            }
        };
        let brokers = broker.address();
        let workload: &'static str = if partitions == 1 {
            "W1 kafka 1p"
        } else {
            "W1 kafka 2p"
        };
        let input = format!("in-{partitions}p");
        // W1K_RUNNERS=raw,sluice runs only those.
        let only = std::env::var("W1K_RUNNERS").ok();
        let runners: Vec<&str> = RUNNERS
            .into_iter()
            .filter(|r| only.as_ref().is_none_or(|o| o.split(',').any(|x| x == *r)))
            .collect();
        let outputs: Vec<String> = runners
            .iter()
            .map(|r| format!("w1-{partitions}p-{r}"))
            .collect();
        // W2 runs once, on two partitions.
        let w2_runners: Vec<&str> = if partitions == 2 {
            runners.iter().copied().filter(|r| *r != "raw").collect()
        } else {
            Vec::new()
        };
        let w2_outputs: Vec<String> = w2_runners
            .iter()
            .map(|r| format!("w2-{partitions}p-{r}"))
            .collect();
        let mut topics = vec![input.as_str()];
        topics.extend(outputs.iter().map(String::as_str));
        topics.extend(w2_outputs.iter().map(String::as_str));
        let topics: Vec<_> = topics.into_iter().map(|t| (t, partitions)).collect();
        broker.create_topics(&topics);
        produce_backlog(&brokers, &input, n, partitions, 1024, "lz4");
        // Each W1 runner, then (on two partitions) each W2 runner, with its program.
        let runs = runners
            .iter()
            .zip(&outputs)
            .map(|(r, o)| (workload, *r, o, None))
            .chain(
                w2_runners
                    .iter()
                    .zip(&w2_outputs)
                    .map(|(r, o)| ("W2 kafka 2p", *r, o, Some(W2_PROGRAM))),
            );
        for (workload, runner, output, program) in runs {
            let row = match runner {
                "raw" | "sluice" => {
                    let counter = Collector::counting(&brokers, output, partitions);
                    let started = Instant::now();
                    let worker = if runner == "raw" {
                        raw_worker(&["kafka", &brokers, &input, output, &n.to_string()])
                    } else {
                        // The raw loop's fetch wait, to compare like with like.
                        let file = kafka_pipeline(&brokers, &input, output, "5", program)
                            .write(dir, output);
                        Process::spawn(sluice().arg(&file))
                    };
                    // W2 lets half of the events through.
                    let expect = if program.is_some() { n.div_ceil(2) } else { n };
                    let reading = whole_run(&worker, started, n, expect, || counter.count() as u64);
                    Row {
                        workload,
                        runner: runner.to_string(),
                        reading: Some(reading),
                        note: "whole run, start-up included".into(),
                    }
                }
                tool => baseline_from(workload, tool, &brokers, &input, output, n, &[]),
            };
            eprintln!("{} {}: {:?}", row.workload, row.runner, row.reading);
            rows.push(row);
        }
    }
}
