//! Things that happen to events, each emitted once as a metric and, where useful, a log record.

use metrics::counter;

/// Events read by the pipeline's input.
pub fn events_received(pipeline: &str, n: usize) {
    counter!("sluice_events_received_total", "pipeline" => pipeline.to_string())
        .increment(n as u64);
}

/// Events confirmed delivered by the pipeline's output.
pub fn events_sent(pipeline: &str, n: usize) {
    counter!("sluice_events_sent_total", "pipeline" => pipeline.to_string()).increment(n as u64);
}

/// Inputs that produced no output (a filter or a jq program emitted nothing).
pub fn events_filtered(pipeline: &str, n: usize) {
    if n > 0 {
        counter!("sluice_events_filtered_total", "pipeline" => pipeline.to_string())
            .increment(n as u64);
    }
}

/// An event that failed at `step` (decode, a transform, an output) and goes to the error policy.
pub fn event_failed(pipeline: &str, step: &str, reason: &str, source: &str) {
    counter!("sluice_events_failed_total", "pipeline" => pipeline.to_string(), "step" => step.to_string()).increment(1);
    tracing::warn!(pipeline, step, reason, source, "event failed");
}

/// Failed events dropped by `errors: drop`.
pub fn events_dropped(pipeline: &str, n: usize) {
    counter!("sluice_events_dropped_total", "pipeline" => pipeline.to_string()).increment(n as u64);
}

/// Failed events confirmed delivered to the dead-letter output.
pub fn events_dead_lettered(pipeline: &str, n: usize) {
    counter!("sluice_events_dead_lettered_total", "pipeline" => pipeline.to_string())
        .increment(n as u64);
}
