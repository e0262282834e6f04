//! The `object_store` output on Azure Blob Storage (Azurite), from Apache Kafka, read back with
//! the Azure SDK for Python.

use std::collections::BTreeMap;
use std::time::Duration;

use testkit::azure::Azurite;
use testkit::kraft::Broker;
use testkit::{Worker, pipeline, sluice, unique, wait_for};

#[test]
fn kafka_partitions_are_stored_as_blobs_each_event_once() {
    let azurite = Azurite::start();
    let container = unique("lake").to_lowercase();
    azurite.create_container(&container);
    let broker = Broker::start();
    let brokers = broker.address();
    let n = 20_000u64;
    let (topic, group) = broker.input(4, n, |i| format!("{{\"id\":{i},\"kind\":\"k{}\"}}", i % 2));
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "blobs",
        &format!(
            "\
input:
  kafka:
    brokers: {brokers}
    topics: [{topic}]
    group_id: {group}
    commit_interval: 500ms
output:
  object_store:
    url: az://{container}/events
    path: 'kind={{{{ .kind }}}}'
    compression: gzip
    batch: {{max_events: 2000, max_age: 500ms}}
    options: {{use_emulator: 'true'}}
errors: stop
"
        ),
    );
    let log = dir.path().join("sluice.log");
    let mut sluice = sluice!();
    sluice.env("AZURITE_BLOB_STORAGE_URL", azurite.url());
    let mut worker = Worker::start(sluice, &file, &log, &[]);
    let blobs = wait_for("every event stored", Duration::from_secs(120), || {
        let blobs = azurite.blobs(&container, "events/");
        let stored: usize = blobs.iter().map(|(_, lines)| lines.len()).sum();
        (stored as u64 >= n).then_some(blobs)
    });
    worker.stop(Duration::from_secs(30));

    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    let mut partitions = std::collections::BTreeSet::new();
    for (name, lines) in &blobs {
        let events: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kind = events[0]["kind"].as_str().unwrap();
        assert!(
            events.iter().all(|e| e["kind"] == kind),
            "{name} mixes folders"
        );
        // events/kind=k0/blobs-<topic>-<partition>-<first>-<last>.ndjson.gz
        let prefix = format!("events/kind={kind}/blobs-{topic}-");
        let rest = name
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{name}"));
        assert!(rest.ends_with(".ndjson.gz"), "{name}");
        partitions.insert(rest.split('-').next().unwrap().to_string());
        for e in events {
            *seen.entry(e["id"].as_u64().unwrap()).or_default() += 1;
        }
    }
    assert_eq!(
        partitions.len(),
        4,
        "a blob per partition and folder: {partitions:?}"
    );
    assert_eq!(seen.len() as u64, n, "every event stored");
    assert!(seen.values().all(|c| *c == 1), "an event stored twice");
}
