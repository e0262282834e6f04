//! The `kafka` input: a consumer in a consumer group, committing only delivered offsets.
//!
//! The consumer runs on its own thread (librdkafka's poll loop and rebalance callbacks are
//! blocking). Each assigned partition is a lane with an [`OrderedTracker`]: the committed offset
//! only moves past inputs whose outputs are all delivered. On revocation the consumer waits for
//! the revoked partitions' in-flight events, commits what is done, and forgets the lanes, so a
//! late acknowledgement can never commit over the partition's new owner.

mod consume;
mod context;
mod convert;
mod lag;
mod lanes;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Deserialize;

use consume::Loop;
use context::{KafkaContext, State};
use lag::Lag;
use lanes::Lanes;

use super::{BuiltInput, InputSpec};
use super::{SourceContext, SourceError};
use crate::client::kafka::{BrokerLink, checked_client, kafka_config, with_current_log_level};
use crate::codec::CodecConfig;
use crate::config::{Build, HumanDuration};
use crate::observe::events::emit;
use crate::observe::events::kafka_input::{ConsumerClosed, Subscribed};

kafka_config! {
    /// Reads topics as a member of a consumer group; replicas with the same `group_id` share the
    /// partitions.
    pub struct KafkaInputConfig {
        /// Topics to read. An entry starting with `^` is a regular expression over topic names.
        pub topics: Vec<String>,
        /// Consumer group id.
        pub group_id: String,
        /// Where a group with no committed offset starts: `earliest` or `latest`.
        #[serde(default)]
        pub start_from: StartFrom,
        /// How often offsets of delivered events are committed (also on rebalance and shutdown).
        #[serde(default = "default_commit_interval")]
        pub commit_interval: HumanDuration,
        /// Longest a fetch waits on the broker for records (librdkafka's `fetch.wait.max.ms`).
        /// Apache Kafka answers as soon as it has records, but some Kafka-protocol brokers (and
        /// librdkafka's mock cluster) hold every fetch for its whole wait: there it bounds how late
        /// a new event is read.
        #[serde(default = "default_fetch_wait")]
        pub fetch_wait: HumanDuration,
        /// How often the `sluice_kafka_consumer_lag` of the assigned partitions is asked of the
        /// brokers (high watermarks and the group's committed offsets), besides at once when a
        /// partition is assigned; statistics and commits update it in between.
        #[serde(default = "default_lag_interval")]
        pub lag_interval: HumanDuration,
        /// `json`, `raw`, `avro: {...}` or `protobuf: {...}` (see "Avro and Protobuf").
        #[serde(default)]
        pub codec: CodecConfig,
    }
    options: "librdkafka consumer properties (see the librdkafka documentation)."
}

/// Start position of a new consumer group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    /// The oldest retained record.
    #[default]
    Earliest,
    /// Only records produced after the group first joins.
    Latest,
}

// librdkafka's auto-commit default is 5 s; committing delivered offsets as often keeps replays
// after a crash as short as users expect from a Kafka consumer.
fn default_commit_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(5))
}

// librdkafka's default is 500 ms; Vector uses 100 ms. Measured on tansu (BENCHMARKS.md, fetch
// waits): 100 ms makes events of a live topic read 2.5 to 4 times sooner than 500 ms does,
// drains a backlog at 70 to 85% of the speed, and costs 0.05% of a core more while idle.
fn default_fetch_wait() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(100))
}

// Prometheus scrapes every 15 to 60 s and autoscalers read the lag every 15 to 30 s (KEDA's
// default polling interval is 30 s); 5 s keeps each scrape fresh at a few small requests per
// interval, and matches the statistics interval sluice sets.
fn default_lag_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(5))
}

/// A `kafka` input, built: its librdkafka configuration checked.
#[derive(Debug, Clone)]
pub struct KafkaInput {
    config: KafkaInputConfig,
    client: ClientConfig,
}

/// How long a revocation waits for the revoked partitions' in-flight events before committing
/// what is done and letting the partitions go. The whole group waits for this callback, so it is
/// kept well under the default `max.poll.interval.ms` (300 s) and rebalance timeouts.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The librdkafka consumer configuration of a pipeline.
pub fn consumer_config(config: &KafkaInputConfig, pipeline: &str) -> ClientConfig {
    let start_from = match config.start_from {
        StartFrom::Earliest => "earliest",
        StartFrom::Latest => "latest",
    };
    config.connection.client_config(
        pipeline,
        [
            ("group.id", config.group_id.clone()),
            ("enable.auto.commit", "false".into()),
            ("enable.auto.offset.store", "false".into()),
            ("auto.offset.reset", start_from.into()),
            ("partition.assignment.strategy", "cooperative-sticky".into()),
            (
                "fetch.wait.max.ms",
                config.fetch_wait.0.as_millis().to_string(),
            ),
        ],
    )
}

