//! Retrying events an output could not deliver for a passing reason (broker down, timeout), with
//! exponential backoff and jitter, and the circuit breaker that holds the input back meanwhile.
//!
//! While an output retries it takes no new batches, so the bounded channels fill and the input
//! stops reading: events wait on the bus, not in memory. After `open_after` failed attempts in a
//! row the circuit is open: that is logged and exported, the held events are probed every
//! `max_backoff`, and after `unready_after` readiness reports the output as failing. The first
//! delivery closes the circuit again.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::SinkContext;
pub use crate::client::retry::RetryConfig;
use crate::client::retry::jitter;
use crate::delivery::{Cause, MustStop};
use crate::event::Event;
use crate::event::Failed;
use crate::observe::events::output::{CircuitClosed, CircuitOpened, OutputSeries, Retrying};
use crate::observe::health::Link;

/// The longest wait an output may ask for before the next attempt (an HTTP `Retry-After`): past
/// it, the held events are tried anyway.
pub const MAX_ASKED_WAIT: Duration = Duration::from_secs(300);

/// An event being retried, with the attempts it has had.
#[derive(Debug)]
pub struct Held {
    /// The event.
    pub event: Event,
    attempts: u32,
}

impl Held {
    /// An event on its first attempt.
    pub fn new(event: Event) -> Self {
        Held { event, attempts: 0 }
    }
}

/// The retry state of one output: failed attempts in a row, and the circuit.
pub struct Retry {
    config: RetryConfig,
    failures: u32,
    opened: Option<Instant>,
    ready: Arc<Link>,
    series: OutputSeries,
    /// The least the next backoff waits: what the output asked for (an HTTP `Retry-After`).
    at_least: Option<Duration>,
}

impl Retry {
    /// The retry state of the output `ctx` runs.
    pub fn new(ctx: &SinkContext) -> Self {
        let component = ctx.component();
        let pipeline = ctx.telemetry.pipeline();
        Retry {
            config: ctx.retry.clone(),
            failures: 0,
            opened: None,
            ready: ctx
                .health
                .condition(format!("{pipeline}: {component} failing")),
            series: OutputSeries::new(pipeline, component),
            at_least: None,
        }
    }

    /// An attempt delivered something: the output works, the circuit closes.
    pub fn succeeded(&mut self) {
        if let Some(since) = self.opened.take() {
            self.ready.set(true);
            self.series.emit(CircuitClosed {
                open_ms: since.elapsed().as_millis() as u64,
                failed_attempts: self.failures,
            });
        }
        self.failures = 0;
    }

    /// The next backoff waits at least `wait` (what the output asked for, up to
    /// [`MAX_ASKED_WAIT`]).
    pub fn wait_at_least(&mut self, wait: Duration) {
        let wait = wait.min(MAX_ASKED_WAIT);
        self.at_least = Some(self.at_least.map_or(wait, |w| w.max(wait)));
    }

    /// Whether the circuit is open.
    pub fn is_open(&self) -> bool {
        self.opened.is_some()
    }

    /// After an attempt: `failed` are the events that could not be delivered for a passing
    /// reason. Events out of attempts follow the error policy; the rest are returned for the next
    /// attempt, after the backoff. An empty `failed` is a success.
    pub async fn after_attempt(
        &mut self,
        failed: Vec<(Held, String)>,
        ctx: &SinkContext,
    ) -> Result<Vec<Held>, MustStop> {
        if failed.is_empty() {
            self.succeeded();
            return Ok(Vec::new());
        }
        self.failures += 1;
        let mut again = Vec::with_capacity(failed.len());
        let mut given_up = Vec::new();
        let mut last_reason = String::new();
        for (mut held, reason) in failed {
            held.attempts += 1;
            if self.config.max_attempts > 0 && held.attempts >= self.config.max_attempts {
                given_up.push(Failed::at_output(
                    held.event,
                    format!("{reason} (after {} attempts)", held.attempts),
                    Cause::Output,
                ));
            } else {
                last_reason = reason;
                again.push(held);
            }
        }
        ctx.failures.handle(given_up).await?;
        if again.is_empty() {
            return Ok(again);
        }
        let delay = jitter(self.config.backoff(self.failures));
        let delay = self.at_least.take().map_or(delay, |asked| delay.max(asked));
        if self.opened.is_none() && self.failures >= self.config.open_after {
            let now = Instant::now();
            self.opened = Some(now);
            // By the clock, not at the end of an attempt: an attempt can wait for a long time on
            // an output that is down (a client queue full until it reconnects).
            self.ready.fail_at(now + self.config.unready_after.0);
            self.series.emit(CircuitOpened {
                held: again.len(),
                reason: &last_reason,
                probe_every_ms: self.config.max_backoff.0.as_millis() as u64,
            });
        } else {
            self.series.emit(Retrying {
                held: again.len(),
                attempt: self.failures,
                delay_ms: delay.as_millis() as u64,
                reason: &last_reason,
            });
        }
        tokio::time::sleep(delay).await;
        Ok(again)
    }
}

