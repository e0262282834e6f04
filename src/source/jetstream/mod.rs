//! The `jetstream` input: a durable pull consumer shared by every replica.

mod protocol;
mod reader;
mod setup;

use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::Notify;

use super::{BuiltInput, InputSpec};
use super::{SourceContext, SourceError};
use crate::client::nats::{Connector, NatsError, check_subject, nats_config};
use crate::codec::CodecConfig;
use crate::config::Build;
use crate::config::HumanDuration;
use crate::observe::events::emit;
use crate::observe::events::jetstream::{AcksMayBeLost, Consuming, StoppedBeforeConsuming};
use reader::Reader;

nats_config! {
    /// Pulls from a durable consumer of a stream; replicas using the same consumer share the work.
    /// A message is acknowledged only after everything derived from it is delivered.
    pub struct JetStreamInputConfig {
        /// Stream to read.
        pub stream: String,
        /// Durable consumer name.
        pub consumer: String,
        /// Use the existing consumer as it is, instead of creating or updating it from the settings
        /// below.
        #[serde(default)]
        pub bind: bool,
        /// Subjects of the stream this consumer receives; empty means all.
        #[serde(default)]
        pub filter_subjects: Vec<String>,
        /// Where a new consumer starts: `all`, `new`, `last` or `last_per_subject`.
        #[serde(default)]
        pub deliver_policy: DeliverPolicy,
        /// How long the server waits for an acknowledgement before redelivering. Slow events get
        /// in-progress acks so they are not redelivered while still being worked on.
        #[serde(default = "default_ack_wait")]
        pub ack_wait: HumanDuration,
        /// Deliveries of one message before it is dead-lettered with its last failure reason.
        #[serde(default = "default_max_deliver")]
        pub max_deliver: i64,
        /// Most unacknowledged messages the consumer hands out (across replicas); default 1000.
        /// Holding this many, a replica asks the outputs that gather events into larger writes (an
        /// object store output) to write what they hold, so such a write holds at most this many
        /// events: set it to the output's `batch.max_events` for fuller objects.
        #[serde(default)]
        pub max_ack_pending: Option<i64>,
        /// Delays before redelivery of a message whose output failed, by attempt; the last repeats.
        #[serde(default = "default_backoff")]
        pub backoff: Vec<HumanDuration>,
        /// Messages asked for per fetch.
        #[serde(default = "default_fetch_batch")]
        pub fetch_batch: usize,
        /// `json`, `raw`, `avro: {...}` or `protobuf: {...}` (see "Avro and Protobuf").
        #[serde(default)]
        pub codec: CodecConfig,
    }
}

/// Where a new consumer starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliverPolicy {
    /// Every message in the stream.
    #[default]
    All,
    /// Only messages stored after the consumer is created.
    New,
    /// The last message of the stream, then new ones.
    Last,
    /// The last message of each subject, then new ones.
    LastPerSubject,
}

// The JetStream server default.
fn default_ack_wait() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

// Five attempts ride out a short outage of an output without keeping a poison message forever.
fn default_max_deliver() -> i64 {
    5
}

// The JetStream server default.
const DEFAULT_MAX_ACK_PENDING: i64 = 1000;

fn default_backoff() -> Vec<HumanDuration> {
    [1, 5, 30]
        .map(|s| HumanDuration(std::time::Duration::from_secs(s)))
        .to_vec()
}

// Large enough to amortise a round trip, small enough to spread a backlog across replicas.
fn default_fetch_batch() -> usize {
    256
}

impl JetStreamInputConfig {
    /// `max_ack_pending`, or its default.
    pub fn max_ack_pending(&self) -> i64 {
        self.max_ack_pending.unwrap_or(DEFAULT_MAX_ACK_PENDING)
    }

    /// Why an output gathering up to `max_events` events into one write (an object store
    /// output) will gather fewer from this input: the `max_ack_pending` set is lower, and the
    /// output is asked to write whenever the consumer hands out no more. None when unset (its
    /// default then is the server's, and writes are smaller as the README says) or bound (the
    /// consumer's own setting is unknown here).
    pub fn gathering_advice(&self, path: &str, max_events: usize) -> Option<String> {
        let set = self.max_ack_pending.filter(|_| !self.bind)?;
        (usize::try_from(set).ok()? < max_events).then(|| {
            format!(
                "{path}.max_ack_pending ({set}) is below the {max_events} events the output \
                 gathers into one object: each object will hold at most {set} events, written \
                 whenever the consumer hands out no more until they are stored"
            )
        })
    }
}

