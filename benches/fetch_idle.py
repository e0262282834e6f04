#!/usr/bin/env python3
"""What an idle Kafka input costs for each fetch.wait.max.ms: the CPU a sluice worker uses
while its topic gets no events (each fetch then waits its whole time on the broker and comes
back empty).

    python3 benches/fetch_idle.py [WAIT_MS|default ...]   # default: default 500 100 20 5

Runs Apache Kafka (scripts/kafka.sh, on free ports, data in a temp dir) and
target/release/sluice; needs confluent-kafka (pip) to create the topic. Prints, per setting, the worker's CPU in percent of
one core over 20 s, after 10 s for it to join its group.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, "target", "release", "sluice")
PARTITIONS = 4
WARM, MEASURED = 10.0, 20.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_listening(port, deadline):
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"Apache Kafka did not listen on {port}")


def idle_cpu(brokers, topic, wait, workdir):
    options = "" if wait == "default" else f'      fetch.wait.max.ms: "{wait}"\n'
    path = os.path.join(workdir, f"idle-{wait}.yaml")
    with open(path, "w") as f:
        f.write(
            f"input:\n  kafka:\n    brokers: {brokers}\n    topics: [{topic}]\n"
            f"    group_id: idle-{wait}-{os.getpid()}\n"
            + (f"    options:\n{options}" if options else "")
            + f"output:\n  kafka:\n    brokers: {brokers}\n    topic: {topic}-out\nerrors: drop\n"
        )
    worker = subprocess.Popen(
        [SLUICE, "run", path],
        env={**os.environ, "RUST_LOG": "warn"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(WARM)
        if worker.poll() is not None:
            sys.exit(f"sluice exited with {worker.returncode}")
        c0, t0 = cpu_seconds(worker.pid), time.monotonic()
        time.sleep(MEASURED)
        c1, t1 = cpu_seconds(worker.pid), time.monotonic()
        return 100.0 * (c1 - c0) / (t1 - t0)
    finally:
        worker.terminate()
        worker.wait()


def main():
    waits = sys.argv[1:] or ["default", "500", "100", "20", "5"]
    port = free_port()
    brokers = f"127.0.0.1:{port}"
    data = tempfile.TemporaryDirectory()
    kafka = subprocess.Popen(
        [os.path.join(ROOT, "scripts", "kafka.sh")],
        env={**os.environ, "PORT": str(port), "CONTROLLER_PORT": str(free_port()),
             "KAFKA_DATA": data.name},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, time.monotonic() + 120)
        topic = f"idle-{os.getpid()}"
        admin = AdminClient({"bootstrap.servers": brokers})
        for t in (topic, f"{topic}-out"):
            admin.create_topics([NewTopic(t, PARTITIONS, 1)])[t].result(30)
        del admin  # closed now: it would log the broker going away at the end
        with tempfile.TemporaryDirectory() as workdir:
            print(f"{'fetch.wait.max.ms':>18} {'idle CPU % of a core':>21}")
            for wait in waits:
                print(f"{wait:>18} {idle_cpu(brokers, topic, wait, workdir):>21.2f}", flush=True)
    finally:
        kafka.terminate()
        kafka.wait()
        data.cleanup()


if __name__ == "__main__":
    main()
