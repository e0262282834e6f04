//! Running pipelines: wiring source -> transforms -> sink over bounded channels, and shutdown.

pub mod processor;
pub mod shutdown;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::context::PipelineContext;
use crate::delivery::ErrorKind;
use crate::event::Event;
use crate::observe::Telemetry;
use crate::observe::events::emit;
use crate::observe::events::pipeline::{PipelineFailed, PipelineStarted, PipelineStopped};
use crate::observe::health::{Health, Link};
use crate::pipeline::{ErrorPolicy, Pipeline, PipelineConfig};
use crate::policy::{Failures, Route};
use crate::sink::SinkContext;
use crate::source::intake::Intake;
use crate::source::{Input, SourceContext};

/// Why a pipeline failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The input failed.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// The output or the dead-letter output failed.
    #[error(transparent)]
    Sink(#[from] crate::sink::SinkError),
    /// The transform stage stopped.
    #[error(transparent)]
    Process(#[from] processor::ProcessError),
    /// The payloads' schemas could not be set up.
    #[error("schemas: {0}")]
    Schemas(crate::codec::schema::error::SchemaError),
    /// A task panicked: a bug.
    #[error("internal error: {0}")]
    Panic(String),
}

impl PipelineError {
    /// What ended the pipeline: a failure that may pass (a connection lost, the Schema Registry
    /// unavailable until shutdown), an event or a destination refused under `errors: stop`, or
    /// one that nothing will fix (settings, a client unusable, a bug).
    pub fn kind(&self) -> ErrorKind {
        match self {
            PipelineError::Source(e) => e.kind(),
            PipelineError::Sink(e) => e.kind(),
            PipelineError::Process(e) => e.kind(),
            PipelineError::Schemas(e) => e.kind(),
            PipelineError::Panic(_) => ErrorKind::Fatal,
        }
    }
}

/// Runs one pipeline until its input ends or `shutdown` is cancelled and everything read is
/// delivered. Any failure stops the pipeline's input, lets the rest drain, and is returned.
pub async fn run_pipeline(
    pipeline: Pipeline,
    shutdown: CancellationToken,
    health: Arc<Health>,
) -> Result<(), Vec<PipelineError>> {
    let telemetry = Telemetry::new(&pipeline.name);
    let cx = PipelineContext::new(&pipeline.name, pipeline.config.in_flight_budget());
    let name = pipeline.name.clone();
    health.track(&telemetry, cx.budget());
    let components = pipeline.components;
    let config = Arc::new(pipeline.config);
    // An input handed over from outside replaces the configured one.
    let (input_kind, input_remote) = match &components.input {
        Input::Handoff(h) => (h.kind(), false),
        _ => (config.input.kind(), config.input.remote()),
    };
    let links = Links::register(&health, &name, &config, input_kind, input_remote);
    let capacity = config.settings.channel_batches;
    let stop = shutdown.child_token();

    let (source_tx, source_rx) = mpsc::channel(capacity);
    let (out_tx, out_rx) = mpsc::channel(capacity);
    let (route, dlq_rx) = error_route(&config.errors, capacity);
    let failures = Failures::new(telemetry.clone(), route);

    let processor = start_processor(&components.payloads, &config, &telemetry, &failures, &stop)
        .await
        .map_err(|e| vec![e])?;
    let mut tasks: JoinSet<Result<(), PipelineError>> = JoinSet::new();

    let ctx = source_context(&cx, &telemetry, &config, source_tx, &stop, links.input);
    let input = components.input;
    tasks.spawn(async move { input.run(ctx).await.map_err(PipelineError::from) });
    tasks.spawn(async move {
        processor
            .run(source_rx, out_tx)
            .await
            .map_err(PipelineError::from)
    });
    let sink = |dead_letter, failures, link| SinkContext {
        pipeline: cx.clone(),
        telemetry: telemetry.clone(),
        dead_letter,
        failures,
        link,
        health: health.clone(),
        retry: config.settings.retry.clone(),
        max_event_bytes: config.settings.max_event_bytes.0,
    };
    let ctx = sink(false, failures, links.output);
    let output = components.output;
    tasks.spawn(async move { output.run(out_rx, ctx).await.map_err(PipelineError::from) });
    if let (Some(rx), Some(out)) = (dlq_rx, components.dead_letter) {
        let nowhere = Failures::new(telemetry.clone(), Route::Nowhere);
        let ctx = sink(true, nowhere, links.dead_letter);
        tasks.spawn(async move { out.run(rx, ctx).await.map_err(PipelineError::from) });
    }

    let gauges = refresh_gauges(cx.budget().clone());
    emit(PipelineStarted {
        pipeline: &name,
        input: input_kind,
        output: config.output.kind(),
        transforms: config.transforms.len(),
    });
    let errors = join(tasks, &name, &stop).await;
    drop(gauges);
    health.untrack(&telemetry);
    report_stopped(&telemetry, cx.budget(), false);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The readiness links of a pipeline's remote components (`None` for a local one).
struct Links {
    input: Option<Arc<Link>>,
    output: Option<Arc<Link>>,
    dead_letter: Option<Arc<Link>>,
}

impl Links {
    /// Registers the links: before anything awaits, so readiness never sees the pipeline
    /// without them.
    fn register(
        health: &Health,
        name: &str,
        config: &PipelineConfig,
        input_kind: &str,
        input_remote: bool,
    ) -> Links {
        let link = |remote: bool, component: &str, kind: &str| {
            remote.then(|| health.link(name, component, kind))
        };
        Links {
            input: link(input_remote, "input", input_kind),
            output: link(config.output.remote(), "output", config.output.kind()),
            dead_letter: match &config.errors {
                ErrorPolicy::Output(out) => link(out.remote(), "dead-letter output", out.kind()),
                _ => None,
            },
        }
    }
}

/// What the input runs with: it sends its batches to `tx` and stops at `stop`.
fn source_context(
    cx: &PipelineContext,
    telemetry: &Arc<Telemetry>,
    config: &PipelineConfig,
    tx: mpsc::Sender<Vec<Event>>,
    stop: &CancellationToken,
    link: Option<Arc<Link>>,
) -> SourceContext {
    let settings = &config.settings;
    let budget = cx.budget().clone();
    SourceContext {
        pipeline: cx.clone(),
        telemetry: telemetry.clone(),
        intake: Intake::new(
            tx,
            telemetry.clone(),
            budget,
            stop.clone(),
            settings.batch_size,
        ),
        shutdown: stop.clone(),
        max_event_bytes: settings.max_event_bytes.0,
        counted: cx.ack_counter(),
        drain_timeout: settings.shutdown_timeout.0,
        link,
    }
}

/// Where failed events go under `errors`, and the dead-letter output's channel when it has one.
fn error_route(
    errors: &ErrorPolicy,
    capacity: usize,
) -> (Route, Option<mpsc::Receiver<Vec<Event>>>) {
    match errors {
        ErrorPolicy::Drop => (Route::Drop, None),
        ErrorPolicy::Stop => (Route::Stop, None),
        ErrorPolicy::Output(_) => {
            let (tx, rx) = mpsc::channel(capacity);
            (Route::DeadLetter(tx), Some(rx))
        }
    }
}

/// Connects the payloads' schemas, waiting while a Schema Registry they need is unavailable
/// (nothing is read meanwhile), and starts the transform stage.
async fn start_processor(
    payloads: &crate::codec::payloads::Payloads,
    config: &PipelineConfig,
    telemetry: &Arc<Telemetry>,
    failures: &Failures,
    stop: &CancellationToken,
) -> Result<processor::Processor, PipelineError> {
    let connected = payloads
        .connect(&config.settings.retry, stop)
        .await
        .map_err(PipelineError::Schemas)?;
    Ok(processor::Processor::start(
        telemetry.clone(),
        config,
        &connected,
        payloads.converts(),
        failures.clone(),
    )?)
}

/// Keeps the pipeline's in-flight gauges up to date until the handle is dropped.
fn refresh_gauges(budget: Arc<crate::delivery::Budget>) -> tokio_util::task::AbortOnDropHandle<()> {
    tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::delivery::GAUGE_REFRESH);
        loop {
            tick.tick().await;
            budget.refresh_gauges();
        }
    }))
}

