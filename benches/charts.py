#!/usr/bin/env python3
"""Charts of a benchmark suite run, from the JSON it writes with --json:

    cargo bench --bench suite -- --json benches/results.json    # every workload
    python3 benches/charts.py benches/results.json               # -> benches/charts/*.svg

cpu-per-event.svg: CPU-microseconds per event by runner, for each workload.
w3-loss.svg: W3's events lost against the offered rate, by runner.
w5-latency.svg: W5's p50, p99 and p99.9 latency, by bus, runner and rate.
A chart whose workload did not run is not written. matplotlib: scripts/setup.sh bench.
"""

import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# The same bytes for the same results: no date, fixed ids.
plt.rcParams["svg.hashsalt"] = "sluice"
METADATA = {"Date": None}


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, metadata=METADATA)
    plt.close(fig)
    return True


def provenance(records):
    first = records[0]
    return f"{first.get('commit') or 'unknown commit'}, {first['machine']}"


def cpu_per_event(rows, path):
    measured = [r for r in rows if r["reading"]]
    if not measured:
        return False
    labels = [f"{r['workload']} {r['runner']}" for r in measured]
    values = [r["reading"]["cpu_us_per_event"] for r in measured]
    workloads = sorted({r["workload"] for r in measured})
    colours = {w: plt.cm.tab10(i % 10) for i, w in enumerate(workloads)}
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(labels) + 1.5))
    bars = ax.barh(labels, values, color=[colours[r["workload"]] for r in measured])
    ax.bar_label(bars, fmt="%.1f", padding=3, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("CPU-microseconds per input event (lower is better)")
    ax.set_title(f"CPU per event by runner\n{provenance(rows)}", fontsize=10)
    return save(fig, path)


def w3_loss(trials, path):
    if not trials:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    for runner in sorted({t["runner"] for t in trials}):
        mine = sorted((t for t in trials if t["runner"] == runner), key=lambda t: t["rate"])
        rates = [t["rate"] for t in mine]
        lost = [100.0 * t["lost"] / t["sent"] for t in mine]
        ax.plot(rates, lost, marker="o", label=runner)
    ax.set_xlabel("offered rate, events/s")
    ax.set_ylabel("events lost, %")
    ax.set_title(f"W3: core NATS, loss against offered rate\n{provenance(trials)}", fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3)
    return save(fig, path)


def w5_latency(runs, path):
    if not runs:
        return False
    labels = [f"{r['bus']}\n{r['runner']}\n{r['rate']}/s" for r in runs]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(runs)), 4.5))
    width = 0.27
    for i, (key, name) in enumerate([("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")]):
        xs = [j + (i - 1) * width for j in range(len(runs))]
        ax.bar(xs, [r[key] if r[key] is not None else 0 for r in runs], width, label=name)
    ax.set_xticks(range(len(runs)), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("milliseconds from send to receipt (log)")
    ax.set_title(f"W5: latency at a fixed rate\n{provenance(runs)}", fontsize=10)
    ax.legend()
    return save(fig, path)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    records = json.loads(pathlib.Path(argv[1]).read_text())
    out = pathlib.Path(argv[2] if len(argv) > 2 else pathlib.Path(__file__).parent / "charts")
    out.mkdir(parents=True, exist_ok=True)
    kind = lambda k: [r for r in records if r["kind"] == k]  # noqa: E731
    charts = [
        ("cpu-per-event.svg", cpu_per_event, kind("row")),
        ("w3-loss.svg", w3_loss, kind("w3_rate")),
        ("w5-latency.svg", w5_latency, kind("latency")),
    ]
    for name, draw, records in charts:
        if draw(records, out / name):
            print(out / name)


if __name__ == "__main__":
    main(sys.argv)
