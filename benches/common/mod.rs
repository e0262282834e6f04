//! What the benchmarks share: the events they move, process CPU and memory readings, a
//! nats-server of their own.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A JSON event of about `size` bytes with the fields the workloads use (`id`, `ts`, `service`,
/// `status`: 500 for even ids, else 200, `latency`, `msg`) and some 15 more, padded to size.
pub fn event(i: u64, size: usize) -> Vec<u8> {
    let mut e = format!(
        "{{\"id\":{i},\"ts\":{},\"service\":\"svc-{}\",\"status\":{},\"latency\":{:.4},\"msg\":\"request handled\"",
        1_700_000_000_000u64 + i,
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

fn stat_fields(pid: &str) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// User + system CPU seconds of a process (`self` for this one), from /proc (Linux).
pub fn cpu_seconds(pid: &str) -> f64 {
    let fields = stat_fields(pid);
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

/// Peak resident set size of a process, in MiB.
pub fn peak_rss_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
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
    let pid = pid.to_string();
    let deadline = Instant::now() + timeout;
    let mut start: Option<(Instant, u64, f64)> = None;
    loop {
        let n = count();
        if start.is_none() && n >= expect / 50 {
            start = Some((Instant::now(), n, cpu_seconds(&pid)));
        }
        if n >= expect {
            let (t0, n0, c0) = start.unwrap_or((Instant::now(), 0, 0.0));
            return Reading {
                events: (n - n0) as f64 * per_output,
                seconds: t0.elapsed().as_secs_f64(),
                cpu_seconds: cpu_seconds(&pid) - c0,
                peak_rss_mib: peak_rss_mib(&pid),
            };
        }
        assert!(
            Instant::now() < deadline,
            "timed out at {n} of {expect} outputs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A nats-server of the benchmark's own, with JetStream (file storage in a temp dir).
pub struct NatsServer {
    child: Child,
    pub url: String,
    _store: tempfile::TempDir,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = tempfile::tempdir().unwrap();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is installed (scripts/setup.sh nats)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        NatsServer {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            _store: store,
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when dropped.
pub struct Worker(pub Child);

impl Worker {
    pub fn spawn(cmd: &mut Command) -> Worker {
        Worker(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start a worker"),
        )
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
