//! Inputs: the registry, each input listed once. An input is a module with a configuration
//! implementing [`InputSpec`] and a built form implementing [`BuiltInput`] (docs/components.md).

pub mod component;
mod context;
mod error;
pub mod intake;
mod lines;
pub mod submit;

// The inputs, each listed again in the registry below.
pub mod file;
pub mod generate;
pub mod http;
pub mod jetstream;
pub mod kafka;
pub mod nats;
pub mod stdin;

pub use component::{BuiltInput, InputSpec};
pub use context::SourceContext;
pub use error::SourceError;

use serde::Deserialize;

use crate::codec::CodecConfig;
use crate::config::{Build, BuildContext, Validator};

/// Declares the inputs: each line names the input's module (declared above), its variant
/// (whose snake_case name is its key in the pipeline file) and its configuration type; the
/// line's doc comment is the input's description in `sluice schema`.
macro_rules! inputs {
    ($( $(#[$doc:meta])* $module:ident: $variant:ident($config:ident), )*) => {
        /// Where a pipeline reads events: exactly one of these keys.
        #[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum InputConfig {
            $( $(#[$doc])* $variant($module::$config), )*
        }

        /// An input built from its configuration: everything that can be known without
        /// connecting is checked, and what it runs with is prepared.
        #[derive(Debug, Clone)]
        pub enum Input {
            $( $(#[$doc])* $variant(Box<<$module::$config as InputSpec>::Built>), )*
            /// Events handed to the pipeline from outside it (Lambda invocations), in place of
            /// the configured input.
            Handoff(submit::Handoff),
        }

        impl InputConfig {
            /// The input kind, as written in the file.
            pub fn kind(&self) -> &'static str {
                match self { $( InputConfig::$variant(_) => <$module::$config>::KIND, )* }
            }

            /// Whether the input talks to a broker or serves a port, and so has a state for
            /// readiness (connected, listening).
            pub fn remote(&self) -> bool {
                match self { $( InputConfig::$variant(_) => <$module::$config>::REMOTE, )* }
            }

            /// How payloads of this input are decoded.
            pub fn codec(&self) -> CodecConfig {
                match self { $( InputConfig::$variant(c) => InputSpec::codec(c), )* }
            }

            /// Builds the input without connecting. Every problem is reported under `path`;
            /// None when it cannot be built.
            pub fn build(
                &self,
                path: &str,
                cx: BuildContext<'_>,
                v: &mut Validator<'_>,
            ) -> Option<Input> {
                let path = format!("{path}.{}", self.kind());
                Some(match self {
                    $( InputConfig::$variant(c) => Input::$variant(Box::new(InputSpec::build(c, Build { path: &path, cx, v })?)), )*
                })
            }
        }

        impl Input {
            /// Reads until the input ends, the shutdown token is cancelled, or the pipeline
            /// stops taking events.
            pub async fn run(self, ctx: SourceContext) -> Result<(), SourceError> {
                match self {
                    $( Input::$variant(i) => BuiltInput::run(*i, ctx).await, )*
                    Input::Handoff(h) => h.run(ctx).await,
                }
            }
        }
    };
}

inputs! {
    /// JSON lines (or raw lines) from standard input; the pipeline ends at end of input.
    stdin: Stdin(StdinConfig),
    /// Lines of a file; the pipeline ends at end of file unless `follow` is set.
    file: File(FileConfig),
    /// Synthetic events from a jq template, at a given rate and count.
    generate: Generate(GenerateConfig),
    /// A Kafka consumer group.
    kafka: Kafka(KafkaInputConfig),
    /// Core NATS subjects, optionally in a queue group (at-most-once).
    nats: Nats(NatsInputConfig),
    /// A JetStream durable pull consumer.
    jetstream: Jetstream(JetStreamInputConfig),
    /// An HTTP server taking events in POST requests.
    http: HttpServer(HttpServerConfig),
}
