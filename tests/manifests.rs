//! The Kubernetes manifests of `k8s/` played with `podman kube play`: the example overlay, made
//! local by `k8s/overlays/local` (the image `scripts/image.sh` builds, a broker on this machine),
//! rendered and adapted by `scripts/podman/kube.py`. Three replicas share a topic; one is
//! killed and the others take its partitions; two are stopped as a scale-down to one stops
//! them; nothing is lost, and only the kill makes duplicates. The probes answer where and as
//! the Deployment declares.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use testkit::kafka::{TopicReader, committed, example_event, example_id_counts};
use testkit::kraft::Broker;
use testkit::podman::{Played, run_podman};
use testkit::process::held_partitions;
use testkit::{http_get_at, log_records, unique, wait_for};

/// The HTTP probes of the played Deployment's container: (kind, path, port).
fn probes(played: &Path) -> Vec<(String, String, u16)> {
    let json = testkit::python(
        &format!(
            "import json, yaml\n\
             docs = [d for d in yaml.safe_load_all(open({:?})) if d and d['kind'] == 'Deployment']\n\
             c = docs[0]['spec']['template']['spec']['containers'][0]\n\
             print(json.dumps([[k, c[k]['httpGet']['path'], c[k]['httpGet']['port']]\n\
                               for k in ('livenessProbe', 'readinessProbe') if k in c]))",
            played.display().to_string()
        ),
        "reading the played Deployment",
    );
    serde_json::from_str(&json).expect("probes")
}

/// One replica: its pod and the container running sluice in it.
struct Replica {
    pod: String,
    container: String,
}

impl Replica {
    fn logs(&self) -> String {
        testkit::podman::logs(&self.container)
    }

    fn address(&self) -> String {
        let infra = run_podman(&[
            "pod",
            "inspect",
            "--format",
            "{{.InfraContainerID}}",
            &self.pod,
        ]);
        run_podman(&[
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &infra,
        ])
    }

    fn assigned_count(&self, partition: i64) -> usize {
        log_records(&self.logs(), "partition assigned")
            .iter()
            .filter(|r| r["partition"].as_i64() == Some(partition))
            .count()
    }
}

