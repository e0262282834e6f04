//! Test cases of a pipeline (`tests:` in its file, or a sibling `NAME.test.yaml`): events to put
//! in, and what must come out. `sluice test` runs them.

use indexmap::IndexMap;
use serde::Deserialize;

use crate::config::Validator;

/// A file of test cases beside a pipeline file: `NAME.test.yaml` for `NAME.yaml`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The test cases.
    pub tests: Vec<TestCase>,
}

/// One test case: events put in where the input would read them, and what must come out.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// What the case checks, shown in reports.
    pub name: String,
    /// Variables for `${VAR}` in the pipeline file, taken before the process environment: a file
    /// that needs broker addresses loads without them being set.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// The events read, in order.
    pub input: Vec<TestEvent>,
    /// The events the output must receive, in order. Not given: not checked; `[]`: none.
    #[serde(default)]
    pub output: Option<Vec<Expected>>,
    /// The events that must go to the error policy (`errors:`), in order. Not given: not checked;
    /// `[]`: none.
    #[serde(default)]
    pub dead_letters: Option<Vec<Expected>>,
    /// How many inputs must produce nothing (filtered out).
    #[serde(default)]
    pub filtered: Option<u64>,
}

/// An event put in.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestEvent {
    /// The payload as JSON (written as YAML).
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
    /// The payload as text, exactly (for raw payloads, or JSON that is not valid).
    #[serde(default)]
    pub payload_text: Option<String>,
    /// The payload as base64, for bytes that are not text.
    #[serde(default)]
    pub payload_base64: Option<String>,
    /// The record key.
    #[serde(default)]
    pub key: Option<String>,
    /// Headers, in order.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// The timestamp, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// Where the event was read, as `$source` shows it; by default a line of the test.
    #[serde(default)]
    pub source: Option<TestSource>,
}

/// Where a test event was read: one of these keys.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TestSource {
    /// A Kafka record.
    Kafka {
        /// Topic.
        topic: String,
        /// Partition.
        #[serde(default)]
        partition: i32,
        /// Offset.
        #[serde(default)]
        offset: i64,
    },
    /// A core NATS message.
    Nats {
        /// Subject.
        subject: String,
    },
    /// A JetStream message.
    Jetstream {
        /// Stream.
        stream: String,
        /// Subject.
        subject: String,
        /// Stream sequence.
        #[serde(default)]
        sequence: u64,
    },
    /// A line of a file.
    File {
        /// Path.
        path: String,
        /// 1-based line number.
        #[serde(default = "first_line")]
        line: u64,
    },
}

fn first_line() -> u64 {
    1
}

/// What an event that came out must be. Every field given is checked; the others are not.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// The payload, as JSON, exactly.
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
    /// JSON the payload must contain: objects may have more keys, arrays more items.
    #[serde(default)]
    pub payload_contains: Option<serde_json::Value>,
    /// The payload as text, exactly.
    #[serde(default)]
    pub payload_text: Option<String>,
    /// The key, as text.
    #[serde(default)]
    pub key: Option<String>,
    /// Headers the event must have (it may have more).
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// The destination a `route` step set (topic or subject).
    #[serde(default)]
    pub destination: Option<String>,
    /// The partition a `route` step set.
    #[serde(default)]
    pub partition: Option<i32>,
    /// The timestamp, in milliseconds.
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// A jq program run on the payload that must yield `true`; `$key`, `$headers`, `$timestamp`
    /// and `$source` are bound as in transforms.
    #[serde(default)]
    pub assert: Option<String>,
    /// For dead letters: the step that failed (`decode`, `transforms[1]`, `encode`, ...), as the
    /// `sluice-error-step` header says it.
    #[serde(default)]
    pub step: Option<String>,
    /// For dead letters: text the failure reason must contain.
    #[serde(default)]
    pub reason_contains: Option<String>,
}

impl TestCase {
    /// Checks what serde cannot; `path` is the case (`tests.0`).
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        if self.name.trim().is_empty() {
            v.error_at(&format!("{path}.name"), "name must not be empty");
        }
        for (i, event) in self.input.iter().enumerate() {
            let given = [
                event.payload.is_some(),
                event.payload_text.is_some(),
                event.payload_base64.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                v.error_at(
                    &format!("{path}.input.{i}"),
                    "give exactly one of payload, payload_text and payload_base64",
                );
            }
            if let Some(text) = &event.payload_base64 {
                use base64::Engine;
                if let Err(e) = base64::engine::general_purpose::STANDARD.decode(text) {
                    v.error_at(
                        &format!("{path}.input.{i}.payload_base64"),
                        format!("not base64: {e}"),
                    );
                }
            }
        }
        for (list, expected) in [
            ("output", &self.output),
            ("dead_letters", &self.dead_letters),
        ] {
            for (i, e) in expected.iter().flatten().enumerate() {
                let at = format!("{path}.{list}.{i}");
                if list == "output" && (e.step.is_some() || e.reason_contains.is_some()) {
                    v.error_at(&at, "step and reason_contains are for dead_letters only");
                }
                if let Some(program) = &e.assert
                    && let Err(errors) = crate::transform::program::compile(program)
                {
                    let messages: Vec<String> = errors.into_iter().map(|e| e.message).collect();
                    v.error_at(&format!("{at}.assert"), messages.join("; "));
                }
            }
        }
    }
}
