//! How clients retry what failed for a passing reason (a broker or registry down, a timeout):
//! the settings, exponential backoff, and jitter.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{HumanDuration, Validator};

/// How outputs retry deliveries that failed for a passing reason (the broker is down or slow).
/// Failures that will not pass (a record too large, a subject no stream captures) follow the
/// error policy at once.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Wait before the first retry; each further retry waits twice as long, up to `max_backoff`,
    /// with random jitter (between half and all of it) so replicas do not retry in step.
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff: HumanDuration,
    /// Longest wait between two attempts; also the probe interval while the circuit is open.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: HumanDuration,
    /// Attempts per event before it follows the error policy (dead letter, drop or stop);
    /// 0 retries until delivered.
    #[serde(default)]
    pub max_attempts: u32,
    /// Failed attempts in a row after which the circuit opens (logged, and the
    /// `sluice_output_circuit_open` gauge is 1).
    #[serde(default = "default_open_after")]
    pub open_after: u32,
    /// How long the circuit may stay open before `/health/ready` reports the output as failing.
    #[serde(default = "default_unready_after")]
    pub unready_after: HumanDuration,
}

// Short enough that a blip costs little, long enough not to hammer a broker that is restarting.
fn default_initial_backoff() -> HumanDuration {
    HumanDuration(Duration::from_millis(100))
}

// A down output is probed every 10 s at most: it resumes within seconds of coming back.
fn default_max_backoff() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

// Three failed attempts in a row (about 0.3 s to 0.7 s of backoff) is no longer a blip.
fn default_open_after() -> u32 {
    3
}

// Two or three readiness probes' worth of failing is worth an operator's attention.
fn default_unready_after() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
            max_attempts: 0,
            open_after: default_open_after(),
            unready_after: default_unready_after(),
        }
    }
}

impl RetryConfig {
    /// Checks values serde cannot.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        if self.initial_backoff.0.is_zero() {
            v.error_at(
                &format!("{path}.initial_backoff"),
                "initial_backoff must be more than 0",
            );
        }
        if self.max_backoff.0 < self.initial_backoff.0 {
            v.error_at(
                &format!("{path}.max_backoff"),
                "max_backoff must not be less than initial_backoff",
            );
        }
        if self.open_after == 0 {
            v.error_at(
                &format!("{path}.open_after"),
                "open_after must be at least 1",
            );
        }
    }

    /// The wait after `failures` failed attempts in a row (1 or more), before jitter.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        self.initial_backoff
            .0
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max_backoff.0)
    }
}

/// Between half and all of `delay`, at random.
pub fn jitter(delay: Duration) -> Duration {
    // RandomState is seeded per instance: random enough to spread retries, no extra crate.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let half = delay / 2;
    half + half.mul_f64((random >> 11) as f64 / (1u64 << 53) as f64)
}
