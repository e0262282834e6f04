//! What went wrong with an event: the step that failed, why, and whether trying again could work.

use std::fmt;
use std::sync::Arc;

/// The step of a pipeline where an event failed. Shown in logs, in the `step` label of
/// `sluice_events_failed_total`, and in the `sluice-error-step` header of dead letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Refused for its size when read (`settings.max_event_bytes`).
    Limits,
    /// The payload could not be decoded.
    Decode,
    /// A transform failed.
    Transform {
        /// Its place in the pipeline's `transforms` list.
        index: usize,
        /// Its kind as written in the file (`jq`, `filter`, `route`).
        kind: &'static str,
        /// Its `name`, if it has one.
        name: Option<Arc<str>>,
    },
    /// A result could not be encoded, or was too large once encoded.
    Encode,
    /// The output could not deliver it.
    Output,
    /// The dead-letter output could not take it.
    DeadLetter,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Limits => f.write_str("limits"),
            Step::Decode => f.write_str("decode"),
            Step::Transform {
                index,
                kind,
                name: Some(name),
            } => write!(f, "transforms[{index}] ({kind} \"{name}\")"),
            Step::Transform {
                index,
                kind,
                name: None,
            } => write!(f, "transforms[{index}] ({kind})"),
            Step::Encode => f.write_str("encode"),
            Step::Output => f.write_str("output"),
            Step::DeadLetter => f.write_str("dead letter"),
        }
    }
}

/// What a failure is about, which decides whether trying again could ever work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The event itself: malformed, failing a step, too large, or carrying what the output cannot
    /// take. The same event fails again every time.
    Event,
    /// The output: where it writes refuses this pipeline (not authorised, no such topic or
    /// stream), or it stayed unreachable past `retry.max_attempts`. Another event would fail
    /// the same way.
    Output,
}

/// What an error means for the work it stopped, decided once where the error is known (each
/// bus's errors in `client`, each output's and input's own) and read by whoever decides what
/// comes next: an output retries, refuses the event, or stops; a pipeline reports why it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// It may pass by itself (a broker down or restarting, a timeout, no leader, a registry
    /// unavailable): try again.
    Retriable,
    /// Refused; trying again would get the same answer. [`Cause::Event`] when it is about the
    /// event (too large, invalid), [`Cause::Output`] when about where it goes (not authorised,
    /// nothing stores the subject).
    Refused(Cause),
    /// Nothing more can be done (the settings are wrong, a client is unusable): stop.
    Fatal,
}

impl ErrorKind {
    /// What an I/O error means: an interruption, a timeout, a connection lost or a disk full
    /// may pass; a missing file, a permission refused or bad data will not.
    pub fn of_io(error: &std::io::Error) -> ErrorKind {
        use std::io::ErrorKind as K;
        match error.kind() {
            K::Interrupted
            | K::WouldBlock
            | K::TimedOut
            | K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown
            | K::ResourceBusy
            | K::StorageFull
            | K::QuotaExceeded => ErrorKind::Retriable,
            _ => ErrorKind::Fatal,
        }
    }
}

/// Why an event could not be processed or delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Which step failed.
    pub step: Step,
    /// Why.
    pub reason: String,
    /// Whether the event or the output is at fault.
    pub cause: Cause,
}

impl Failure {
    /// The event failed at `step` (limits, decode, a transform, encode), for `reason`.
    pub fn of_event(step: Step, reason: impl Into<String>) -> Failure {
        Failure {
            step,
            reason: reason.into(),
            cause: Cause::Event,
        }
    }

    /// The output could not deliver the event, for `reason`.
    pub fn at_output(reason: impl Into<String>, cause: Cause) -> Failure {
        Failure {
            step: Step::Output,
            reason: reason.into(),
            cause,
        }
    }
}

/// The pipeline must stop: `errors: stop` met a failure, or a dead letter could not be delivered.
#[derive(Debug, Clone, thiserror::Error)]
#[error("event from {position} failed at {step}: {reason}; stopping ({why})")]
pub struct MustStop {
    /// Where the event was read.
    pub position: String,
    /// The failing step.
    pub step: Step,
    /// Why it failed.
    pub reason: String,
    /// Why that stops the pipeline.
    pub why: &'static str,
    /// Whether the event or the output was at fault.
    pub cause: Cause,
}

impl MustStop {
    /// A refusal, of the event or of where it goes.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Refused(self.cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_as_in_dead_letter_headers() {
        let cases = [
            (Step::Limits, "limits"),
            (Step::Decode, "decode"),
            (
                Step::Transform {
                    index: 1,
                    kind: "jq",
                    name: None,
                },
                "transforms[1] (jq)",
            ),
            (
                Step::Transform {
                    index: 0,
                    kind: "route",
                    name: Some("by region".into()),
                },
                "transforms[0] (route \"by region\")",
            ),
            (Step::Encode, "encode"),
            (Step::Output, "output"),
            (Step::DeadLetter, "dead letter"),
        ];
        for (step, shown) in cases {
            assert_eq!(step.to_string(), shown);
        }
    }

    #[test]
    fn io_errors_that_may_pass_are_retriable_the_others_fatal() {
        use std::io::{Error, ErrorKind as K};
        let kind = |k: K| ErrorKind::of_io(&Error::from(k));
        assert_eq!(kind(K::TimedOut), ErrorKind::Retriable);
        assert_eq!(kind(K::ConnectionReset), ErrorKind::Retriable);
        assert_eq!(kind(K::StorageFull), ErrorKind::Retriable);
        assert_eq!(kind(K::NotFound), ErrorKind::Fatal);
        assert_eq!(kind(K::PermissionDenied), ErrorKind::Fatal);
        assert_eq!(kind(K::InvalidData), ErrorKind::Fatal);
        // An error of the operating system is read by its code.
        let full = Error::from_raw_os_error(28); // ENOSPC
        assert_eq!(ErrorKind::of_io(&full), ErrorKind::Retriable);
    }
}
