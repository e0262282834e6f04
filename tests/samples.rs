//! The NATS sample pipelines under `pipelines/` run as the README shows: events published by a
//! plain NATS client come out reshaped, and bad ones as dead letters.

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use testkit::kafka::Collector;
use testkit::nats::{NatsServer, create_stream, publish_all, read_stream};
use testkit::{Worker, eventually, logged, signal, sluice, wait_exit, wait_for};

fn sample(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pipelines")
        .join(name)
}

fn start(file: &str, env: &[(&str, &str)], log: &std::path::Path) -> Worker {
    let mut cmd = sluice!();
    cmd.envs(env.iter().copied());
    Worker::start(cmd, &sample(file), log, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_to_jetstream_sample() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    create_stream(&js, "ORDERS", &["orders.>".into()]).await;
    create_stream(&js, "ORDERS_ENRICHED", &["orders-enriched.>".into()]).await;
    create_stream(&js, "ORDERS_DEAD_LETTERS", &["orders-dead-letters".into()]).await;

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("w.log");
    let url = server.url();
    let mut w = start(
        "jetstream-to-jetstream.yaml",
        &[("NATS_URL", url.as_str())],
        &log,
    );
    publish_all(
        &js,
        [
            r#"{"id":1,"region":"eu","items":[{"price":2.5,"qty":2},{"price":1,"qty":1}]}"#,
            r#"{"id":2,"items":[]}"#,
            "not json",
        ]
        .map(|p| ("orders.new".to_string(), bytes::Bytes::from(p))),
    )
    .await;
    eventually("outputs stored", Duration::from_secs(60), || async {
        let out = testkit::nats::stored(&js, "ORDERS_ENRICHED").await?;
        let dead = testkit::nats::stored(&js, "ORDERS_DEAD_LETTERS").await?;
        (out == 2 && dead == 1).then_some(())
    })
    .await;
    let out = read_stream(&js, "ORDERS_ENRICHED").await;
    let got: Vec<(String, serde_json::Value)> = out
        .iter()
        .map(|m| {
            (
                m.subject.to_string(),
                serde_json::from_slice(&m.payload).unwrap(),
            )
        })
        .collect();
    assert_eq!(got[0].0, "orders-enriched.eu");
    assert_eq!(got[0].1["total"], 6.0);
    assert_eq!(got[1].0, "orders-enriched.unknown");
    assert_eq!(got[1].1["total"], 0);
    let dead = &read_stream(&js, "ORDERS_DEAD_LETTERS").await[0];
    assert_eq!(&dead.payload[..], b"not json");
    let headers = dead.headers.as_ref().unwrap();
    assert_eq!(headers.get("sluice-error-step").unwrap().as_str(), "decode");
    assert_eq!(
        headers.get("sluice-error-source").unwrap().as_str(),
        "jetstream:ORDERS/3 (orders.new)"
    );
    signal(&w, "TERM");
    assert!(wait_exit(&mut w, Duration::from_secs(30)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_to_kafka_sample() {
    let server = NatsServer::start();
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("sensor-readings", 3, 1).unwrap();
    cluster
        .create_topic("sensor-readings-dead-letters", 1, 1)
        .unwrap();
    let readings = Collector::start(&brokers, "sensor-readings", 3);
    let dead = Collector::start(&brokers, "sensor-readings-dead-letters", 1);

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("w.log");
    let url = server.url();
    let mut w = start(
        "nats-to-kafka.yaml",
        &[
            ("NATS_URL", url.as_str()),
            ("KAFKA_BROKERS", brokers.as_str()),
        ],
        &log,
    );
    wait_for("subscribed", Duration::from_secs(30), || {
        logged(&log, "nats subscribed").then_some(())
    });
    let client = async_nats::connect(server.url()).await.unwrap();
    for p in [r#"{"sensor_id":7,"temp":21.5}"#, "{broken"] {
        client.publish("sensors.paris.7", p.into()).await.unwrap();
    }
    client.flush().await.unwrap();
    wait_for("outputs", Duration::from_secs(60), || {
        (readings.count() == 1 && dead.count() == 1).then_some(())
    });
    let r = &readings.records()[0];
    assert_eq!(r.key.as_deref(), Some("7"));
    assert_eq!(
        r.json(),
        serde_json::json!({"sensor_id": 7, "temp": 21.5, "site": "paris"})
    );
    let d = &dead.records()[0];
    assert_eq!(d.payload, b"{broken");
    assert_eq!(d.header("sluice-error-step"), Some("decode"));
    assert_eq!(
        d.header("sluice-error-source"),
        Some("nats:sensors.paris.7")
    );
    signal(&w, "TERM");
    assert!(wait_exit(&mut w, Duration::from_secs(30)).success());
}
