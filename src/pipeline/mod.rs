//! Pipeline files: the schema of one pipeline (input, transforms, output, error policy,
//! settings) and loading it, with every error at once.

pub mod cases;
mod load;
pub mod worker;

pub use load::{load_file, load_files, load_str, warnings};

use std::path::PathBuf;
use std::time::Duration;

use marked_yaml::Node;
use serde::Deserialize;

use crate::config::{BuildContext, ByteSize, HumanDuration, Validator};
use crate::sink::{Output, OutputConfig};
use crate::source::{Input, InputConfig};
use crate::transform::TransformConfig;

/// One pipeline file: read from one input, transform, write to one output.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Name used in logs, metrics and dead-letter headers. Defaults to the file name without
    /// its extension.
    #[serde(default)]
    pub name: Option<String>,
    /// Where events come from: exactly one input kind.
    pub input: InputConfig,
    /// Steps applied in order to every event. Empty means events pass through unchanged.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    /// Where transformed events go: exactly one output kind.
    pub output: OutputConfig,
    /// What happens to an event that cannot be processed (malformed payload, failing transform,
    /// rejected by the output): `drop`, `stop`, or `output: {...}` for a dead-letter output.
    pub errors: ErrorPolicy,
    /// Batching, parallelism and shutdown settings; every field has a default.
    #[serde(default)]
    pub settings: Settings,
    /// Test cases `sluice test` runs: events in, and what must come out.
    #[serde(default)]
    pub tests: Vec<cases::TestCase>,
}

/// Where failed events go.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ErrorPolicy {
    /// Count and log the event, then acknowledge its input: the event is gone.
    Drop,
    /// Stop the pipeline at the first failed event, without acknowledging it; the process exits
    /// non-zero. With Kafka or JetStream the event is read again on the next start.
    Stop,
    /// Send the original event, with headers saying what failed, to this output (the dead-letter
    /// output). Its input is acknowledged only once the dead letter is delivered.
    Output(Box<OutputConfig>),
}

/// Runtime settings of one pipeline.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Most events moved between stages at once. Larger batches cost fewer hand-offs per event;
    /// smaller ones lower latency.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Threads that run transforms. Batches are processed in parallel and put back in input
    /// order, so order is kept whatever this is. Default: the number of CPUs.
    #[serde(default)]
    pub workers: Option<usize>,
    /// Most batches between two stages (each edge is a bounded channel): bounds memory.
    #[serde(default = "default_channel_batches")]
    pub channel_batches: usize,
    /// How long a graceful shutdown may take to finish in-flight events, deliver and
    /// acknowledge them, before the process exits anyway.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: HumanDuration,
    /// Most events one input may turn into (jq fan-out); an input over it fails and follows the
    /// error policy. Guards against programs like `repeat(.)`.
    #[serde(default = "default_max_fanout")]
    pub max_fanout: usize,
    /// Largest event accepted, read or written (`1MiB`, `512KiB`, or a number of bytes). A larger
    /// one fails and follows the error policy (step `limits` when read, `encode` when a
    /// transform makes it).
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: ByteSize,
    /// Most bytes of inputs read and not yet finished (each input's payload plus 256 bytes for
    /// its bookkeeping); reading pauses at this much until events are delivered. Bounds memory
    /// whatever the event sizes. Default: 32 MiB, or more when an output gathers more into one
    /// write (an object store output's `batch.max_bytes`) or `max_event_bytes` is larger.
    #[serde(default)]
    pub max_in_flight_bytes: Option<ByteSize>,
    /// How the output and the dead-letter output retry deliveries that failed for a passing
    /// reason (broker down, timeout), and when the circuit opens.
    #[serde(default)]
    pub retry: crate::sink::retry::RetryConfig,
}

// Far above any sane fan-out, far below what exhausts memory.
fn default_max_fanout() -> usize {
    10_000
}

// The default largest message of Kafka (message.max.bytes) and NATS (max_payload).
fn default_max_event_bytes() -> ByteSize {
    ByteSize(1024 * 1024)
}

// Far above what the bounded channels hold of ordinary events (4 x 500 x 1 KiB per edge), so it
// only bites when events are large or the output slow; measured against the raw client loops in
// BENCHMARKS.md ("The in-flight budget"): on tansu 64 MiB held 70-80 MiB more than the raw loop.
const DEFAULT_MAX_IN_FLIGHT_BYTES: usize = 32 * 1024 * 1024;

