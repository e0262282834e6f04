//! The raw client loops, run as child processes of the suite: the physical limit of each bus
//! on this machine, with no parsing.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

pub fn main(args: &[String]) {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    match arg(0) {
        "kafka" => kafka(
            arg(1),
            arg(2),
            arg(3),
            arg(4).parse().unwrap(),
            args.get(5).map_or("5", String::as_str),
        ),
        "nats" => tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(nats(arg(1), arg(2), arg(3))),
        "nats-reshape" => tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(nats_reshape(arg(1), arg(2), arg(3))),
        "jetstream" => tokio::runtime::Runtime::new().unwrap().block_on(jetstream(
            arg(1),
            arg(2),
            arg(3),
            arg(4).parse().unwrap(),
        )),
        "http" => tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(super::http::raw_server(arg(1), arg(2), arg(3))),
        "s3" => super::s3::raw(arg(1), arg(2), arg(3), arg(4).parse().unwrap()),
        other => panic!("unknown raw loop {other}"),
    }
}

/// Consume, produce the payload and key unchanged, commit every second once every record
/// produced so far is delivered.
/// `fetch_wait_ms`: librdkafka's `fetch.wait.max.ms`.
fn kafka(brokers: &str, input: &str, output: &str, n: u64, fetch_wait_ms: &str) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "raw-loop")
        // The mock cluster answers a fetch only when its wait is up, even with data to
        // give: keep it short, as W5's sluice pipeline does.
        .set("fetch.wait.max.ms", fetch_wait_ms)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    consumer.subscribe(&[input]).unwrap();
    let mut seen = 0u64;
    let mut last_commit = Instant::now();
    while seen < n {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let mut rec = BaseRecord::to(output).payload(m.payload().unwrap_or_default());
            if let Some(k) = m.key() {
                rec = rec.key(k);
            }
            while let Err((_, back)) = producer.send(rec) {
                rec = back;
                producer.poll(Duration::from_millis(1));
            }
            producer.poll(Duration::ZERO);
            seen += 1;
        }
        if last_commit.elapsed() > Duration::from_secs(1) {
            // Every record produced so far is delivered before the offsets are committed.
            // (librdkafka's flush() would do, but here it held the loop for about 100 ms
            // each time, which W5 measured as this loop's p99.)
            while producer.in_flight_count() > 0 {
                producer.poll(Duration::from_millis(1));
            }
            let _ = consumer.commit_consumer_state(CommitMode::Async);
            last_commit = Instant::now();
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let _ = consumer.commit_consumer_state(CommitMode::Sync);
    // Stay until the suite has read this process's CPU and memory, then is killed.
    loop {
        std::thread::park();
    }
}

/// Subscribe and publish each payload unchanged.
async fn nats(url: &str, input: &str, output: &str) {
    let client = async_nats::connect(url).await.unwrap();
    let mut sub = client.subscribe(input.to_string()).await.unwrap();
    let output = async_nats::Subject::from(output);
    while let Some(m) = sub.next().await {
        client.publish(output.clone(), m.payload).await.unwrap();
    }
}

/// Subscribe, reshape each payload as W3's program does (`{id, ts, service, status,
/// latency_ms: (.latency * 1000)}`) with serde_json into and out of structs of just those
/// fields (the others are parsed and skipped; the four kept are passed through unparsed),
/// and publish it: the least a hand-written reshaping loop does.
async fn nats_reshape(url: &str, input: &str, output: &str) {
    use serde_json::value::RawValue;
    #[derive(serde::Deserialize)]
    struct In<'a> {
        #[serde(borrow)]
        id: &'a RawValue,
        #[serde(borrow)]
        ts: &'a RawValue,
        #[serde(borrow)]
        service: &'a RawValue,
        #[serde(borrow)]
        status: &'a RawValue,
        latency: f64,
    }
    #[derive(serde::Serialize)]
    struct Out<'a> {
        id: &'a RawValue,
        ts: &'a RawValue,
        service: &'a RawValue,
        status: &'a RawValue,
        latency_ms: f64,
    }
    let client = async_nats::connect(url).await.unwrap();
    let mut sub = client.subscribe(input.to_string()).await.unwrap();
    let output = async_nats::Subject::from(output);
    while let Some(m) = sub.next().await {
        let Ok(e) = serde_json::from_slice::<In>(&m.payload) else {
            continue;
        };
        let out = Out {
            id: e.id,
            ts: e.ts,
            service: e.service,
            status: e.status,
            latency_ms: e.latency * 1000.0,
        };
        let payload = serde_json::to_vec(&out).unwrap();
        client
            .publish(output.clone(), payload.into())
            .await
            .unwrap();
    }
}

/// Fetch a batch, publish each payload with a `Nats-Msg-Id`, await the stream's acks, then
/// ack the inputs.
async fn jetstream(url: &str, stream: &str, output: &str, n: u64) {
    use async_nats::jetstream::{self, consumer::pull};
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let consumer = js
        .get_stream(stream)
        .await
        .unwrap()
        .create_consumer(pull::Config {
            durable_name: Some("raw".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut done = 0u64;
    while done < n {
        let mut batch = consumer.fetch().max_messages(256).messages().await.unwrap();
        let mut inputs = Vec::with_capacity(256);
        let mut acks = Vec::with_capacity(256);
        while let Some(m) = batch.next().await {
            let m = m.unwrap();
            let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("{stream}/{seq}").as_str());
            acks.push(
                js.publish_with_headers(output.to_string(), headers, m.payload.clone())
                    .await
                    .unwrap(),
            );
            inputs.push(m);
        }
        for a in futures_util::future::join_all(
            acks.into_iter().map(std::future::IntoFuture::into_future),
        )
        .await
        {
            a.unwrap();
        }
        for m in &inputs {
            m.ack().await.unwrap();
        }
        done += inputs.len() as u64;
    }
    // Stay until the suite has read this process's CPU and memory, then is killed.
    std::future::pending::<()>().await;
}
