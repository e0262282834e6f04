//! Readiness: every pipeline running, every input and output connected to its broker, and no
//! shutdown begun.

use super::names;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::delivery::Budget;

/// A running pipeline's counters and in-flight budget.
pub type Running = (Arc<super::Telemetry>, Arc<Budget>);

/// Process-wide readiness.
#[derive(Debug, Default)]
pub struct Health {
    shutting_down: AtomicBool,
    running: AtomicUsize,
    expected: AtomicUsize,
    links: Mutex<Vec<Arc<Link>>>,
    /// The pipelines running now (their counters and in-flight budget), for their totals if
    /// the process exits before they end.
    pipelines: Mutex<Vec<Running>>,
}

/// One condition of readiness, like the connection of an input or output to its broker.
#[derive(Debug)]
pub struct Link {
    problem: String,
    up: AtomicBool,
    /// When the condition stops holding unless it is set again first (see [`Link::fail_at`]).
    fails_at: Mutex<Option<tokio::time::Instant>>,
    gauge: Option<metrics::Gauge>,
}

impl Link {
    /// Records whether the condition holds (the component can reach its broker); returns
    /// whether that changed. Setting it cancels a pending [`Link::fail_at`].
    pub fn set(&self, up: bool) -> bool {
        if let Some(g) = &self.gauge {
            g.set(if up { 1.0 } else { 0.0 });
        }
        *self.fails_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.up.swap(up, Ordering::AcqRel) != up
    }

    /// The condition stops holding at `when`, unless it is set before: readiness turns at that
    /// time by itself, whatever the component is busy with then.
    pub fn fail_at(&self, when: tokio::time::Instant) {
        *self.fails_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(when);
    }

    /// Whether the condition holds.
    pub fn is_up(&self) -> bool {
        let due = *self.fails_at.lock().unwrap_or_else(|p| p.into_inner());
        self.up.load(Ordering::Acquire) && due.is_none_or(|t| tokio::time::Instant::now() < t)
    }
}

impl Health {
    /// Readiness for `pipelines` pipelines, none running yet.
    pub fn new(pipelines: usize) -> Arc<Health> {
        let h = Health::default();
        h.expected.store(pipelines, Ordering::Relaxed);
        Arc::new(h)
    }

    /// Registers a component whose connection readiness depends on; it starts disconnected.
    /// `component` is `input`, `output` or `dead-letter output`.
    pub fn link(&self, pipeline: &str, component: &str, kind: &str) -> Arc<Link> {
        let gauge = metrics::gauge!(names::CONNECTED,
            "pipeline" => pipeline.to_string(),
            "component" => component.to_string(),
            "kind" => kind.to_string()
        );
        gauge.set(0.0);
        self.add(Link {
            problem: format!("{pipeline}: {kind} {component} not connected"),
            up: AtomicBool::new(false),
            fails_at: Mutex::new(None),
            gauge: Some(gauge),
        })
    }

    /// Registers another condition of readiness, holding at first; `problem` (starting with
    /// `<pipeline>: `) is reported while it does not.
    pub fn condition(&self, problem: String) -> Arc<Link> {
        self.add(Link {
            problem,
            up: AtomicBool::new(true),
            fails_at: Mutex::new(None),
            gauge: None,
        })
    }

    fn add(&self, link: Link) -> Arc<Link> {
        let link = Arc::new(link);
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(link.clone());
        link
    }

    /// A pipeline runs with these counters and this budget until [`Health::untrack`].
    pub fn track(&self, telemetry: &Arc<super::Telemetry>, budget: &Arc<Budget>) {
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((telemetry.clone(), budget.clone()));
    }

    /// A pipeline ended.
    pub fn untrack(&self, telemetry: &Arc<super::Telemetry>) {
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(t, _)| !Arc::ptr_eq(t, telemetry));
    }

    /// The counters and budgets of the pipelines still running.
    pub fn running(&self) -> Vec<Running> {
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A pipeline started.
    pub fn pipeline_started(&self) {
        self.running.fetch_add(1, Ordering::AcqRel);
    }

    /// A pipeline stopped; its components no longer count, and their `sluice_connected` gauges
    /// drop to 0 (a stopped component is connected to nothing).
    pub fn pipeline_stopped(&self, pipeline: &str) {
        self.running.fetch_sub(1, Ordering::AcqRel);
        let prefix = format!("{pipeline}: ");
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|l| {
                let ours = l.problem.starts_with(&prefix);
                if ours && let Some(g) = &l.gauge {
                    g.set(0.0);
                }
                !ours
            });
    }

    /// Shutdown began: not ready any more.
    pub fn shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Why the process is not ready; empty when it is.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.shutting_down.load(Ordering::Acquire) {
            problems.push("shutting down".to_string());
        }
        let running = self.running.load(Ordering::Acquire);
        let expected = self.expected.load(Ordering::Acquire);
        if running < expected {
            problems.push(format!("{running} of {expected} pipelines running"));
        }
        for l in self.links.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            if !l.is_up() {
                problems.push(l.problem.clone());
            }
        }
        problems
    }

    /// Whether the process should receive traffic/work.
    pub fn is_ready(&self) -> bool {
        self.problems().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_running_connected_and_not_stopping() {
        let h = Health::new(1);
        assert_eq!(h.problems(), ["0 of 1 pipelines running"]);
        h.pipeline_started();
        let input = h.link("orders", "input", "kafka");
        assert_eq!(h.problems(), ["orders: kafka input not connected"]);
        assert!(input.set(true));
        assert!(!input.set(true), "no change");
        assert!(h.is_ready());
        input.set(false);
        assert!(!h.is_ready());
        input.set(true);
        h.shutting_down();
        assert_eq!(h.problems(), ["shutting down"]);
    }

    #[test]
    fn a_stopped_pipeline_takes_its_links_along() {
        // Two pipelines, one of which may stop (as a test harness would run them).
        let h = Health::new(1);
        h.pipeline_started();
        h.pipeline_started();
        let _a = h.link("a", "output", "nats");
        let b = h.link("ab", "output", "nats");
        b.set(true);
        let failing = h.condition("ab: output failing".into());
        assert!(h.problems().iter().all(|p| p.starts_with("a: ")));
        h.pipeline_stopped("a");
        assert!(h.is_ready());
        failing.set(false);
        assert_eq!(h.problems(), ["ab: output failing"]);
    }

    #[test]
    fn a_stopped_pipeline_is_connected_to_nothing() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let metrics = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let h = Health::new(2);
            h.pipeline_started();
            h.pipeline_started();
            let stopping = h.link("a", "input", "nats");
            let running = h.link("b", "output", "kafka");
            stopping.set(true);
            running.set(true);
            let value = |pipeline: &str| {
                metrics
                    .render()
                    .lines()
                    .find(|l| {
                        l.starts_with("sluice_connected{")
                            && l.contains(&format!("pipeline=\"{pipeline}\""))
                    })
                    .and_then(|l| l.rsplit(' ').next())
                    .map(str::to_string)
            };
            assert_eq!(value("a").as_deref(), Some("1"));
            h.pipeline_stopped("a");
            assert_eq!(value("a").as_deref(), Some("0"), "a stopped");
            assert_eq!(value("b").as_deref(), Some("1"), "b still runs");
        });
    }
}
