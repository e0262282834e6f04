#!/usr/bin/env python3
"""Runs one baseline (a tool a user would pick instead of sluice) once, Kafka topic to Kafka topic,
and prints what it cost as one JSON line. Install the tools with `scripts/setup.sh bench`.

  python3 benches/baselines/run.py --tool {kcat-jaq,quixstreams,bytewax,kafka-streams,kafka-streams-eos} \\
      --workload {w1,w2} \\
      --brokers HOST:PORT --input TOPIC --output TOPIC --count N [--group G] \\
      [--session-timeout-ms MS] [--timeout SECONDS]

The input topic holds N events like `event(i)` in testkit/src/measure.rs (1 KB of JSON, about
20 fields, every other one with status 500). Each tool reads it from the earliest offset:
  w1  passthrough: every event parsed as JSON and written back out, re-serialised
  w2  filter and reshape, half pass:
      select(.status >= 500) | {ts, service, msg, latency_ms: (.latency * 1000)}

On stdout, once all N events are consumed and their results delivered to the broker:
  {"tool": ..., "workload": ..., "events": N, "outputs": M, "wall_s": ..., "cpu_s": ..., "peak_rss_kb": ...}
- events: input events the tool consumed (checked to be N).
- outputs: records written to the output topic (see each tool for how they are counted).
- wall_s: from starting the tool's processes until the last one exits, so process start-up,
  imports, connecting and any consumer-group join are included.
- cpu_s: user + system CPU of every process of the tool (os.wait4 on each; librdkafka and JVM
  threads included); run.py's own is not counted.
- peak_rss_kb: the largest max RSS among those processes.
The tools' own logs go to stderr. Exit code 1, and no JSON line, if a tool fails, consumes other
than N events, or runs past --timeout (then it is killed).

How each tool is run, and why:

kcat-jaq: `kcat -C -b B -t IN -o beginning -c N | jaq -c PROGRAM | kcat -P -b B -t OUT`
- `-C`, not `-G`: the simple consumer reads every partition without a consumer group, the usual
  way to drain a topic with kcat; there is no group join to wait for.
- `-o beginning`: the earliest offset.
- `-c N`: exit after exactly N messages. Not `-e` (exit at the end of the partitions): with `-e`
  a topic holding fewer than N events would end early and pass for a success; with `-c` a
  shortfall runs into --timeout and fails.
- No `-u`: it makes kcat write(2) every message. Default stdio buffering of the pipe is what a
  user gets; kcat flushes it at exit, so completion is unaffected.
- `jaq -c .` for w1, so every tool parses and re-serialises each event; the w2 program for w2.
  jaq reads its input as a stream (results come out before its input ends).
- `kcat -P`: one message per line, default librdkafka producer settings; before exiting it
  waits until every message is delivered, and exits 1 if any delivery failed.
- outputs: lines jaq wrote. kcat reports no count (its `-T` echo drops the delimiters), so
  run.py relays jaq's output to `kcat -P` and counts the lines on the way; the relay's CPU is
  not counted (it copies 64 KiB at a time).
- Keys are not carried: `kcat -C` prints values only, and jaq could not pass a `-K` key prefix.
- Debian's kcat 1.7.1, on librdkafka 2.0.2; kcat and jaq inherit run.py's environment.

quixstreams (benches/baselines/quixstreams_app.py, in the bench virtualenv):
- An Application with the default JSON (de)serialisers, `sdf.filter` + `sdf.apply`, `to_topic`;
  consumer group G (fresh by default) with auto.offset.reset=earliest.
- session.timeout.ms is --session-timeout-ms (6000, like the repo's tests), as a user running
  one short job would set it.
- It stops after processing N messages; on stop it commits its checkpoint, which flushes the
  producer. outputs: records handed to the producer (and so flushed).

bytewax (benches/baselines/bytewax_flow.py, in the bench virtualenv):
- The Kafka connector's `input` (tail=False: ends at the end of each partition, no consumer
  group) and `output`, `json.loads`/`json.dumps` per event, one worker. The topic must hold
  exactly N events. outputs: records handed to the sink (it flushes after every batch).

kafka-streams, kafka-streams-eos (benches/baselines/kafka-streams/, StreamsBaseline; built by
`scripts/setup.sh bench`, run by the `java` on PATH, Java 17):
- A Kafka Streams application written the way its docs show a stateless one: `builder.stream`
  with byte-array serdes (keys kept), Jackson in `mapValues` + `filter`, `to`; one stream thread;
  application.id G (fresh by default: it is the consumer group), auto.offset.reset=earliest.
- processing.guarantee is at_least_once for kafka-streams and exactly_once_v2 for
  kafka-streams-eos: Kafka Streams users pick one of the two, and they cost differently (every
  commit of exactly_once_v2 ends a transaction). Every other setting is Kafka Streams' default,
  as a user gets it: commit.interval.ms is 30 s with at_least_once, 100 ms with exactly_once_v2.
  The one exception is the consumer's session.timeout.ms, --session-timeout-ms as for quixstreams.
- `java -cp 'target/classes:target/libs/*'` with the JVM's default options: wall_s and cpu_s
  include the JVM's start-up and JIT warm-up, as a user's run would.
- It stops once it has seen N input records (counted before the filter): its main thread then
  closes the client, which commits (flushes the producer and commits the offsets; with
  exactly_once_v2, commits the transaction). outputs: records that reached the sink, and so were
  flushed (or committed) by the close.

Which broker: quixstreams needs DescribeConfigs, which librdkafka's mock cluster cannot answer
(it names no valid controller: "Failed while waiting for controller: Local: Timed out"), and
Kafka Streams a real group coordinator, so both run against Apache Kafka (scripts/kafka.sh, or
the suite's own) only. bytewax and kcat-jaq run against both.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

PROGRAMS = {
    "w1": ".",
    "w2": "select(.status >= 500) | {ts, service, msg, latency_ms: (.latency * 1000)}",
}


class BaselineError(Exception):
    pass


def bench_python():
    """The bench virtualenv's interpreter (made by `scripts/setup.sh bench`)."""
    venv = Path(os.environ.get("BENCH_VENV", REPO / "target" / "bench-venv"))
    python = venv / "bin" / "python"
    if not python.exists():
        raise BaselineError(f"{python} not found: run scripts/setup.sh bench")
    return str(python)


