//! W7: Kafka -> S3, NDJSON compressed with zstd, on moto's S3 server: sluice's `object_store`
//! output against a raw loop that consumes with rdkafka, gathers each partition's payloads into
//! objects of the same size, compresses and PUTs each with object_store, and commits once it is
//! stored. Both name objects after their first and last offsets, so the driver counts stored
//! events from the listing.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use testkit::measure::watch;
use testkit::s3::Moto;
use testkit::{Process, pipeline};

use super::kafka::backlog;
use super::{Row, TIMEOUT, raw_worker, sluice};

/// Partitions of the input topic.
const PARTITIONS: i32 = 16;
/// Events per object, for both.
pub const BATCH: u64 = 2_000;
/// Bytes per event.
const SIZE: usize = 512;

/// W7 with `n` events, rounded down to whole objects per partition.
pub fn workload(rows: &mut Vec<Row>, dir: &Path, n: u64) {
    let per_partition = (n / PARTITIONS as u64 / BATCH).max(1) * BATCH;
    let n = per_partition * PARTITIONS as u64;
    let moto = Moto::start();
    moto.create_bucket("w7-archive");
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("in", PARTITIONS, 1).unwrap();
    backlog(&brokers, "in", n, PARTITIONS, SIZE, "none");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = s3(&moto.endpoint());
    for runner in ["raw", "sluice"] {
        let worker = match runner {
            "raw" => raw_worker(&["s3", &brokers, "in", &moto.endpoint(), &n.to_string()]),
            _ => {
                let file = pipeline(
                    dir,
                    "sluice",
                    &format!(
                        "input:\n  kafka:\n    brokers: {brokers}\n    topics: [in]\n    group_id: w7-sluice\n    options:\n      session.timeout.ms: \"6000\"\n      fetch.wait.max.ms: \"5\"\n\
                         output:\n  object_store:\n    url: s3://w7-archive/sluice\n    compression: zstd\n    batch: {{max_events: {BATCH}, max_age: 60s}}\n    options: {}\n\
                         errors: drop\n",
                        moto.options()
                    ),
                );
                Process::spawn(sluice().arg(&file))
            }
        };
        let prefix = object_store::path::Path::from(runner);
        let reading = watch(worker.id(), n, 1.0, TIMEOUT, || {
            rt.block_on(stored(&*store, &prefix))
        });
        drop(worker);
        rows.push(Row {
            workload: "W7",
            runner: runner.into(),
            reading: Some(reading),
            note: format!("{BATCH} events of {SIZE} B per object"),
        });
    }
}

/// A client of moto's S3 at `endpoint`, bucket `w7-archive`.
fn s3(endpoint: &str) -> Arc<dyn ObjectStore> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name("w7-archive")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .build()
        .unwrap();
    Arc::new(store)
}

/// Events stored under `prefix`, from the objects' names (`...-<first>.0-<last>.0.ndjson.zst`).
async fn stored(store: &dyn ObjectStore, prefix: &object_store::path::Path) -> u64 {
    let Ok(listed) = store.list_with_delimiter(Some(prefix)).await else {
        return 0;
    };
    let offset = |place: &str| place.split('.').next()?.parse::<u64>().ok();
    (listed.objects.iter())
        .filter_map(|o| {
            let name = o.location.filename()?.strip_suffix(".ndjson.zst")?;
            let mut ends = name.rsplitn(3, '-');
            let (last, first) = (offset(ends.next()?)?, offset(ends.next()?)?);
            Some(last + 1 - first)
        })
        .sum()
}

/// The raw loop: consume; gather each partition's payloads, a line each; at `BATCH` events,
/// compress with zstd (level 3, as sluice), PUT the object and commit the partition's offset
/// after it. Objects are named as sluice names them.
pub fn raw(brokers: &str, input: &str, endpoint: &str, n: u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "w7-raw")
        .set("fetch.wait.max.ms", "5")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&[input]).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = s3(endpoint);
    let mut open: HashMap<i32, (i64, Vec<u8>, u64)> = HashMap::new();
    let mut seen = 0u64;
    while seen < n {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let (partition, offset) = (m.partition(), m.offset());
        let (first, lines, count) = open.entry(partition).or_insert((offset, Vec::new(), 0));
        if *count == 0 {
            *first = offset;
        }
        lines.extend_from_slice(m.payload().unwrap_or_default());
        lines.push(b'\n');
        *count += 1;
        seen += 1;
        if *count == BATCH {
            let body = zstd::bulk::compress(lines, 3).unwrap();
            let name =
                format!("raw/raw-{input}-{partition}-{first:020}.0-{offset:020}.0.ndjson.zst");
            let path = object_store::path::Path::from(name);
            rt.block_on(store.put(&path, PutPayload::from(body)))
                .unwrap();
            lines.clear();
            *count = 0;
            let mut done = rdkafka::TopicPartitionList::new();
            done.add_partition_offset(input, partition, rdkafka::Offset::Offset(offset + 1))
                .unwrap();
            let _ = consumer.commit(&done, CommitMode::Async);
        }
    }
    // Stay until the suite has read this process's CPU and memory, then is killed.
    loop {
        std::thread::park();
    }
}
