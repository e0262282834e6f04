//! Lambda mode: invocations read, answered, refused.

use std::fmt::Display;

use super::InternalEvent;

/// The pipeline's input is not used: its events are the function's invocations.
pub struct InputIgnored<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The kind of the input left out.
    pub ignored: &'a str,
}

impl InternalEvent for InputIgnored<'_> {
    fn emit(self) {
        tracing::info!(pipeline = %self.pipeline, ignored = self.ignored, "lambda: the pipeline's input is not used: its events are the function's invocations");
    }
}

/// An invocation's event could not be read as the shape it looks like.
pub struct MalformedEvent<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The invocation's request id.
    pub request: &'a str,
    /// The shape it was read as (`sqs`, `kafka`, ...).
    pub shape: &'static str,
    /// What is wrong with it.
    pub error: &'a dyn Display,
}

impl InternalEvent for MalformedEvent<'_> {
    fn emit(self) {
        tracing::warn!(pipeline = %self.pipeline, request = self.request, shape = self.shape, error = %self.error, "lambda: malformed event");
    }
}

/// How an invocation whose events were taken ended.
pub enum Ending<'a> {
    /// Every event was delivered or dead-lettered.
    Done {
        /// Events delivered.
        delivered: usize,
        /// Events dead-lettered.
        dead_lettered: usize,
    },
    /// Some events failed, or were not answered by the deadline.
    Unfinished {
        /// Events that failed.
        failed: usize,
        /// Events not answered in time.
        unfinished: usize,
    },
    /// The invocation was refused (the pipeline stopping, or full).
    Refused(&'a dyn Display),
}

/// An invocation ended.
pub struct Invoked<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The invocation's request id.
    pub request: &'a str,
    /// Its shape.
    pub shape: &'static str,
    /// Its events.
    pub events: usize,
    /// How it ended.
    pub ending: Ending<'a>,
}

impl InternalEvent for Invoked<'_> {
    fn emit(self) {
        let Invoked {
            pipeline,
            request,
            shape,
            events,
            ending,
        } = self;
        match ending {
            Ending::Done {
                delivered,
                dead_lettered,
            } => {
                tracing::debug!(pipeline = %pipeline, request, shape, events, delivered, dead_lettered, "lambda: invocation done");
            }
            Ending::Unfinished { failed, unfinished } => {
                tracing::warn!(pipeline = %pipeline, request, shape, events, failed, unfinished, "lambda: not every event of the invocation was delivered");
            }
            Ending::Refused(reason) => {
                tracing::warn!(pipeline = %pipeline, request, shape, events, reason = %reason, "lambda: invocation refused");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{captured, emit};
    use super::*;

    #[test]
    fn invocations_are_logged_by_how_they_ended_and_not_counted() {
        let seen = captured(|| {
            let invoked = |ending| Invoked {
                pipeline: "orders",
                request: "r-1",
                shape: "sqs",
                events: 2,
                ending,
            };
            emit(invoked(Ending::Done {
                delivered: 1,
                dead_lettered: 1,
            }));
            emit(invoked(Ending::Unfinished {
                failed: 1,
                unfinished: 0,
            }));
            emit(invoked(Ending::Refused(&"the pipeline is stopping")));
            emit(MalformedEvent {
                pipeline: "orders",
                request: "r-2",
                shape: "sqs",
                error: &"missing field `Records`",
            });
        });
        assert!(seen.metrics.is_empty(), "{:?}", seen.metrics);
        let head = "pipeline=orders request=\"r-1\" shape=\"sqs\" events=2";
        assert_eq!(
            seen.logs,
            [
                format!("DEBUG lambda: invocation done {head} delivered=1 dead_lettered=1"),
                format!(
                    "WARN lambda: not every event of the invocation was delivered {head} failed=1 unfinished=0"
                ),
                format!(
                    "WARN lambda: invocation refused {head} reason=the pipeline is stopping"
                ),
                "WARN lambda: malformed event pipeline=orders request=\"r-2\" shape=\"sqs\" error=missing field `Records`".to_string(),
            ]
        );
    }
}