#[test]
fn the_example_overlay_plays_three_replicas_that_lose_nothing_through_a_kill_and_a_scale_down() {
    let broker = Broker::start_for_containers();
    let (input, output, dlq, group) = (
        unique("pods-in"),
        unique("pods-out"),
        unique("pods-dlq"),
        unique("pods-group"),
    );
    const PARTITIONS: i32 = 6;
    broker.create_topics(&[(&input, PARTITIONS), (&output, 3), (&dlq, 1)]);

    // The local overlay, with this test's broker, topics and group, and names of its own.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let overlays = root.join("target/podman-overlays");
    std::fs::create_dir_all(&overlays).unwrap();
    let dir = tempfile::tempdir_in(&overlays).unwrap();
    let suffix = unique("t");
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../../k8s/overlays/local
nameSuffix: -{suffix}
configMapGenerator:
  - name: sluice-env
    behavior: merge
    literals:
      - KAFKA_BROKERS={}
      - INPUT_TOPIC={input}
      - OUTPUT_TOPIC={output}
      - DEAD_LETTER_TOPIC={dlq}
      - GROUP_ID={group}
",
            broker.address_in_containers()
        ),
    )
    .unwrap();
    let played = Played::play(dir.path(), None, dir.path());
    let replicas: Vec<Replica> = (0..3)
        .map(|i| {
            let pod = format!("sluice-{suffix}-pod-{i}");
            Replica {
                container: format!("{pod}-sluice"),
                pod,
            }
        })
        .collect();

    // The probes answer 200 at each pod's address, as the Deployment declares them.
    let probes = probes(played.file());
    assert_eq!(probes.len(), 2, "{probes:?}");
    for replica in &replicas {
        let address = replica.address();
        for (kind, path, port) in &probes {
            wait_for(
                &format!(
                    "{kind} of {} ({address}:{port}{path}) to answer 200",
                    replica.pod
                ),
                Duration::from_secs(90),
                || (http_get_at(&address, *port, path)?.0 == 200).then_some(()),
            );
        }
    }
    wait_for("one stable group of three", Duration::from_secs(90), || {
        (broker.group(&group) == Some(("Stable".into(), 3))).then_some(())
    });

    const N: u64 = 100_000;
    let sent = AtomicU64::new(0);
    let mut out = TopicReader::new(&broker.address(), &output, 3);
    let mut producer = broker.producer();
    let (produced, sent_at_kill) = std::thread::scope(|scope| {
        // 5,000 events/s for 20 s: the kill and the scale-down happen while events flow.
        let producing = scope.spawn(|| {
            producer.send_paced(&input, N, 50, 60, example_event, |i| {
                sent.store(i + 1, Ordering::SeqCst)
            })
        });
        let delivered = |out: &mut TopicReader, n: u64, what: &str| {
            wait_for(what, Duration::from_secs(180), || {
                out.poll(Duration::from_millis(200));
                (out.records.len() as u64 >= n).then_some(())
            })
        };

        // One pod killed: the other two take its partitions.
        delivered(&mut out, N / 4, "a quarter of the events out");
        let killed = &replicas[1];
        let held = held_partitions(&killed.logs());
        assert!(
            !held.is_empty(),
            "pod 1 holds no partition:\n{}",
            killed.logs()
        );
        let before: Vec<usize> = held
            .iter()
            .map(|p| replicas[0].assigned_count(*p) + replicas[2].assigned_count(*p))
            .collect();
        let restarts = |c: &str| run_podman(&["inspect", "--format", "{{.RestartCount}}", c]);
        let restarted = restarts(&killed.container);
        run_podman(&["kill", "--signal", "KILL", &killed.container]);
        // Whatever it read was sent before it died (its pod's restart policy may start it again).
        wait_for(
            "the killed container to exit",
            Duration::from_secs(30),
            || {
                let state = run_podman(&[
                    "inspect",
                    "--format",
                    "{{.State.Status}}",
                    &killed.container,
                ]);
                (state != "running" || restarts(&killed.container) != restarted).then_some(())
            },
        );
        let sent_at_kill = sent.load(Ordering::SeqCst);
        wait_for(
            "the other pods to take the killed pod's partitions",
            Duration::from_secs(120),
            || {
                held.iter()
                    .zip(&before)
                    .all(|(p, n)| {
                        replicas[0].assigned_count(*p) + replicas[2].assigned_count(*p) > *n
                    })
                    .then_some(())
            },
        );

        // Scaled down to one: the Deployment controller would stop two pods with SIGTERM and
        // their grace period; each drains, commits and exits 0. Their containers are stopped
        // first, then the pods: podman 4.3's `pod stop` stops the pod's network (its infra
        // container) beside them, where Kubernetes keeps a pod's network until its containers
        // have exited.
        delivered(&mut out, N / 2, "half of the events out");
        for replica in [&replicas[2], &replicas[1]] {
            run_podman(&["stop", "--time", "40", &replica.container]);
            run_podman(&["pod", "stop", &replica.pod]);
        }
        let stopped = &replicas[2];
        let logs = stopped.logs();
        assert_eq!(
            run_podman(&[
                "inspect",
                "--format",
                "{{.State.ExitCode}}",
                &stopped.container
            ]),
            "0",
            "{logs}"
        );
        let summary = log_records(&logs, "pipeline stopped");
        assert_eq!(summary.len(), 1, "{logs}");
        assert_eq!(summary[0]["unfinished"], false, "{logs}");
        assert_eq!(summary[0]["sent"], summary[0]["received"], "{logs}");
        // The one left holds every partition.
        wait_for(
            "pod 0 to hold every partition",
            Duration::from_secs(120),
            || {
                let held: BTreeSet<i64> =
                    held_partitions(&replicas[0].logs()).into_iter().collect();
                (held == (0..PARTITIONS as i64).collect()).then_some(())
            },
        );
        let produced = producing.join().expect("producer");
        delivered(&mut out, N, "every event out");
        (produced, sent_at_kill)
    });
    out.drain(Duration::from_secs(2));

    let (counts, missing) = example_id_counts(&out.records, N);
    assert_eq!(missing, Vec::<u64>::new(), "lost");
    // Only the kill can make duplicates: of events sent before it.
    let twice: BTreeSet<u64> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(i, _)| *i)
        .collect();
    eprintln!(
        "{} records for {N} events; {} delivered twice (all sent before the kill at {sent_at_kill})",
        out.records.len(),
        twice.len()
    );
    assert!(
        twice.iter().all(|i| *i < sent_at_kill),
        "sent after the kill and delivered twice: {:?}",
        twice
            .iter()
            .filter(|i| **i >= sent_at_kill)
            .take(20)
            .collect::<Vec<_>>()
    );
    let expected: Vec<Option<i64>> = (0..PARTITIONS).map(|p| produced.get(&p).copied()).collect();
    wait_for("every input committed", Duration::from_secs(60), || {
        (committed(&broker.address(), &group, &input, PARTITIONS) == expected).then_some(())
    });
    drop(played);
}

