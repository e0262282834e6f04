//! Lambda mode: a pipeline's transforms and output run inside an AWS Lambda function, and its
//! events are the function's invocations instead of what its configured input reads.

pub mod answer;
mod error;
pub mod shapes;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lambda_runtime::tower::util::MapFutureLayer;
use lambda_runtime::{LambdaEvent, Runtime, layers::TracingLayer, service_fn};
use serde_json::value::RawValue;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::codec::Codec;
use crate::delivery::Outcome;
use crate::observe::events::emit;
use crate::observe::events::lambda::{Ending, InputIgnored, Invoked, MalformedEvent};
use crate::pipeline::Pipeline;
use crate::source::Input;
use crate::source::submit::{Handoff, Refused, Submitter};
use answer::{Answer, Verdict};
pub use error::{InvocationError, LambdaError};
use shapes::Shape;

/// How long before an invocation's own deadline it is answered at the latest, whatever is
/// still unfinished: time to answer before Lambda gives up on the invocation.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// Lambda's longest function timeout: how long an invocation without a real deadline waits.
const LONGEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// What the Lambda runtime sets in a function's environment; without any of these sluice is
/// not running as a Lambda function (or under an emulator of one).
const LAMBDA_ENVIRONMENT: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// Checks that the Lambda runtime's environment is there, before its client would panic on it.
pub fn check_environment() -> Result<(), LambdaError> {
    check(|name| std::env::var(name).ok())
}

/// [`check_environment`] with the variables `var` gives.
fn check(var: impl Fn(&str) -> Option<String>) -> Result<(), LambdaError> {
    let missing = |name: &str| LambdaError::Environment(format!("{name} is not set"));
    for name in LAMBDA_ENVIRONMENT {
        var(name).ok_or_else(|| missing(name))?;
    }
    let api = var("AWS_LAMBDA_RUNTIME_API").unwrap_or_default();
    // `host:port` in Lambda; emulators add a scheme and a path.
    if !api
        .parse::<hyper::Uri>()
        .is_ok_and(|u| u.authority().is_some())
    {
        return Err(LambdaError::Environment(format!(
            "AWS_LAMBDA_RUNTIME_API is not a host:port or URL: {api:?}"
        )));
    }
    let memory = var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").unwrap_or_default();
    if memory.parse::<i32>().is_err() {
        return Err(LambdaError::Environment(format!(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE is not a number: {memory:?}"
        )));
    }
    Ok(())
}

/// Answers invocations with what became of their events.
pub struct Handler {
    submitter: Submitter,
    codec: Codec,
    drain_timeout: Duration,
    pipeline: Arc<str>,
}

impl Handler {
    /// A handler handing events to `submitter`, reading API Gateway bodies under `codec`; once
    /// the pipeline stops taking events, invocations under way wait at most `drain_timeout`.
    pub fn new(
        submitter: Submitter,
        codec: Codec,
        drain_timeout: Duration,
        pipeline: &str,
    ) -> Handler {
        Handler {
            submitter,
            codec,
            drain_timeout,
            pipeline: Arc::from(pipeline),
        }
    }

    /// Answers an invocation with `payload`, Lambda request id `request`, once every event
    /// derived from it is delivered or dead-lettered, or at `deadline` with what is known then.
    pub async fn invoke(
        &self,
        payload: &RawValue,
        request: &str,
        deadline: Instant,
    ) -> Result<Answer, InvocationError> {
        let (shape, invocation) = shapes::read(payload, request, self.codec);
        let (verdict, ids) = match invocation {
            Ok(invocation) => {
                let n = invocation.items.len();
                let verdict = self.submit(invocation.items, deadline).await;
                self.log(shape, request, n, &verdict);
                (verdict, invocation.ids)
            }
            Err(message) => {
                emit(MalformedEvent {
                    pipeline: &self.pipeline,
                    request,
                    shape: shape.name(),
                    error: &message,
                });
                (Verdict::Malformed(message), Vec::new())
            }
        };
        answer::answer(shape, &ids, verdict)
    }

    async fn submit(&self, items: Vec<crate::source::submit::Item>, deadline: Instant) -> Verdict {
        if self.submitter.stopping().is_cancelled() {
            return Verdict::Refused(Refused::Closed);
        }
        if self.submitter.busy() {
            return Verdict::Refused(Refused::Busy);
        }
        let n = items.len();
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.submitter.submit(items, true, wait).await {
            Ok(Some(pending)) => Verdict::Finished(pending.wait(self.until(deadline)).await),
            // Tracked submissions are always pending; answered as unfinished should one not be.
            Ok(None) => Verdict::Finished(crate::source::submit::Outcomes(vec![None; n])),
            Err(refused) => Verdict::Refused(refused),
        }
    }

