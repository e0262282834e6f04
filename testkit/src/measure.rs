//! What the benchmarks move and measure: events of a given size, and a process's CPU time and
//! memory read from /proc (Linux).

use std::time::{Duration, Instant};

use crate::wait::try_wait_for;

/// A JSON event of about `size` bytes with the fields the workloads use (`id`, `ts`, `service`,
/// `status`: 500 for even ids, else 200, `latency`, `msg`) and some 15 more, padded to size.
pub fn event(i: u64, size: usize) -> Vec<u8> {
    let mut e = format!(
        "{{\"id\":{i},\"ts\":{},\"service\":\"svc-{}\",\"status\":{},\"latency\":{:.4},\"msg\":\"request handled\"",
        // Wrapping, as a release build does: the suite's subscription probe is event u64::MAX.
        1_700_000_000_000u64.wrapping_add(i),
        i % 17,
        if i.is_multiple_of(2) { 500 } else { 200 },
        (i % 1000) as f64 / 997.0,
    );
    if size >= 512 {
        e.push_str(&format!(
            ",\"host\":\"host-{}\",\"region\":\"eu-west-1\",\"method\":\"GET\",\"path\":\"/api/v1/items/{}\"",
            i % 31,
            i % 1000
        ));
    }
    if size >= 1024 {
        e.push_str(&format!(
            ",\"bytes\":{},\"user\":\"user-{}\",\"agent\":\"bench/1.0\",\"trace\":\"{:016x}\",\"span\":\"{:08x}\",\
             \"env\":\"prod\",\"version\":\"1.2.3\",\"retries\":{},\"cache\":\"miss\"",
            i * 7 % 65536,
            i % 5000,
            i.wrapping_mul(0x9e3779b97f4a7c15),
            i as u32,
            i % 3
        ));
    }
    e.push_str(",\"pad\":\"");
    while e.len() < size.saturating_sub(2) {
        e.push('x');
    }
    e.push_str("\"}");
    e.into_bytes()
}

/// The Avro schema of [`event`]'s 1 KB events (every field a 1 KB event has).
pub const EVENT_AVSC: &str = r#"{"type": "record", "name": "Event", "fields": [
  {"name": "id", "type": "long"}, {"name": "ts", "type": "long"},
  {"name": "service", "type": "string"}, {"name": "status", "type": "int"},
  {"name": "latency", "type": "double"}, {"name": "msg", "type": "string"},
  {"name": "host", "type": "string"}, {"name": "region", "type": "string"},
  {"name": "method", "type": "string"}, {"name": "path", "type": "string"},
  {"name": "bytes", "type": "long"}, {"name": "user", "type": "string"},
  {"name": "agent", "type": "string"}, {"name": "trace", "type": "string"},
  {"name": "span", "type": "string"}, {"name": "env", "type": "string"},
  {"name": "version", "type": "string"}, {"name": "retries", "type": "int"},
  {"name": "cache", "type": "string"}, {"name": "pad", "type": "string"}]}"#;

/// User + system CPU seconds of a process so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name, in parentheses, may hold spaces: count fields after it.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Clock ticks of 1/100 s (USER_HZ on Linux).
    (tick(11) + tick(12)) / 100.0
}

/// CPU time of the whole machine so far, from /proc/stat: (busy, total) clock ticks over all
/// cores; busy is everything but idle and I/O wait.
pub fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The share of the machine's CPU used between two [`machine_ticks`] readings, in percent.
pub fn busy_percent(from: (u64, u64), to: (u64, u64)) -> f64 {
    let total = to.1.saturating_sub(from.1).max(1);
    100.0 * to.0.saturating_sub(from.0) as f64 / total as f64
}

/// A memory figure of a process in KiB from /proc/PID/status: `VmRSS` (resident now), `VmHWM`
/// (peak resident); None once the process is gone.
pub fn memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Peak resident set size of a process, in MiB (0 once it is gone).
pub fn peak_rss_mib(pid: u32) -> f64 {
    memory_kib(pid, "VmHWM").map_or(0.0, |kb| kb as f64 / 1024.0)
}

/// A reading over a measured window of one worker process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading {
    /// Input events handled in the window.
    pub events: f64,
    /// Length of the window.
    pub seconds: f64,
    /// CPU seconds the worker used in the window.
    pub cpu_seconds: f64,
    /// The worker's peak RSS.
    pub peak_rss_mib: f64,
}

impl Reading {
    /// Input events per second.
    pub fn rate(&self) -> f64 {
        self.events / self.seconds
    }

    /// CPU microseconds per input event.
    pub fn cpu_us(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.events
    }
}

/// Watches a worker process until `count()` reaches `expect` outputs, measuring from the moment
/// 2% are out (the worker connected and warm) to the last. `per_output` is the input events per
/// output (2 for a filter passing half).
pub fn watch(
    pid: u32,
    expect: u64,
    per_output: f64,
    timeout: Duration,
    mut count: impl FnMut() -> u64,
) -> Reading {
    let mut start: Option<(Instant, u64, f64)> = None;
    let mut n = 0;
    let done = try_wait_for(timeout, || {
        n = count();
        if start.is_none() && n >= expect / 50 {
            start = Some((Instant::now(), n, cpu_seconds(pid)));
        }
        (n >= expect).then_some(n)
    });
    let n = done.unwrap_or_else(|| panic!("timed out at {n} of {expect} outputs"));
    let (t0, n0, c0) = start.unwrap_or((Instant::now(), 0, 0.0));
    Reading {
        events: (n - n0) as f64 * per_output,
        seconds: t0.elapsed().as_secs_f64(),
        cpu_seconds: cpu_seconds(pid) - c0,
        peak_rss_mib: peak_rss_mib(pid),
    }
}