#[test]
fn kube_py_renders_what_podman_plays() {
    // The local overlay at another replica count: ports left out, probes by number, the Secret
    // made a podman secret, the kinds podman does not play listed and left out.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = testkit::podman::with_settings(
        std::process::Command::new(root.join("scripts/podman/kube.py"))
            .arg(root.join("k8s/overlays/local"))
            .args(["--replicas", "1"]),
    )
    .output()
    .expect("kube.py");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("played.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let summary = testkit::python(
        &format!(
            "import json, yaml\n\
             docs = list(yaml.safe_load_all(open({:?})))\n\
             d = [d for d in docs if d['kind'] == 'Deployment'][0]\n\
             c = d['spec']['template']['spec']['containers'][0]\n\
             print(json.dumps({{'kinds': sorted(x['kind'] for x in docs), 'replicas': d['spec']['replicas'],\n\
                 'ports': 'ports' in c, 'probes': [c[k]['httpGet'] for k in ('livenessProbe', 'readinessProbe')],\n\
                 'image': c['image']}}))",
            file.display().to_string()
        ),
        "reading the rendered manifests",
    );
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(
        summary,
        serde_json::json!({
            "kinds": ["ConfigMap", "ConfigMap", "Deployment"],
            "replicas": 1,
            "ports": false,
            "probes": [{"path": "/health/live", "port": 9090}, {"path": "/health/ready", "port": 9090}],
            "image": "localhost/sluice:latest",
        })
    );
    for left_out in [
        "Namespace/streaming",
        "Service/sluice-metrics",
        "PodDisruptionBudget/sluice",
        "HorizontalPodAutoscaler/sluice",
    ] {
        assert!(
            stderr.contains(&format!("{left_out}: not played by podman, left out")),
            "{stderr}"
        );
    }
    let secret = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("kube.py: Secret/")?
                .strip_suffix(": made a podman secret")
        })
        .unwrap_or_else(|| panic!("no podman secret made: {stderr}"));
    // The podman secret holds the Secret's keys as envFrom reads them: base64 values. (Read in
    // a container of the image's base, which scripts/image.sh made.)
    testkit::podman::image();
    let read = testkit::podman::try_podman(&[
        "run",
        "--rm",
        "--secret",
        secret,
        "docker.io/library/debian:bookworm-slim",
        "cat",
        &format!("/run/secrets/{secret}"),
    ]);
    run_podman(&["secret", "rm", secret]);
    let data = read.unwrap_or_else(|e| panic!("{e}"));
    let data: serde_json::Value =
        serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"));
    assert_eq!(data["KAFKA_SASL_USERNAME"], "Y2hhbmdlLW1l", "{data}"); // "change-me"
}
