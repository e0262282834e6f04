//! The image built from the repository's Dockerfile (by `scripts/image.sh`, with podman), run as
//! a user runs it: the quickstart by default; a Kafka worker as uid 10001 on a read-only root
//! filesystem that `podman stop` (SIGTERM to PID 1) stops under load with exit code 0 and
//! nothing lost; a stripped binary.

use std::time::Duration;

use testkit::kafka::{TopicReader, committed, example_event, example_id_counts};
use testkit::kraft::Broker;
use testkit::podman::{Container, image, podman, run_podman};
use testkit::{http_get_at, log_records, unique, wait_for};

/// The payload, key and headers of each output line, and where it came from (the timestamp
/// is the moment it was made, so it differs between runs).
fn envelopes(stdout: &str) -> Vec<(serde_json::Value, serde_json::Value, serde_json::Value)> {
    stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (v["payload"].clone(), v["key"].clone(), v["headers"].clone())
        })
        .collect()
}

#[test]
fn the_image_runs_the_quickstart_by_default() {
    // As `docker run --rm sluice` would, with the root filesystem read-only as Kubernetes runs it.
    let out = podman()
        .args(["run", "--rm", "--read-only", image()])
        .output()
        .expect("podman run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);

    let events = envelopes(&stdout);
    let ids: Vec<u64> = events.iter().map(|e| e.0["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [0, 4, 8, 12, 16], "{stdout}");
    // The same events, keys and headers as the binary built here makes of the same file.
    let here = testkit::sluice!()
        .args(["run", "pipelines/quickstart.yaml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("sluice run");
    assert!(here.status.success());
    assert_eq!(events, envelopes(&String::from_utf8_lossy(&here.stdout)));
    assert_eq!(events[1].1, "search");
    assert_eq!(events[1].2, serde_json::json!({"x-severity": "error"}));
    // Logs are JSON lines on stderr: the pipeline ran to its end.
    let stopped = log_records(&stderr, "pipeline stopped");
    assert_eq!(stopped.len(), 1, "{stderr}");
    assert_eq!(stopped[0]["sent"], 5, "{stderr}");
}

#[test]
fn the_binary_in_the_image_is_stripped() {
    let container = run_podman(&["create", image()]);
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("sluice");
    let copied = podman()
        .args(["cp", &format!("{container}:/usr/local/bin/sluice")])
        .arg(&binary)
        .status();
    run_podman(&["rm", &container]);
    assert!(copied.expect("podman cp").success());
    let sections = std::process::Command::new("readelf")
        .args(["--section-headers", "--wide"])
        .arg(&binary)
        .output()
        .expect("readelf (binutils)");
    let sections = String::from_utf8_lossy(&sections.stdout);
    assert!(sections.contains(".text"), "{sections}");
    for kept in [".symtab", ".debug_info", ".debug_line"] {
        assert!(!sections.contains(kept), "{kept} in the image's binary");
    }
    let size: u64 = run_podman(&["image", "inspect", "--format", "{{.Size}}", image()])
        .parse()
        .expect("image size");
    eprintln!(
        "image {}: {} MB; binary {} MB",
        image(),
        size / 1_000_000,
        std::fs::metadata(&binary).unwrap().len() / 1_000_000
    );
}

#[test]
fn podman_stop_of_a_busy_worker_exits_0_as_uid_10001_on_a_read_only_root_losing_nothing() {
    let broker = Broker::start_for_containers();
    let (input, output, dlq, group) = (
        unique("ctr-in"),
        unique("ctr-out"),
        unique("ctr-dlq"),
        unique("ctr-group"),
    );
    broker.create_topics(&[(&input, 3), (&output, 3), (&dlq, 1)]);
    let env = [
        format!("KAFKA_BROKERS={}", broker.address_in_containers()),
        format!("INPUT_TOPIC={input}"),
        format!("OUTPUT_TOPIC={output}"),
        format!("DEAD_LETTER_TOPIC={dlq}"),
        format!("GROUP_ID={group}"),
    ];
    let worker = |env: &[String]| {
        let mut options = vec!["--read-only"];
        for e in env {
            options.extend(["-e", e.as_str()]);
        }
        Container::start(
            &options,
            &[
                "run",
                "--log-format",
                "json",
                "--metrics-addr",
                "0.0.0.0:9090",
                "/etc/sluice/pipelines/kafka-to-kafka.yaml",
            ],
        )
    };

    const N: u64 = 60_000;
    let mut out = TopicReader::new(&broker.address(), &output, 3);
    let mut producer = broker.producer();
    let first = worker(&env);
    let produced = std::thread::scope(|scope| {
        // 4,000 events/s for 15 s: the stop lands while events arrive and are in flight.
        let producing =
            scope.spawn(|| producer.send_paced(&input, N, 40, 30, example_event, |_| {}));

        // The process runs as uid 10001 (the image's USER), on a read-only root filesystem.
        let pid = first.inspect("{{.State.Pid}}");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert_eq!(
            uid.split_whitespace().collect::<Vec<_>>(),
            ["Uid:", "10001", "10001", "10001", "10001"]
        );
        assert_eq!(first.inspect("{{.HostConfig.ReadonlyRootfs}}"), "true");
        let address = first.address();
        wait_for("the worker ready", Duration::from_secs(60), || {
            (http_get_at(&address, 9090, "/health/ready")?.0 == 200).then_some(())
        });

        wait_for(
            "a third of the events out",
            Duration::from_secs(120),
            || {
                out.poll(Duration::from_millis(200));
                (out.records.len() as u64 >= N / 3).then_some(())
            },
        );
        // SIGTERM to PID 1, SIGKILL after the grace period Kubernetes gives it (40 s).
        run_podman(&["stop", "--time", "40", &first.name]);
        producing.join().expect("producer")
    });

    // Exit code 0: it stopped by itself before the SIGKILL, everything it read delivered.
    let logs = first.logs();
    assert_eq!(first.inspect("{{.State.ExitCode}}"), "0", "{logs}");
    let stopped = log_records(&logs, "pipeline stopped");
    assert_eq!(stopped.len(), 1, "{logs}");
    assert_eq!(stopped[0]["unfinished"], false, "{logs}");
    assert_eq!(stopped[0]["sent"], stopped[0]["received"], "{logs}");
    assert!(
        stopped[0]["received"].as_u64().unwrap() < N,
        "not stopped under load"
    );
    // What it committed is what it delivered, and nothing read was left undelivered.
    out.drain(Duration::from_secs(2));
    let delivered_before = out.records.len() as u64;
    let committed_at_stop: i64 = committed(&broker.address(), &group, &input, 3)
        .iter()
        .map(|c| c.unwrap_or(0))
        .sum();
    assert_eq!(committed_at_stop as u64, delivered_before, "{logs}");

    // A second worker reads on from there: every event out once.
    let second = worker(&env);
    wait_for("every event out", Duration::from_secs(180), || {
        out.poll(Duration::from_millis(200));
        (out.records.len() as u64 >= N).then_some(())
    });
    out.drain(Duration::from_secs(2));
    let (counts, missing) = example_id_counts(&out.records, N);
    assert_eq!(missing, Vec::<u64>::new(), "lost");
    let twice: Vec<(&u64, &u64)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "delivered twice after a graceful stop: {twice:?}"
    );
    let expected: Vec<Option<i64>> = (0..3).map(|p| produced.get(&p).copied()).collect();
    wait_for("every input committed", Duration::from_secs(30), || {
        (committed(&broker.address(), &group, &input, 3) == expected).then_some(())
    });
    drop(second);
}
