//! Stopping a run: the first signal (or a failed pipeline) stops every input and gives the rest
//! until the deadline to deliver what is in flight; a second signal or the deadline ends it at
//! once, leaving those inputs unacknowledged.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::observe::events::emit;
use crate::observe::events::process::{
    SecondSignal, ShutdownDeadlinePassed, ShutdownRequested, StoppingAfterFailure,
};
use crate::observe::health::Health;

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended<T> {
    /// The work finished: its inputs ended, or it stopped and delivered everything in flight.
    Finished(T),
    /// The deadline passed with events in flight; their inputs were not acknowledged.
    DeadlinePassed,
    /// A second signal (named) arrived while stopping; in-flight inputs were not acknowledged.
    SecondSignal(&'static str),
}

/// Runs `work` until it finishes. The first of `signals` (or `shutdown` cancelled by a failed
/// pipeline) cancels `shutdown` and marks `health` as shutting down; from then on `work` has
/// `deadline` to finish, and a second signal ends the run at once. When the run ends early,
/// every pipeline still running logs its totals as unfinished.
pub async fn supervise<T>(
    work: impl Future<Output = T>,
    shutdown: CancellationToken,
    health: &Health,
    deadline: Duration,
    mut signals: mpsc::Receiver<&'static str>,
) -> Ended<T> {
    tokio::pin!(work);
    let first = tokio::select! {
        done = &mut work => return Ended::Finished(done),
        s = next_signal(&mut signals) => Some(s),
        _ = shutdown.cancelled() => None,
    };
    let deadline_ms = deadline.as_millis() as u64;
    match first {
        Some(signal) => emit(ShutdownRequested {
            signal,
            deadline_ms,
        }),
        None => emit(StoppingAfterFailure { deadline_ms }),
    }
    health.shutting_down();
    shutdown.cancel();
    let ended = tokio::select! {
        done = &mut work => return Ended::Finished(done),
        _ = tokio::time::sleep(deadline) => {
            emit(ShutdownDeadlinePassed);
            Ended::DeadlinePassed
        }
        signal = next_signal(&mut signals) => {
            emit(SecondSignal { signal });
            Ended::SecondSignal(signal)
        }
    };
    for (telemetry, budget) in health.running() {
        super::report_stopped(&telemetry, &budget, true);
    }
    ended
}

/// The next signal; never, once nobody can send one.
async fn next_signal(signals: &mut mpsc::Receiver<&'static str>) -> &'static str {
    match signals.recv().await {
        Some(signal) => signal,
        None => std::future::pending().await,
    }
}

/// SIGTERM and SIGINT, named, as they arrive. Without signal handlers (they could not be
/// installed) nothing arrives: only the inputs ending stops the run.
pub fn unix_signals() -> mpsc::Receiver<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = mpsc::channel(4);
    if let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                };
                if tx.send(name).await.is_err() {
                    return;
                }
            }
        });
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: Duration = Duration::from_secs(25);

    /// Work that finishes `after` it is told to stop, reporting when it started stopping.
    async fn draining(shutdown: CancellationToken, after: Duration) -> &'static str {
        shutdown.cancelled().await;
        tokio::time::sleep(after).await;
        "drained"
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_ends_by_itself_needs_no_signal() {
        let (_tx, rx) = mpsc::channel(1);
        let health = Health::new(1);
        let ended = supervise(async { 7 }, CancellationToken::new(), &health, DEADLINE, rx).await;
        assert_eq!(ended, Ended::Finished(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_signal_stops_the_work_which_then_finishes_before_the_deadline() {
        let (tx, rx) = mpsc::channel(1);
        let health = Health::new(1);
        let shutdown = CancellationToken::new();
        tx.send("SIGTERM").await.unwrap();
        let work = draining(shutdown.clone(), DEADLINE - Duration::from_secs(1));
        let ended = supervise(work, shutdown.clone(), &health, DEADLINE, rx).await;
        assert_eq!(ended, Ended::Finished("drained"));
        assert!(shutdown.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_ends_work_still_draining() {
        let (tx, rx) = mpsc::channel(1);
        let health = Health::new(1);
        let shutdown = CancellationToken::new();
        tx.send("SIGINT").await.unwrap();
        let work = draining(shutdown.clone(), DEADLINE + Duration::from_secs(1));
        let started = tokio::time::Instant::now();
        let ended = supervise(work, shutdown, &health, DEADLINE, rx).await;
        assert_eq!(ended, Ended::DeadlinePassed);
        assert_eq!(started.elapsed(), DEADLINE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_signal_ends_at_once() {
        let (tx, rx) = mpsc::channel(2);
        let health = Health::new(1);
        let shutdown = CancellationToken::new();
        tx.send("SIGTERM").await.unwrap();
        tx.send("SIGTERM").await.unwrap();
        let work = draining(shutdown.clone(), DEADLINE + Duration::from_secs(1));
        let started = tokio::time::Instant::now();
        let ended = supervise(work, shutdown, &health, DEADLINE, rx).await;
        assert_eq!(ended, Ended::SecondSignal("SIGTERM"));
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_pipeline_stops_the_rest_under_the_same_deadline() {
        let (_tx, rx) = mpsc::channel(1);
        let health = Health::new(2);
        health.pipeline_started();
        health.pipeline_started();
        assert!(health.is_ready());
        let shutdown = CancellationToken::new();
        // A pipeline failing cancels the shared token; the others then drain.
        shutdown.cancel();
        let work = draining(shutdown.clone(), DEADLINE * 2);
        let ended = supervise(work, shutdown, &health, DEADLINE, rx).await;
        assert_eq!(ended, Ended::DeadlinePassed);
        assert!(!health.is_ready(), "shutting down is not ready");
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_signal_source_only_the_work_ending_stops_the_run() {
        let (tx, rx) = mpsc::channel::<&'static str>(1);
        drop(tx);
        let health = Health::new(1);
        let work = async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "ended"
        };
        let ended = supervise(work, CancellationToken::new(), &health, DEADLINE, rx).await;
        assert_eq!(ended, Ended::Finished("ended"));
    }
}
