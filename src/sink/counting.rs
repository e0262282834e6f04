//! The `counting` output: keeps the payloads it is given in a tally shared by name, failing and
//! refusing as told. Written from docs/components.md as any new output is; the conformance tests
//! run it first.

use super::Batches;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use bytes::Bytes;
use serde::Deserialize;

use super::deliver::{self, Attempt, Protocol};
use super::retry::Held;
use super::{BuiltOutput, OutputSpec, SinkContext, SinkError};
use crate::config::Build;
use crate::delivery::Cause;
use crate::event::Failed;

/// Keeps each event's payload in the tally `tally`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountingConfig {
    /// The tally's name: tests read it with [`delivered`].
    pub tally: String,
    /// How many attempts fail for a passing reason before attempts succeed.
    #[serde(default)]
    pub fail_first: u32,
    /// A payload the output refuses for what it is.
    #[serde(default)]
    pub refuse: Option<String>,
}

/// The payloads delivered to one tally.
type Tally = Arc<Mutex<Vec<Bytes>>>;

static TALLIES: LazyLock<Mutex<HashMap<String, Tally>>> = LazyLock::new(Default::default);

fn tally(name: &str) -> Tally {
    let mut tallies = TALLIES.lock().unwrap_or_else(|e| e.into_inner());
    tallies.entry(name.to_string()).or_default().clone()
}

/// The payloads the tally `name` holds, in the order they were delivered.
pub fn delivered(name: &str) -> Vec<Bytes> {
    tally(name)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

impl OutputSpec for CountingConfig {
    const KIND: &'static str = "counting";
    type Built = CountingConfig;

    fn build(&self, b: Build<'_, '_>) -> Option<Self> {
        let Build { path, v, .. } = b;
        if self.tally.is_empty() {
            v.error_at(&format!("{path}.tally"), "tally must not be empty");
            return None;
        }
        Some(self.clone())
    }
}

impl BuiltOutput for CountingConfig {
    async fn run(self, rx: Batches, ctx: SinkContext) -> Result<(), SinkError> {
        let counter = Counter {
            tally: tally(&self.tally),
            failures_left: self.fail_first,
            refuse: self.refuse.map(Bytes::from),
        };
        deliver::run(counter, rx, ctx).await
    }
}

/// The running output.
struct Counter {
    tally: Tally,
    failures_left: u32,
    refuse: Option<Bytes>,
}

impl Protocol for Counter {
    async fn attempt(
        &mut self,
        batch: Vec<Held>,
        attempt: &mut Attempt,
        _ctx: &SinkContext,
    ) -> Result<(), SinkError> {
        if self.failures_left > 0 {
            self.failures_left -= 1;
            batch
                .into_iter()
                .for_each(|held| attempt.retry(held, "failing as told".into()));
            return Ok(());
        }
        let mut tally = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        for held in batch {
            if self.refuse.as_ref() == Some(&held.event.payload) {
                let reason = "refused as told";
                attempt.refused(Failed::at_output(held.event, reason, Cause::Event));
            } else {
                tally.push(held.event.payload.clone());
                attempt.delivered(held.event);
            }
        }
        Ok(())
    }
}