class Processes:
    """Child processes of one baseline: reaps each with wait4 to get its own resource usage."""

    def __init__(self):
        self.procs = []
        self.usage = {}
        self.status = {}
        self.ended = {}
        self.lock = threading.Lock()
        self.threads = []

    def start(self, argv, name=None, **kwargs):
        proc = subprocess.Popen(argv, **kwargs)
        self.procs.append((name or argv[0], proc))
        t = threading.Thread(target=self._reap, args=(proc,), daemon=True)
        t.start()
        self.threads.append(t)
        return proc

    def _reap(self, proc):
        _, status, usage = os.wait4(proc.pid, 0)
        ended = time.monotonic()
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait for it again
        with self.lock:
            self.status[proc.pid] = proc.returncode
            self.usage[proc.pid] = usage
            self.ended[proc.pid] = ended

    def wait(self, deadline):
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self.threads):
            self.kill()
            raise BaselineError("timed out; killed")
        for name, proc in self.procs:
            if self.status[proc.pid] != 0:
                raise BaselineError(f"{name} (pid {proc.pid}) exited with {self.status[proc.pid]}")
        return max(self.ended.values())

    def kill(self):
        for _, proc in self.procs:
            if proc.pid not in self.status:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for t in self.threads:
            t.join(5)

    def cpu_s(self):
        return sum(u.ru_utime + u.ru_stime for u in self.usage.values())

    def peak_rss_kb(self):
        return max(u.ru_maxrss for u in self.usage.values())  # kilobytes on Linux


def relay(src, dst, counter):
    """Copies src to dst until EOF, counting lines; closes dst so the reader sees the end."""
    try:
        while chunk := os.read(src.fileno(), 1 << 16):
            counter[0] += chunk.count(b"\n")
            view = memoryview(chunk)
            while view:
                view = view[os.write(dst.fileno(), view):]
    except BrokenPipeError:
        pass  # the producer died: its exit code says why
    finally:
        src.close()
        dst.close()


