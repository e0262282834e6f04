#!/usr/bin/env python3
"""Charts of a benchmark suite run, from the JSON it writes with --json:

    cargo bench --bench suite -- --json benches/results.json    # every workload
    python3 benches/charts.py benches/results.json               # -> benches/charts/*.svg

cpu-per-event.svg: CPU-microseconds per event by runner, for each workload.
w3-loss.svg: W3's events lost against the offered rate, by runner.
w5-latency.svg: W5's p50, p99 and p99.9 latency, by bus, runner and rate.
A chart whose workload did not run is not written. matplotlib: scripts/setup.sh bench.

    python3 benches/charts.py --compare DIR RUN.json...   # benches/before-after.sh does this

prints, for each workload, sluice's CPU per event, rate and peak RSS by the commit of the
binary measured (mean and range over the runs), beside the raw loop's in the same runs, and
draws DIR/before-after.svg.
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
    sluice = first.get("sluice_commit", first.get("commit")) or "unknown commit"
    return f"sluice {sluice}, {first['machine']}"


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


def spread(values, digits=2):
    """mean (min-max) of the values, or a dash."""
    if not values:
        return "-"
    f = lambda v: f"{v:,.{digits}f}"  # noqa: E731
    mean = sum(values) / len(values)
    return f"{f(mean)} ({f(min(values))}-{f(max(values))})" if len(values) > 1 else f(mean)


def compare(out, paths):
    """sluice's readings by the commit of its binary, over several runs of the suite."""
    runs = [json.loads(pathlib.Path(p).read_text()) for p in paths]
    commits = []
    readings = {}  # (workload, runner, commit) -> [reading]
    best_w3 = {}  # (runner, commit) -> [highest rate with nothing lost, per run]
    for records in runs:
        for r in records:
            commit = r.get("sluice_commit") or "unknown"
            if commit not in commits:
                commits.append(commit)
            if r["kind"] == "row" and r["reading"] and r["runner"] in ("raw", "raw-reshape", "sluice"):
                readings.setdefault((r["workload"], r["runner"], commit), []).append(r["reading"])
        by_runner = {}
        for t in (r for r in records if r["kind"] == "w3_rate" and r["lost"] == 0):
            key = (t["runner"], t.get("sluice_commit") or "unknown")
            by_runner[key] = max(by_runner.get(key, 0), t["rate"])
        for key, rate in by_runner.items():
            best_w3.setdefault(key, []).append(rate)
    workloads = sorted({w for (w, _, _) in readings})
    field = lambda rs, k: [x[k] for x in rs if x.get(k) is not None]  # noqa: E731
    print("| workload | sluice | runs | sluice CPU-µs/event | raw CPU-µs/event | sluice/raw "
          "| raw-reshape CPU-µs/event | sluice events/s | sluice peak RSS MiB | raw peak RSS MiB |")
    print("| --- | --- | ---: | --- | --- | ---: | --- | --- | --- | --- |")
    chart = []
    for w in workloads:
        for c in commits:
            mine = readings.get((w, "sluice", c), [])
            if not mine:
                continue
            raw = readings.get((w, "raw", c), [])
            cpu, raw_cpu = field(mine, "cpu_us_per_event"), field(raw, "cpu_us_per_event")
            ratio = f"{(sum(cpu) / len(cpu)) / (sum(raw_cpu) / len(raw_cpu)):.2f}x" if raw_cpu else "-"
            reshape = field(readings.get((w, "raw-reshape", c), []), "cpu_us_per_event")
            print(f"| {w} | {c} | {len(mine)} | {spread(cpu)} | {spread(raw_cpu)} | {ratio} "
                  f"| {spread(reshape)} | {spread(field(mine, 'events_per_s'), 0)} "
                  f"| {spread(field(mine, 'peak_rss_mib'), 0)} | {spread(field(raw, 'peak_rss_mib'), 0)} |")
            chart.append((w, c, cpu))
    for (runner, c), rates in sorted(best_w3.items()):
        print(f"\nW3 highest rate with nothing lost, {runner} (sluice {c}): "
              + ", ".join(f"{r:,}/s" for r in rates))
    if not chart:
        return
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(chart) + 1.5))
    colours = {c: plt.cm.tab10(i % 10) for i, c in enumerate(commits)}
    labels = [f"{w} sluice {c}" for (w, c, _) in chart]
    means = [sum(v) / len(v) for (_, _, v) in chart]
    errors = [[m - min(v) for m, (_, _, v) in zip(means, chart)],
              [max(v) - m for m, (_, _, v) in zip(means, chart)]]
    bars = ax.barh(labels, means, xerr=errors, capsize=3,
                   color=[colours[c] for (_, c, _) in chart])
    ax.bar_label(bars, fmt="%.2f", padding=8, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("CPU-microseconds per input event, mean and range over runs (lower is better)")
    ax.set_title(f"Before and after: {' -> '.join(commits)}\n{runs[0][0]['machine']}", fontsize=10)
    path = pathlib.Path(out) / "before-after.svg"
    save(fig, path)
    print(f"\n{path}")


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    if argv[1] == "--compare":
        if len(argv) < 4:
            sys.exit(__doc__)
        compare(argv[2], argv[3:])
        return
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
