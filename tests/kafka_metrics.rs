//! The metrics endpoint of a running Kafka pipeline on Apache Kafka: counters match what went
//! through, consumer lag per partition is never negative and drains to 0, health endpoints answer.

use std::process::Stdio;
use std::time::Duration;

use testkit::kafka::{Collector, produce};
use testkit::kraft::Broker;
use testkit::{
    free_port, http_get as get, metric_values as values, pipeline, sluice, unique, wait_exit,
    wait_for,
};

#[test]
fn counters_match_and_lag_drains_to_zero() {
    let broker = Broker::start();
    let brokers = broker.address();
    let (input, output, group) = (unique("in"), unique("out"), unique("group"));
    broker.create_topics(&[(&input, 3), (&output, 3)]);
    let n = 9_000u64;
    produce(
        &brokers,
        &input,
        (0..n).map(|i| {
            (
                Some(format!("k{i}")),
                format!("{{\"id\":{i}}}").into_bytes(),
                vec![],
            )
        }),
    );

    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "lagged",
        &format!(
            "\
input:
  kafka:
    brokers: {brokers}
    topics: [{input}]
    group_id: {group}
    commit_interval: 100ms
    options:
      session.timeout.ms: \"6000\"
      statistics.interval.ms: \"200\"
transforms:
  - filter: '.id % 3 != 0'
output:
  kafka:
    brokers: {brokers}
    topic: {output}
errors: stop
"
        ),
    );
    let port = free_port();
    let out = Collector::start(&brokers, &output, 3);
    let mut child = sluice!()
        .args(["run", "--metrics-addr", &format!("127.0.0.1:{port}")])
        .arg(&file)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let (live, _) = wait_for("the live endpoint", Duration::from_secs(30), || {
        get(port, "/health/live")
    });
    assert_eq!(live, 200);
    let (ready, _) = wait_for("readiness", Duration::from_secs(30), || {
        get(port, "/health/ready").filter(|(s, _)| *s == 200)
    });
    assert_eq!(ready, 200);

    let kept = (0..n).filter(|i| i % 3 != 0).count();
    let labels = [("pipeline", "lagged"), ("topic", input.as_str())];
    // Every scrape during the run: lag never negative.
    let body = wait_for(
        "every event delivered and lag 0 on all partitions",
        Duration::from_secs(120),
        || {
            let (_, body) = get(port, "/metrics")?;
            let lag = values(&body, "sluice_kafka_consumer_lag", &labels);
            assert!(lag.iter().all(|(_, v)| *v >= 0.0), "negative lag: {lag:?}");
            let pipeline = [("pipeline", "lagged")];
            let in_flight = values(&body, "sluice_events_in_flight", &pipeline);
            let timed = values(&body, "sluice_event_latency_seconds_count", &pipeline);
            (out.count() == kept
                && lag.len() == 3
                && lag.iter().all(|(_, v)| *v == 0.0)
                && in_flight.first().is_some_and(|(_, v)| *v == 0.0)
                && timed.first().is_some_and(|(_, v)| *v == n as f64))
            .then_some(body)
        },
    );
    let one = |m: &str| {
        values(&body, m, &[("pipeline", "lagged")])
            .first()
            .map(|(_, v)| *v)
    };
    assert_eq!(one("sluice_events_received_total"), Some(n as f64));
    assert_eq!(one("sluice_events_sent_total"), Some(kept as f64));
    assert_eq!(
        one("sluice_events_filtered_total"),
        Some((n as usize - kept) as f64)
    );

    // Every input went through one batch into the transforms; the kept ones came out in batches.
    let batched = |stage: &str| {
        values(
            &body,
            "sluice_batch_size_sum",
            &[("pipeline", "lagged"), ("stage", stage)],
        )
        .first()
        .map(|(_, v)| *v)
    };
    assert_eq!(batched("input"), Some(n as f64));
    assert_eq!(batched("output"), Some(kept as f64));
    assert!(
        body.contains("sluice_event_latency_seconds_bucket{pipeline=\"lagged\",le=\"0.0005\"}"),
        "latency histogram buckets"
    );
    // Every metric exported says what it is.
    let types: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(types.len() >= 15, "{types:?}");
    for name in types {
        assert!(
            body.lines()
                .any(|l| l.starts_with(&format!("# HELP {name} ")) && l.len() > name.len() + 20),
            "no # HELP for {name}"
        );
    }

    testkit::signal(&child, "TERM");
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    assert_eq!(out.count(), kept, "nothing extra after shutdown");
}
