//! Typed internal events: each thing that can happen is one type that emits its log record and
//! its metrics in one place, so that what is logged and what is counted cannot drift apart.
//!
//! Two ways to emit:
//! - an event that carries its labels (pipeline, topic, subject...) implements
//!   [`InternalEvent`] and is emitted with [`emit`]: `emit(OffsetCommitFailed { .. })`;
//! - an event counted on metric handles registered once, where looking a metric up at every
//!   event would cost (the hot path: received, sent, acknowledged...), implements
//!   [`RegisteredEvent`] for the handles it is counted on, and is emitted through them:
//!   `telemetry.emit(EventsSent { count })` on a pipeline's [`Telemetry`](super::Telemetry),
//!   `series.emit(..)` on a component's series ([`output::OutputSeries`],
//!   [`jetstream::JetStreamSeries`], [`kafka_input::KafkaInputSeries`]).
//!
//! Metric names come from [`super::names`]; log messages and fields are what operators (and the
//! tests) look for: change them as carefully as the metric names.

pub mod file;
pub mod http;
pub mod jetstream;
pub mod kafka;
pub mod kafka_input;
pub mod lambda;
pub mod nats;
pub mod output;
pub mod pipeline;
pub mod process;
pub mod registry;

/// Something that happened, with every label it is logged and counted with.
pub trait InternalEvent {
    /// Logs and counts the event.
    fn emit(self);
}

/// Something that happened, counted on the metric handles `H` registered once with its labels.
pub trait RegisteredEvent<H: ?Sized> {
    /// Logs the event and counts it on `handles`.
    fn emit(self, handles: &H);
}

/// Logs and counts `event`.
pub fn emit(event: impl InternalEvent) {
    event.emit();
}

/// What events emitted: the sample lines (name, labels, value) left in a Prometheus recorder of
/// their own, sorted, and the log lines (level, message, fields), in order; for the events'
/// tests.
#[cfg(test)]
pub(crate) struct Captured {
    pub metrics: Vec<String>,
    pub logs: Vec<String>,
}

/// Runs `f` with a recorder and a log subscriber of its own, and returns what it emitted.
#[cfg(test)]
pub(crate) fn captured(f: impl FnOnce()) -> Captured {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
            held.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let written = Lines::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let written = written.clone();
            move || written.clone()
        })
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    tracing::subscriber::with_default(subscriber, || metrics::with_local_recorder(&recorder, f));
    let mut metrics: Vec<String> = handle
        .render()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    metrics.sort();
    let text = written.0.lock().map(|b| b.clone()).unwrap_or_default();
    let logs = String::from_utf8_lossy(&text)
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    Captured { metrics, logs }
}