/// A `jetstream` input, built.
#[derive(Debug, Clone)]
pub struct JetStreamInput {
    config: JetStreamInputConfig,
    connector: Connector,
}

fn read_error(error: impl Into<NatsError>) -> SourceError {
    SourceError::Nats {
        input: "jetstream",
        source: Box::new(error.into()),
    }
}

impl InputSpec for JetStreamInputConfig {
    const KIND: &'static str = "jetstream";
    const REMOTE: bool = true;
    type Built = JetStreamInput;

    fn codec(&self) -> CodecConfig {
        self.codec.clone()
    }

    fn build(&self, b: Build<'_, '_>) -> Option<JetStreamInput> {
        let Build { path, v, .. } = b;
        let connector = self.connection.build(path, v);
        for (field, value) in [("stream", &self.stream), ("consumer", &self.consumer)] {
            if value.is_empty() || value.contains(|c: char| c.is_whitespace() || ".*>".contains(c))
            {
                v.error_at(
                    &format!("{path}.{field}"),
                    format!("{field} must be a name without spaces, `.`, `*` or `>`"),
                );
            }
        }
        for (i, s) in self.filter_subjects.iter().enumerate() {
            check_subject(s, true, &format!("{path}.filter_subjects.{i}"), v);
        }
        if self.max_deliver == 0 || self.max_deliver < -1 {
            v.error_at(
                &format!("{path}.max_deliver"),
                "max_deliver must be at least 1 (or -1 for unlimited)",
            );
        }
        if self.max_ack_pending() < 1 {
            v.error_at(
                &format!("{path}.max_ack_pending"),
                "max_ack_pending must be at least 1",
            );
        }
        if self.fetch_batch == 0 {
            v.error_at(
                &format!("{path}.fetch_batch"),
                "fetch_batch must be at least 1",
            );
        }
        if self.ack_wait.0 < std::time::Duration::from_secs(1) {
            v.error_at(&format!("{path}.ack_wait"), "ack_wait must be at least 1s");
        }
        Some(JetStreamInput {
            config: self.clone(),
            connector: connector?,
        })
    }
}

impl BuiltInput for JetStreamInput {
    /// Consumes until shutdown; then stops pulling, waits for in-flight events (up to the drain
    /// timeout), acknowledges what was delivered and gives back the rest.
    async fn run(self, ctx: SourceContext) -> Result<(), SourceError> {
        let input = &self;
        let config = &input.config;
        let pipeline = ctx.telemetry.pipeline().to_string();
        let reconnected = Arc::new(Notify::new());
        let client = input
            .connector
            .connect_notify(&pipeline, ctx.link.clone(), Some(reconnected.clone()))
            .await
            .map_err(read_error)?;
        let js = async_nats::jetstream::new(client.clone());
        let Some(ack_limit) = config.set_up_until_ready(&js, &ctx).await? else {
            emit(StoppedBeforeConsuming {
                pipeline: &pipeline,
            });
            return Ok(());
        };
        let inbox = client.new_inbox();
        let mut sub = client
            .subscribe(format!("{inbox}.*"))
            .await
            .map_err(read_error)?;
        let (acks, mut ack_rx) = ctx.pipeline.ack_channel();
        let mut r = Reader::new(config, &ctx, client.clone(), js, inbox, acks);
        r.ack_limit = ack_limit;
        emit(Consuming {
            pipeline: &pipeline,
            stream: &config.stream,
            consumer: &config.consumer,
        });
        let result = r.run(&mut sub, &mut ack_rx, &reconnected).await;
        r.finish(&mut ack_rx).await;
        drop(sub);
        if let Err(e) = client.flush().await {
            emit(AcksMayBeLost {
                pipeline: ctx.telemetry.pipeline(),
                error: &e,
            });
        }
        result
    }
}