/// An output's context for tests: events it refuses are dropped, it has no broker connection
/// and no limit on an event's size.
#[cfg(test)]
pub(crate) fn test_context(
    telemetry: Arc<crate::observe::Telemetry>,
    health: &Arc<crate::observe::health::Health>,
    retry: RetryConfig,
) -> SinkContext {
    SinkContext {
        pipeline: crate::context::PipelineContext::new(telemetry.pipeline(), usize::MAX),
        failures: crate::policy::Failures::new(telemetry.clone(), crate::policy::Route::Drop),
        telemetry,
        dead_letter: false,
        link: None,
        health: health.clone(),
        retry,
        max_event_bytes: usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;
    use crate::delivery::Ack;
    use crate::event::Position;
    use crate::observe::Telemetry;
    use crate::observe::health::Health;

    fn context(retry: RetryConfig, health: &Arc<Health>) -> SinkContext {
        test_context(Telemetry::new("retry"), health, retry)
    }

    fn held(n: u64) -> Vec<(Held, String)> {
        (0..n)
            .map(|seq| {
                let e = Event::new(
                    bytes::Bytes::from_static(b"{}"),
                    Position::Generated { seq },
                    Ack::untracked(),
                );
                (Held::new(e), "timed out".to_string())
            })
            .collect()
    }

    /// A running pipeline's health, and an output context reporting unready after failing 5 s.
    fn failing_unready_after_5s() -> (Arc<Health>, SinkContext) {
        let health = Health::new(1);
        health.pipeline_started();
        let config = RetryConfig {
            unready_after: HumanDuration(Duration::from_secs(5)),
            ..RetryConfig::default()
        };
        let ctx = context(config, &health);
        (health, ctx)
    }

    fn again(events: Vec<Held>) -> Vec<(Held, String)> {
        events
            .into_iter()
            .map(|h| (h, "timed out".into()))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn the_circuit_opens_after_failures_in_a_row_reports_not_ready_and_closes_on_success() {
        let (health, ctx) = failing_unready_after_5s();
        let mut retry = Retry::new(&ctx);
        let start = tokio::time::Instant::now();
        let mut todo = retry.after_attempt(held(3), &ctx).await.unwrap();
        assert_eq!(todo.len(), 3, "all held for the next attempt");
        assert!(!retry.is_open());
        for _ in 0..2 {
            todo = retry.after_attempt(again(todo), &ctx).await.unwrap();
        }
        assert!(retry.is_open(), "open after three failed attempts");
        assert!(health.is_ready(), "not failing long enough to be unready");
        // Waits grow (with jitter, between half and all of 100, 200, 400 ms, ...) up to 10 s.
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(350) && waited <= Duration::from_millis(700),
            "{waited:?}"
        );
        while start.elapsed() < Duration::from_secs(6) {
            todo = retry.after_attempt(again(todo), &ctx).await.unwrap();
        }
        assert_eq!(health.problems(), ["retry: output failing"]);
        assert_eq!(todo.len(), 3, "nothing given up without max_attempts");
        retry.succeeded();
        assert!(!retry.is_open());
        assert!(health.is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_turns_after_unready_after_even_while_an_attempt_hangs() {
        let (health, ctx) = failing_unready_after_5s();
        let mut retry = Retry::new(&ctx);
        let mut todo = held(1);
        while !retry.is_open() {
            todo = again(retry.after_attempt(todo, &ctx).await.unwrap());
        }
        assert!(health.is_ready());
        // The next attempt never returns; the clock goes on.
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(health.is_ready(), "not open for 5 s yet");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(health.problems(), ["retry: output failing"]);
        retry.succeeded();
        assert!(health.is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn events_out_of_attempts_follow_the_error_policy() {
        let health = Health::new(1);
        let config = RetryConfig {
            max_attempts: 2,
            ..RetryConfig::default()
        };
        let ctx = context(config, &health);
        let mut retry = Retry::new(&ctx);
        let todo = retry.after_attempt(held(2), &ctx).await.unwrap();
        assert_eq!(todo.len(), 2);
        let todo = retry.after_attempt(again(todo), &ctx).await.unwrap();
        assert!(todo.is_empty(), "given up after two attempts");
        let s = ctx.telemetry.summary();
        assert_eq!((s.failed, s.dropped), (2, 2), "{s:?}");
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let c = RetryConfig::default();
        let ms = |n| c.backoff(n).as_millis();
        assert_eq!(
            (1..=9).map(ms).collect::<Vec<_>>(),
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
        assert_eq!(c.backoff(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_between_half_and_all() {
        let d = Duration::from_millis(1000);
        let samples: Vec<Duration> = (0..200).map(|_| jitter(d)).collect();
        assert!(samples.iter().all(|j| *j >= d / 2 && *j <= d));
        let distinct: std::collections::HashSet<_> = samples.iter().collect();
        assert!(distinct.len() > 100, "jitter varies: {}", distinct.len());
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_the_output_asks_for_is_kept_once_and_capped() {
        let (_health, ctx) = failing_unready_after_5s();
        let mut retry = Retry::new(&ctx);
        // The default backoff starts at 100 ms; the output asked for 7 s.
        retry.wait_at_least(Duration::from_secs(7));
        let start = Instant::now();
        let todo = retry.after_attempt(held(1), &ctx).await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(7));
        // Only once: the next backoff is the configured one again.
        let start = Instant::now();
        retry.after_attempt(again(todo), &ctx).await.unwrap();
        assert!(start.elapsed() < Duration::from_secs(1));
        // An hour is more than any output may hold events back.
        retry.wait_at_least(Duration::from_secs(3600));
        assert_eq!(retry.at_least, Some(MAX_ASKED_WAIT));
    }
}
