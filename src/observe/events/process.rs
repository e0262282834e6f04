//! The process as a whole: shutting down on a signal or a failed pipeline, the deadline, a
//! second signal, and exiting on an error.

use std::fmt::Display;

use super::InternalEvent;

/// The first signal: inputs stop reading, what is in flight is delivered until the deadline.
pub struct ShutdownRequested {
    /// The signal's name (`SIGTERM`, `SIGINT`).
    pub signal: &'static str,
    /// The time given to deliver what is in flight.
    pub deadline_ms: u64,
}

impl InternalEvent for ShutdownRequested {
    fn emit(self) {
        tracing::info!(
            signal = self.signal,
            deadline_ms = self.deadline_ms,
            "shutting down: no new events are read; in-flight events are delivered"
        );
    }
}

/// A pipeline failed: the others stop as they would on a signal.
pub struct StoppingAfterFailure {
    /// The time given to deliver what is in flight.
    pub deadline_ms: u64,
}

impl InternalEvent for StoppingAfterFailure {
    fn emit(self) {
        tracing::warn!(
            deadline_ms = self.deadline_ms,
            "a pipeline failed: stopping the others; in-flight events are delivered"
        );
    }
}

/// The shutdown deadline passed with events in flight: the process exits without
/// acknowledging them.
pub struct ShutdownDeadlinePassed;

impl InternalEvent for ShutdownDeadlinePassed {
    fn emit(self) {
        tracing::error!(
            "shutdown deadline passed with events in flight; they were not acknowledged"
        );
    }
}

/// A second signal while stopping: the process exits at once.
pub struct SecondSignal {
    /// The signal's name.
    pub signal: &'static str,
}

impl InternalEvent for SecondSignal {
    fn emit(self) {
        tracing::error!(
            signal = self.signal,
            "second signal: exiting now; in-flight events were not acknowledged"
        );
    }
}

/// The process exits with a failure: a pipeline's, or the run's own.
pub struct ExitingOnError<'a> {
    /// What failed.
    pub error: &'a dyn Display,
    /// Whether it is a bug (a task of the run panicked) rather than a pipeline's failure.
    pub internal: bool,
}

impl InternalEvent for ExitingOnError<'_> {
    fn emit(self) {
        if self.internal {
            tracing::error!(error = %self.error, "internal error");
        } else {
            tracing::error!(error = %self.error, "exiting on error");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{captured, emit};
    use super::*;

    #[test]
    fn shutting_down_and_exiting_are_logged_and_not_counted() {
        let seen = captured(|| {
            emit(ShutdownRequested {
                signal: "SIGTERM",
                deadline_ms: 30000,
            });
            emit(SecondSignal { signal: "SIGINT" });
            emit(StoppingAfterFailure { deadline_ms: 30000 });
            emit(ShutdownDeadlinePassed);
            emit(ExitingOnError {
                error: &"output failed",
                internal: false,
            });
            emit(ExitingOnError {
                error: &"task panicked",
                internal: true,
            });
        });
        assert!(seen.metrics.is_empty(), "{:?}", seen.metrics);
        assert_eq!(
            seen.logs,
            [
                "INFO shutting down: no new events are read; in-flight events are delivered signal=\"SIGTERM\" deadline_ms=30000",
                "ERROR second signal: exiting now; in-flight events were not acknowledged signal=\"SIGINT\"",
                "WARN a pipeline failed: stopping the others; in-flight events are delivered deadline_ms=30000",
                "ERROR shutdown deadline passed with events in flight; they were not acknowledged",
                "ERROR exiting on error error=output failed",
                "ERROR internal error error=task panicked",
            ]
        );
    }
}