// 500 events amortise a channel hand-off and a write call without adding noticeable latency.
fn default_batch_size() -> usize {
    500
}

// Four batches per edge keeps every stage busy while bounding memory to a few thousand events.
fn default_channel_batches() -> usize {
    4
}

// Kubernetes' default terminationGracePeriodSeconds is 30 s; stay below it.
fn default_shutdown_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(25))
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch_size: default_batch_size(),
            workers: None,
            channel_batches: default_channel_batches(),
            shutdown_timeout: default_shutdown_timeout(),
            max_fanout: default_max_fanout(),
            max_event_bytes: default_max_event_bytes(),
            max_in_flight_bytes: None,
            retry: Default::default(),
        }
    }
}

impl PipelineConfig {
    /// The in-flight budget in bytes: `settings.max_in_flight_bytes`, or by default 32 MiB,
    /// raised to one event of `max_event_bytes` and to what an output gathers into one write (an
    /// object store output's `batch.max_bytes`), so that the budget never cuts such a write
    /// short.
    pub fn in_flight_budget(&self) -> usize {
        if let Some(budget) = self.settings.max_in_flight_bytes {
            return budget.0;
        }
        let dead_letter = match &self.errors {
            ErrorPolicy::Output(out) => out.gathers_bytes(),
            _ => 0,
        };
        DEFAULT_MAX_IN_FLIGHT_BYTES
            .max(self.settings.max_event_bytes.0)
            .max(self.output.gathers_bytes())
            .max(dead_letter)
    }
}

impl Settings {
    /// Worker threads to run, resolving the default.
    pub fn worker_count(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }
}

/// The JSON Schema (draft 2020-12) of pipeline files, made from the types the loader reads
/// them into, with their documentation and defaults: for editors' completion and checks.
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(PipelineConfig);
    schema.insert("title".into(), "sluice pipeline file".into());
    schema.to_value()
}

/// The JSON Schema (draft 2020-12) of test files (`NAME.test.yaml`), as `schema` is of pipeline
/// files.
pub fn test_file_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(cases::TestFile);
    schema.insert("title".into(), "sluice test file".into());
    schema.to_value()
}

/// A validated pipeline, ready to build.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The file it came from.
    pub file: PathBuf,
    /// The pipeline's name (from the file, or the file stem).
    pub name: String,
    /// Where the file sets `name`, as a 1-based line and column, if it does.
    pub name_at: Option<(usize, usize)>,
    /// The parsed configuration.
    pub config: PipelineConfig,
    /// Its input and outputs, built.
    pub components: Components,
}

impl Pipeline {
    /// What the pipeline is made of, in one line (`run --dry-run`).
    pub fn describe(&self) -> String {
        let c = &self.config;
        let errors = match &c.errors {
            ErrorPolicy::Drop => "drop".to_string(),
            ErrorPolicy::Stop => "stop".to_string(),
            ErrorPolicy::Output(out) => format!("dead letters to {}", out.kind()),
        };
        format!(
            "pipeline `{}`: {} input, {} transforms, {} output, errors: {errors}",
            self.name,
            c.input.kind(),
            c.transforms.len(),
            c.output.kind()
        )
    }
}

/// The input and outputs of a pipeline, built from its configuration before anything runs.
#[derive(Debug, Clone)]
pub struct Components {
    /// Where events come from.
    pub input: Input,
    /// Where transformed events go.
    pub output: Output,
    /// Where failed events go, under `errors: output`.
    pub dead_letter: Option<Output>,
    /// What the input's payloads are decoded with and results encoded as.
    pub payloads: crate::codec::payloads::Payloads,
}