def run_kcat_jaq(args, procs):
    lines = [0]
    started = time.monotonic()
    consume = procs.start(["kcat", "-C", "-b", args.brokers, "-t", args.input, "-o", "beginning",
                           "-c", str(args.count)], stdout=subprocess.PIPE)
    transform = procs.start(["jaq", "-c", PROGRAMS[args.workload]], stdin=consume.stdout,
                            stdout=subprocess.PIPE)
    consume.stdout.close()  # so kcat gets SIGPIPE if jaq exits
    produce = procs.start(["kcat", "-P", "-b", args.brokers, "-t", args.output],
                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    counter = threading.Thread(target=relay, args=(transform.stdout, produce.stdin, lines), daemon=True)
    counter.start()
    ended = procs.wait(started + args.timeout)
    counter.join(5)
    # kcat -C -c N exits 0 only once it has read N messages; kcat -P exits 0 only once every
    # line it read is delivered.
    return started, ended, args.count, lines[0]


def kafka_streams_argv(args):
    """The command running the Kafka Streams application (built by `scripts/setup.sh bench`)."""
    target = HERE / "kafka-streams" / "target"
    if not (target / "classes" / "dev" / "sluice" / "bench" / "StreamsBaseline.class").exists() \
            or not (target / "libs").is_dir():
        raise BaselineError(f"the Kafka Streams application is not built in {target}: run scripts/setup.sh bench")
    if shutil.which("java") is None:
        raise BaselineError("java (17) not found on PATH: run scripts/setup.sh bench")
    guarantee = "exactly_once_v2" if args.tool == "kafka-streams-eos" else "at_least_once"
    return ["java", "-cp", f"{target / 'classes'}:{target / 'libs'}/*", "dev.sluice.bench.StreamsBaseline",
            "--count", str(args.count), "--app-id", args.group, "--guarantee", guarantee,
            "--session-timeout-ms", str(args.session_timeout_ms)]


def run_one_process_tool(args, procs):
    """quixstreams, bytewax and Kafka Streams: one process, whose last stdout line is
    `{"consumed": n, "produced": m}`."""
    if args.tool == "quixstreams":
        argv = [bench_python(), str(HERE / "quixstreams_app.py"), "--count", str(args.count),
                "--group", args.group, "--session-timeout-ms", str(args.session_timeout_ms)]
        name = "quixstreams_app.py"
    elif args.tool == "bytewax":
        argv = [bench_python(), str(HERE / "bytewax_flow.py")]
        name = "bytewax_flow.py"
    else:
        argv = kafka_streams_argv(args)
        name = "StreamsBaseline"
    argv += ["--workload", args.workload, "--brokers", args.brokers, "--input", args.input,
             "--output", args.output]
    lines = []
    started = time.monotonic()
    proc = procs.start(argv, name=name, stdout=subprocess.PIPE, text=True)
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    ended = procs.wait(started + args.timeout)
    reader.join(5)
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise BaselineError(f"{args.tool} printed no result line: {lines[-3:]!r}") from None
    return started, ended, result["consumed"], result["produced"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", choices=["kcat-jaq", "quixstreams", "bytewax", "kafka-streams", "kafka-streams-eos"],
                    required=True)
    ap.add_argument("--workload", choices=["w1", "w2"], required=True)
    ap.add_argument("--brokers", required=True, help="HOST:PORT[,HOST:PORT...]")
    ap.add_argument("--input", required=True, help="input topic, holding N events")
    ap.add_argument("--output", required=True, help="output topic")
    ap.add_argument("--count", type=int, required=True, help="N: input events to consume")
    ap.add_argument("--group", help="consumer group (quixstreams; Kafka Streams' application.id; the others"
                    " use none). Default: a fresh one")
    ap.add_argument("--session-timeout-ms", type=int, default=6000,
                    help="quixstreams and Kafka Streams consumers. Default: 6000")
    ap.add_argument("--timeout", type=float, default=600, help="seconds before the tool is killed. Default: 600")
    args = ap.parse_args()
    if args.count <= 0:
        ap.error("--count must be positive")
    args.group = args.group or f"sluice-baseline-{args.tool}-{args.workload}-{uuid.uuid4().hex[:8]}"

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt  # so the tool's processes are killed too

    signal.signal(signal.SIGTERM, on_sigterm)
    procs = Processes()
    try:
        if args.tool == "kcat-jaq":
            started, ended, events, outputs = run_kcat_jaq(args, procs)
        else:
            started, ended, events, outputs = run_one_process_tool(args, procs)
        if events != args.count:
            raise BaselineError(f"consumed {events} events, expected {args.count}")
    except (BaselineError, OSError) as e:
        procs.kill()
        print(f"run.py: {args.tool} {args.workload}: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        procs.kill()
        print(f"run.py: {args.tool} {args.workload}: interrupted; killed", file=sys.stderr)
        sys.exit(130)

    print(json.dumps({
        "tool": args.tool,
        "workload": args.workload,
        "events": events,
        "outputs": outputs,
        "wall_s": round(ended - started, 3),
        "cpu_s": round(procs.cpu_s(), 3),
        "peak_rss_kb": procs.peak_rss_kb(),
    }), flush=True)


if __name__ == "__main__":
    main()
