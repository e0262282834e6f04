//! Outputs: the registry, each output listed once. An output is a module with a configuration
//! implementing [`OutputSpec`] and a built form implementing [`BuiltOutput`]; docs/components.md
//! says how to add one and which tests it then runs.

pub mod component;
mod context;
pub mod deliver;
mod error;
mod lines;
pub mod retry;

// The outputs, each listed again in the registry below.
#[cfg(test)]
pub mod counting;
pub mod file;
pub mod http;
pub mod jetstream;
pub mod kafka;
pub mod nats;
pub mod object_store;
pub mod stdout;

pub use component::{BuiltOutput, OutputSpec};
pub use context::SinkContext;
pub use error::SinkError;

/// Where an output takes its batches from.
pub type Batches = mpsc::Receiver<Vec<Event>>;
pub(crate) use lines::{LineWriter, encode_lines, resolve_format};

use std::borrow::Cow;

use serde::Deserialize;
use tokio::sync::mpsc;

use crate::codec::schema::FormatConfig;
use crate::config::{Build, BuildContext, Validator};
use crate::event::Event;

/// Declares the outputs: each line names the output's module (declared above), its variant
/// (whose snake_case name is its key in the pipeline file) and its configuration type; the
/// line's doc comment is the output's description in `sluice schema`.
macro_rules! outputs {
    ($( $(#[doc = $doc:literal])* $(#[cfg($cfg:meta)])? $module:ident: $variant:ident($config:ident), )*) => {
        #[doc = "Where a pipeline writes events (or, under `errors:`, dead letters): exactly one of these keys."]
        #[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum OutputConfig {
            $( $(#[doc = $doc])* $(#[cfg($cfg)])? $variant($module::$config), )*
        }

        /// An output built from its configuration: everything that can be known without
        /// connecting is checked, and what it runs with is prepared.
        #[derive(Debug, Clone)]
        pub enum Output {
            $( $(#[doc = $doc])* $(#[cfg($cfg)])? $variant(Box<<$module::$config as OutputSpec>::Built>), )*
        }

        impl OutputConfig {
            /// The output kind, as written in the file.
            pub fn kind(&self) -> &'static str {
                match self { $( $(#[cfg($cfg)])? OutputConfig::$variant(_) => <$module::$config>::KIND, )* }
            }

            /// Whether the output talks to a broker (and so has a connection state for
            /// readiness).
            pub fn remote(&self) -> bool {
                match self { $( $(#[cfg($cfg)])? OutputConfig::$variant(_) => <$module::$config>::REMOTE, )* }
            }

            /// The most payload bytes the output gathers into one write before it writes;
            /// 0 for outputs that write as events come.
            pub fn gathers_bytes(&self) -> usize {
                match self { $( $(#[cfg($cfg)])? OutputConfig::$variant(c) => OutputSpec::gathers_bytes(c), )* }
            }

            /// What the workers encode results as for this output (its `format`), unless JSON.
            pub fn format(&self) -> Option<Cow<'_, FormatConfig>> {
                match self { $( $(#[cfg($cfg)])? OutputConfig::$variant(c) => OutputSpec::format(c), )* }
            }

            /// The topic or subject of events with no destination of their own, where it has
            /// one.
            pub fn destination(&self) -> Option<&str> {
                match self { $( $(#[cfg($cfg)])? OutputConfig::$variant(c) => OutputSpec::destination(c), )* }
            }

            /// Builds the output without connecting. Every problem is reported under `path`;
            /// None when it cannot be built.
            pub fn build(
                &self,
                path: &str,
                cx: BuildContext<'_>,
                v: &mut Validator<'_>,
            ) -> Option<Output> {
                let path = format!("{path}.{}", self.kind());
                Some(match self {
                    $( $(#[cfg($cfg)])? OutputConfig::$variant(c) => Output::$variant(Box::new(OutputSpec::build(c, Build { path: &path, cx, v })?)), )*
                })
            }
        }

        impl Output {
            /// Why the output would refuse an event with this payload before sending it;
            /// None when it would take it. For `sluice eval`.
            pub fn rejects(&self, payload: &bytes::Bytes) -> Option<String> {
                match self { $( $(#[cfg($cfg)])? Output::$variant(o) => BuiltOutput::rejects(&**o, payload), )* }
            }

            /// Delivers batches until the channel closes, completing each event's ack once
            /// delivered.
            pub async fn run(
                self,
                rx: Batches,
                ctx: SinkContext,
            ) -> Result<(), SinkError> {
                match self { $( $(#[cfg($cfg)])? Output::$variant(o) => BuiltOutput::run(*o, rx, ctx).await, )* }
            }
        }
    };
}

outputs! {
    /// Standard output, one event per line.
    stdout: Stdout(StdoutConfig),
    /// A file, appended to: lines, an Avro object container file or length-delimited Protobuf.
    file: File(FileOutputConfig),
    /// A Kafka topic.
    kafka: Kafka(KafkaOutputConfig),
    /// A core NATS subject.
    nats: Nats(NatsOutputConfig),
    /// A JetStream subject, each publish confirmed by the stream.
    jetstream: Jetstream(JetStreamOutputConfig),
    /// An HTTP endpoint, a batch of events per request.
    http: Http(HttpOutputConfig),
    /// Objects in S3, Azure Blob Storage, Google Cloud Storage or local files.
    object_store: ObjectStore(ObjectStoreOutputConfig),
    /// Events kept in a tally shared by name, failing and refusing as told (tests only).
    #[cfg(test)]
    counting: Counting(CountingConfig),
}
