//! The suite's results as JSON, for `benches/charts.py`: one record per table row, per W3 rate
//! tried and per W5 run, each with the commit, the machine and the command that made it, and
//! the commit of the sluice binary measured (`SLUICE_BIN`, `SLUICE_COMMIT`).

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::Row;
use super::latency::Latency;

/// One W3 rate tried by one runner: how many of the events sent were lost, and its reading.
pub struct Trial {
    pub runner: &'static str,
    pub rate: u64,
    pub sent: u64,
    pub lost: u64,
    pub cpu_us: f64,
}

/// Where a run came from: written into every record.
fn provenance() -> Value {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let commit =
        git(&["rev-parse", "--short", "HEAD"]).map(|c| if dirty { c + "-dirty" } else { c });
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find_map(|l| {
        l.strip_prefix("model name")?
            .split_once(':')
            .map(|(_, m)| m.trim())
    });
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|kb| (kb / 1024.0 / 1024.0).round());
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let settings: Vec<String> = [
        "W3_RATES",
        "W5_RATE",
        "W5_KAFKA_RATE",
        "W6_SECONDS",
        "W1T_RUNNERS",
        "SLUICE_FETCH_WAIT_MS",
        "SLUICE_KAFKA_OPTIONS",
        "SLUICE_MAX_IN_FLIGHT",
    ]
    .iter()
    .filter_map(|k| Some(format!("{k}={}", std::env::var(k).ok()?)))
    .collect();
    let command = format!(
        "{}cargo bench --bench suite -- {}",
        settings.iter().map(|s| s.clone() + " ").collect::<String>(),
        args.join(" ")
    );
    // The sluice binary measured: this checkout's own, or SLUICE_BIN built from SLUICE_COMMIT
    // (unknown when not given), so records of swapped binaries name the right one.
    let sluice_commit = match std::env::var_os("SLUICE_BIN") {
        None => commit.clone(),
        Some(_) => std::env::var("SLUICE_COMMIT").ok(),
    };
    json!({
        "commit": commit,
        "sluice_commit": sluice_commit,
        "sluice_binary": super::sluice_binary(),
        "machine": format!("{cores} cores ({}), {} GiB", model.unwrap_or("unknown CPU"), mem_gib.unwrap_or(0.0)),
        "command": command.trim_end(),
        "time": jiff::Timestamp::now().to_string(),
    })
}

/// Writes every record to `path`, as one JSON array.
pub fn write(path: &Path, rows: &[Row], trials: &[Trial], latencies: &[Latency]) {
    let from = provenance();
    let with = |mut record: Value| {
        if let (Value::Object(r), Value::Object(f)) = (&mut record, &from) {
            r.extend(f.clone());
        }
        record
    };
    let mut records = Vec::new();
    for r in rows {
        let reading = r.reading.map(|x| {
            json!({"events_per_s": x.rate(), "cpu_us_per_event": x.cpu_us(), "peak_rss_mib": x.peak_rss_mib})
        });
        records.push(with(json!({
            "kind": "row",
            "workload": r.workload,
            "runner": r.runner,
            "reading": reading,
            "note": r.note,
        })));
    }
    for t in trials {
        records.push(with(json!({
            "kind": "w3_rate",
            "workload": "W3",
            "runner": t.runner,
            "rate": t.rate,
            "sent": t.sent,
            "lost": t.lost,
            "cpu_us_per_event": t.cpu_us,
        })));
    }
    for l in latencies {
        records.push(with(json!({
            "kind": "latency",
            "workload": "W5",
            "bus": l.bus,
            "runner": l.runner,
            "rate": l.rate,
            "p50_ms": l.quantile_ms(0.5),
            "p99_ms": l.quantile_ms(0.99),
            "p999_ms": l.quantile_ms(0.999),
            "received": l.samples.len(),
            "expected": l.expected,
        })));
    }
    let text = serde_json::to_string_pretty(&records).unwrap();
    std::fs::write(path, text + "\n").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    println!("\nresults: {}", path.display());
}