    fn log(&self, shape: Shape, request: &str, events: usize, verdict: &Verdict) {
        let ending = match verdict {
            Verdict::Finished(o) if o.all_done() => Ending::Done {
                delivered: o.count(Outcome::Delivered),
                dead_lettered: o.count(Outcome::Rejected),
            },
            Verdict::Finished(o) => Ending::Unfinished {
                failed: o.count(Outcome::Failed),
                unfinished: o.unfinished(),
            },
            Verdict::Refused(refused) => Ending::Refused(refused),
            Verdict::Malformed(_) => return,
        };
        emit(Invoked {
            pipeline: &self.pipeline,
            request,
            shape: shape.name(),
            events,
            ending,
        });
    }

    /// Passes at `deadline`, or `drain_timeout` after the pipeline began stopping.
    async fn until(&self, deadline: Instant) {
        let drained = async {
            self.submitter.stopping().cancelled().await;
            tokio::time::sleep(self.drain_timeout).await;
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            () = drained => {}
        }
    }

    /// Answers one invocation from the runtime API.
    async fn answer(&self, event: LambdaEvent<Box<RawValue>>) -> Result<Answer, InvocationError> {
        let context = event.context;
        let deadline = Instant::now() + answer_within(context.deadline(), SystemTime::now());
        self.invoke(&event.payload, &context.request_id, deadline)
            .await
    }
}

/// How long an invocation with `deadline` has to be answered, from `now`.
fn answer_within(deadline: SystemTime, now: SystemTime) -> Duration {
    match deadline.duration_since(now) {
        Ok(left) => left.saturating_sub(ANSWER_MARGIN),
        // Lambda never hands out an invocation already past its deadline: this one is not a
        // real deadline (local emulators send 0, or the timeout itself).
        Err(_) => LONGEST_TIMEOUT - ANSWER_MARGIN,
    }
}

/// Runs `pipeline` with the function's invocations as its input until `shutdown`, the pipeline
/// failing, or the runtime API failing. `start` runs a pipeline until the token it is given is
/// cancelled and what it read is delivered.
pub async fn run<F, E>(
    mut pipeline: Pipeline,
    shutdown: CancellationToken,
    start: impl FnOnce(Pipeline, CancellationToken) -> F,
) -> Result<(), LambdaError>
where
    F: Future<Output = Result<(), Vec<E>>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    check_environment()?;
    let name = pipeline.name.clone();
    emit(InputIgnored {
        pipeline: &name,
        ignored: pipeline.config.input.kind(),
    });
    let (handoff, submitter) = Handoff::new("lambda");
    pipeline.components.input = Input::Handoff(handoff);
    let codec = pipeline.config.input.codec().plain();
    let drain_timeout = pipeline.config.settings.shutdown_timeout.0;
    let stop = shutdown.child_token();
    let mut running = tokio::spawn(start(pipeline, stop.clone()));
    let submitter = tokio::select! {
        submitter = submitter => submitter.ok(),
        ended = &mut running => return Err(pipeline_error(ended.map(|r| r.map_err(|e| strings(&e))))),
    };
    let served = match submitter {
        Some(submitter) => serve(Handler::new(submitter, codec, drain_timeout, &name)).await,
        None => Ok(()),
    };
    // The handler is gone with its hold on the pipeline's input: the pipeline drains and ends.
    stop.cancel();
    let ran = running.await.map(|r| r.map_err(|e| strings(&e)));
    served?;
    match ran {
        Ok(Ok(())) => Ok(()),
        ended => Err(pipeline_error(ended)),
    }
}

fn strings<E: std::fmt::Display>(errors: &[E]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

fn pipeline_error(ended: Result<Result<(), Vec<String>>, tokio::task::JoinError>) -> LambdaError {
    match ended {
        Ok(Ok(())) => LambdaError::Pipeline(vec!["it ended before taking events".into()]),
        Ok(Err(errors)) => LambdaError::Pipeline(errors),
        Err(e) => LambdaError::Pipeline(vec![format!("internal error: {e}")]),
    }
}

/// Takes invocations from the runtime API until the pipeline stops taking events; an invocation
/// under way then is still answered.
async fn serve(handler: Handler) -> Result<(), LambdaError> {
    let stopping = handler.submitter.stopping().clone();
    let handler = Arc::new(handler);
    let service = service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let handler = handler.clone();
        async move { handler.answer(event).await }
    });
    // Held from taking an invocation until its answer is posted.
    let busy = TaskTracker::new();
    let tracked = MapFutureLayer::new({
        let busy = busy.clone();
        move |call| {
            let token = busy.token();
            async move {
                let answered = call.await;
                drop(token);
                answered
            }
        }
    });
    let runtime = Runtime::new(service)
        .layer(TracingLayer::new())
        .layer(tracked)
        .run();
    tokio::pin!(runtime);
    let ended =
        |r: Result<(), lambda_runtime::Error>| r.map_err(|e| LambdaError::Runtime(e.to_string()));
    tokio::select! {
        r = &mut runtime => return ended(r),
        () = stopping.cancelled() => {}
    }
    busy.close();
    tokio::select! {
        r = &mut runtime => ended(r),
        () = busy.wait() => Ok(()),
    }
}
#[cfg(test)]
mod tests;