/// Logs the totals of the pipeline `telemetry` counts as it stops, with what is left in its
/// `budget`; `unfinished` when the process
/// exits with events of it still in flight (the shutdown deadline passed).
fn report_stopped(telemetry: &Telemetry, budget: &crate::delivery::Budget, unfinished: bool) {
    budget.refresh_gauges();
    let (_, in_flight) = budget.in_flight();
    emit(PipelineStopped {
        pipeline: telemetry.pipeline(),
        summary: telemetry.summary(),
        in_flight,
        unfinished,
    });
}

/// Waits for every task of a pipeline; the first failure stops the others (`stop`), which then
/// drain. Returns every failure.
async fn join(
    mut tasks: JoinSet<Result<(), PipelineError>>,
    name: &str,
    stop: &CancellationToken,
) -> Vec<PipelineError> {
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let result = joined.unwrap_or_else(|e| Err(PipelineError::Panic(e.to_string())));
        if let Err(e) = result {
            emit(PipelineFailed {
                pipeline: name,
                error: &e,
            });
            errors.push(e);
            stop.cancel();
        }
    }
    errors
}

/// Runs every pipeline in this process. A failing pipeline shuts the others down too (so an
/// orchestrator restarts the process); returns every error.
pub async fn run_all(
    pipelines: Vec<Pipeline>,
    shutdown: CancellationToken,
    health: Arc<Health>,
) -> Result<(), Vec<PipelineError>> {
    let mut set = JoinSet::new();
    for p in pipelines {
        let shutdown = shutdown.clone();
        let health = health.clone();
        set.spawn(async move {
            let name = p.name.clone();
            health.pipeline_started();
            let result = run_pipeline(p, shutdown.clone(), health.clone()).await;
            health.pipeline_stopped(&name);
            if result.is_err() {
                shutdown.cancel();
            }
            result
        });
    }
    let mut errors = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.extend(e),
            Err(e) => errors.push(PipelineError::Panic(e.to_string())),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{Cause, MustStop, Step};
    use crate::sink::SinkError;
    use crate::source::SourceError;

    #[test]
    fn a_pipeline_error_means_what_stopped_it_means() {
        let reset = SourceError::Io {
            input: "stdin",
            path: None,
            source: std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        };
        assert_eq!(PipelineError::from(reset).kind(), ErrorKind::Retriable);
        let fatal =
            rdkafka::error::KafkaError::MessageProduction(rdkafka::error::RDKafkaErrorCode::Fatal);
        let producer = PipelineError::from(SinkError::Producer(fatal));
        assert_eq!(producer.kind(), ErrorKind::Fatal);
        let stopped = MustStop {
            position: "stdin:2".into(),
            step: Step::Decode,
            reason: "not JSON".into(),
            why: "errors: stop",
            cause: Cause::Event,
        };
        let process = PipelineError::from(processor::ProcessError::from(stopped));
        assert_eq!(process.kind(), ErrorKind::Refused(Cause::Event));
        let unavailable = crate::codec::schema::error::SchemaError::Client(
            crate::client::registry::RegistryError::Stopped("registry unreachable".into()),
        );
        let schemas = PipelineError::Schemas(unavailable);
        assert_eq!(schemas.kind(), ErrorKind::Retriable);
        let panic = PipelineError::Panic("task 3 panicked".into());
        assert_eq!(panic.kind(), ErrorKind::Fatal);
    }
}
