//! The `object_store` output against a real S3 implementation (moto's server), read back with an
//! independent client (boto3).

use std::collections::BTreeMap;

use testkit::s3::Moto;
use testkit::{pipeline, run_with_stdin, sluice, unique};

#[test]
fn generated_events_are_stored_in_s3_each_in_exactly_one_object() {
    let moto = Moto::start();
    let bucket = unique("lake").to_lowercase();
    moto.create_bucket(&bucket);
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "archive",
        &format!(
            "\
input:
  generate:
    template: '{{id: ., service: ([\"checkout\", \"search\", \"cart\"][. % 3])}}'
    count: 5000
output:
  object_store:
    url: s3://{bucket}/archive
    path: 'service={{{{ .service }}}}'
    compression: zstd
    batch: {{max_events: 1000}}
    options: {options}
errors: stop
",
            options = moto.options()
        ),
    );
    let out = run_with_stdin(sluice!(), &file, b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let objects = moto.objects(&bucket, "archive/");
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (key, lines) in &objects {
        let ids: Vec<u64> = lines
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        let service = ["checkout", "search", "cart"][(ids[0] % 3) as usize];
        let name = format!(
            "archive/service={service}/archive-generate-{:020}.0-{:020}.0.ndjson.zst",
            ids[0],
            ids[ids.len() - 1]
        );
        assert_eq!(key, &name);
        assert!(
            ids.len() <= 1000 && ids.windows(2).all(|w| w[0] < w[1]),
            "{key}"
        );
        assert!(
            ids.iter().all(|id| id % 3 == ids[0] % 3),
            "{key} mixes services"
        );
        for id in ids {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 5000, "every event stored");
    assert!(seen.values().all(|n| *n == 1), "an event stored twice");
    // 1,667 events a service at most, 1,000 an object: two objects a service.
    assert_eq!(
        objects.len(),
        6,
        "{:?}",
        objects.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
}