impl PipelineConfig {
    /// Checks the whole configuration and builds the pipeline's input and outputs: every
    /// problem goes to `v`; None when any was found.
    fn build(&self, pipeline: &str, v: &mut Validator<'_>) -> Option<Components> {
        if let Some(name) = &self.name {
            if name.trim().is_empty() {
                v.error_at("name", "name must not be empty");
            } else if name.chars().any(char::is_control) {
                v.error_at(
                    "name",
                    "name must not contain line breaks or other control characters",
                );
            }
        }
        let cx = BuildContext {
            pipeline,
            max_event_bytes: self.settings.max_event_bytes.0,
        };
        let input = self.input.build("input", cx, v);
        for (i, t) in self.transforms.iter().enumerate() {
            t.validate(&format!("transforms.{i}"), v);
        }
        let mut output = self.output.build("output", cx, v);
        let dead_letter = match &self.errors {
            ErrorPolicy::Output(out) => out.build("errors.output", cx, v).map(Some),
            _ => Some(None),
        };
        if let ErrorPolicy::Output(out) = &self.errors
            && out.format().is_some()
        {
            v.error_at(
                &format!("errors.output.{}.format", out.kind()),
                "a dead-letter output writes the original payloads: `format` does not apply",
            );
        }
        let payloads = crate::codec::payloads::Payloads::build(
            &self.input.codec(),
            &format!("input.{}.codec", self.input.kind()),
            self.output.format().as_deref(),
            &format!("output.{}.format", self.output.kind()),
            self.output.destination(),
            v,
        );
        if let (Some(Output::File(file)), Some(payloads)) = (&mut output, &payloads) {
            file.frame(payloads, "output.file", v);
        }
        self.settings.validate(v);
        for (i, case) in self.tests.iter().enumerate() {
            case.validate(&format!("tests.{i}"), v);
        }
        if !v.errors.is_empty() {
            return None;
        }
        Some(Components {
            input: input?,
            output: output?,
            dead_letter: dead_letter?,
            payloads: payloads?,
        })
    }
}

/// The checks of `PipelineConfig::build` for a file that does not read as a whole (a required
/// key is missing): each section that reads on its own is built, so that the missing key does
/// not hide a broken jq program or an unreadable file elsewhere. Its shape errors are already
/// reported by the whole file's reading.
pub(crate) fn check_sections(tree: &Node, pipeline: &str, v: &mut Validator<'_>) {
    fn read<T: serde::de::DeserializeOwned>(tree: &Node, key: &str) -> Option<T> {
        let node = tree.as_mapping()?.get(key)?.clone();
        crate::config::yaml::deserialize::<T>(node).value
    }
    let settings = read::<Settings>(tree, "settings");
    let cx = BuildContext {
        pipeline,
        max_event_bytes: settings.as_ref().map_or_else(
            || Settings::default().max_event_bytes.0,
            |s| s.max_event_bytes.0,
        ),
    };
    if let Some(input) = read::<InputConfig>(tree, "input") {
        input.build("input", cx, v);
    }
    let steps = tree
        .as_mapping()
        .and_then(|m| m.get("transforms"))
        .and_then(Node::as_sequence);
    for (i, step) in steps.iter().flat_map(|s| s.iter()).enumerate() {
        if let Some(t) = crate::config::yaml::deserialize::<TransformConfig>(step.clone()).value {
            t.validate(&format!("transforms.{i}"), v);
        }
    }
    if let Some(output) = read::<OutputConfig>(tree, "output") {
        output.build("output", cx, v);
    }
    if let Some(ErrorPolicy::Output(out)) = read::<ErrorPolicy>(tree, "errors") {
        out.build("errors.output", cx, v);
    }
    if let Some(settings) = settings {
        settings.validate(v);
    }
}

impl Settings {
    fn validate(&self, v: &mut Validator<'_>) {
        let s = self;
        if s.batch_size == 0 {
            v.error_at("settings.batch_size", "batch_size must be at least 1");
        }
        if s.channel_batches == 0 {
            v.error_at(
                "settings.channel_batches",
                "channel_batches must be at least 1",
            );
        }
        if s.max_fanout == 0 {
            v.error_at("settings.max_fanout", "max_fanout must be at least 1");
        }
        if s.workers == Some(0) {
            v.error_at("settings.workers", "workers must be at least 1");
        }
        if s.max_event_bytes.0 == 0 {
            v.error_at(
                "settings.max_event_bytes",
                "max_event_bytes must be more than 0",
            );
        }
        if s.max_in_flight_bytes
            .is_some_and(|b| b.0 < s.max_event_bytes.0)
        {
            v.error_at(
                "settings.max_in_flight_bytes",
                "max_in_flight_bytes must be at least max_event_bytes",
            );
        }
        s.retry.validate("settings.retry", v);
    }
}