fn consume(
    input: &KafkaInput,
    ctx: &SourceContext,
    runtime: tokio::runtime::Handle,
) -> Result<(), SourceError> {
    let pipeline: Arc<str> = Arc::from(ctx.telemetry.pipeline());
    let (acks, ack_rx) = ctx.pipeline.ack_channel();
    let config = &input.config;
    let (lag, nudged) = Lag::new(pipeline.clone(), config.start_from);
    lag::spawn_probe(&input.client, &lag, nudged, config.lag_interval.0)?;
    let context = KafkaContext {
        state: Mutex::new(State::new(
            Lanes::new(pipeline.clone()),
            ack_rx,
            runtime.clone(),
            ctx.pipeline.clone(),
            lag.clone(),
        )),
        link: BrokerLink::new(ctx.link.clone(), &pipeline, "consumer"),
        lag: lag.clone(),
    };
    let consumer: BaseConsumer<KafkaContext> = with_current_log_level(&input.client)
        .create_with_context(context)
        .map_err(|e| SourceError::KafkaClient(e.into()))?;
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(SourceError::Kafka)?;
    emit(Subscribed {
        pipeline: &pipeline,
        topics: &config.topics,
        group: &config.group_id,
    });
    let result =
        Loop::new(&consumer, ctx, acks, runtime, config.commit_interval.0).run(ctx.drain_timeout);
    consumer.unsubscribe();
    // Dropping the consumer leaves the group; the final revocation runs here.
    drop(consumer);
    lag.clear();
    emit(ConsumerClosed {
        pipeline: &pipeline,
    });
    result
}

fn ended(what: &'static str) -> SourceError {
    SourceError::Ended {
        input: "kafka",
        what,
    }
}

impl InputSpec for KafkaInputConfig {
    const KIND: &'static str = "kafka";
    const REMOTE: bool = true;
    type Built = KafkaInput;

    fn codec(&self) -> CodecConfig {
        self.codec.clone()
    }

    fn build(&self, b: Build<'_, '_>) -> Option<KafkaInput> {
        let Build { path, cx, v } = b;
        let before = v.errors.len();
        self.connection.check(
            &["group.id", "bootstrap.servers", "enable.auto.offset.store"],
            path,
            v,
        );
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            v.error_at(
                &format!("{path}.topics"),
                "topics must list at least one non-empty topic name or ^regex",
            );
        }
        if self.group_id.trim().is_empty() {
            v.error_at(&format!("{path}.group_id"), "group_id must not be empty");
        }
        let client = checked_client(consumer_config(self, cx.pipeline), before, path, v)?;
        Some(KafkaInput {
            config: self.clone(),
            client,
        })
    }
}

impl BuiltInput for KafkaInput {
    /// Consumes until shutdown, then waits for in-flight events and commits.
    async fn run(self, ctx: SourceContext) -> Result<(), SourceError> {
        self.config
            .connection
            .security()
            .warn(ctx.telemetry.pipeline());
        let runtime = tokio::runtime::Handle::current();
        let thread = std::thread::Builder::new()
            .name(format!("{}-kafka", ctx.telemetry.pipeline()))
            .spawn(move || consume(&self, &ctx, runtime))
            .map_err(|source| SourceError::Io {
                input: "kafka",
                path: None,
                source,
            })?;
        // Wait for the thread without blocking the runtime.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(thread.join());
        });
        match rx.await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ended("the consumer thread panicked")),
            Err(_) => Err(ended("the consumer thread vanished")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::InputConfig;

    fn fetch_wait(input: &str) -> Option<String> {
        let text = format!("input:\n  kafka:\n{input}output: {{stdout: {{}}}}\nerrors: drop\n");
        let config =
            crate::pipeline::load_str(std::path::Path::new("t.yaml"), &text, &|_: &str| None)
                .expect("valid pipeline")
                .config;
        let InputConfig::Kafka(kafka) = &config.input else {
            panic!("a kafka input");
        };
        consumer_config(kafka, "t")
            .get("fetch.wait.max.ms")
            .map(str::to_string)
    }

    #[test]
    fn fetches_wait_100_ms_unless_the_file_says_otherwise() {
        let base = "    brokers: b:9092\n    topics: [t]\n    group_id: g\n";
        assert_eq!(fetch_wait(base).as_deref(), Some("100"));
        assert_eq!(
            fetch_wait(&format!("{base}    fetch_wait: 20ms\n")).as_deref(),
            Some("20")
        );
        // librdkafka's own property, in `options`, wins.
        assert_eq!(
            fetch_wait(&format!(
                "{base}    fetch_wait: 20ms\n    options: {{fetch.wait.max.ms: \"7\"}}\n"
            ))
            .as_deref(),
            Some("7")
        );
    }
}
