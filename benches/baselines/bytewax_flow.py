"""W1/W2 as a Bytewax dataflow, Kafka to Kafka; run.py starts it in the bench virtualenv.

Written the way the Bytewax docs show a Kafka-to-Kafka dataflow: `kop.input` (the Kafka
connector's operators) from the earliest offset, consumer errors raised, `op.map` /
`op.filter_map` with `json.loads` / `json.dumps` per event, `kop.output`. The input uses
`tail=False`: each partition's source ends at the end of the partition, so the dataflow finishes
by itself; the topic must therefore hold exactly N events (a different count fails in run.py).
The Kafka sink flushes its producer after every batch and at close. Run by
`bytewax.run.cli_main` (what `python -m bytewax.run` calls) with its default of one worker.
Prints `{"consumed": n, "produced": m}` on stdout when done.

  python benches/baselines/bytewax_flow.py --workload {w1,w2} --brokers B --input IN \
      --output OUT
"""
import argparse
import json

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.connectors.kafka import operators as kop
from bytewax.dataflow import Dataflow
from bytewax.run import cli_main
from confluent_kafka import OFFSET_BEGINNING

counts = {"consumed": 0, "produced": 0}


def passthrough(msg):
    counts["consumed"] += 1
    counts["produced"] += 1
    return KafkaSinkMessage(msg.key, json.dumps(json.loads(msg.value)).encode())


def filter_reshape(msg):
    counts["consumed"] += 1
    e = json.loads(msg.value)
    if e["status"] < 500:
        return None
    counts["produced"] += 1
    out = {"ts": e["ts"], "service": e["service"], "msg": e["msg"], "latency_ms": e["latency"] * 1000}
    return KafkaSinkMessage(msg.key, json.dumps(out).encode())


def build(workload, brokers, input_topic, output_topic):
    flow = Dataflow(f"baseline-{workload}")
    kinp = kop.input("in", flow, brokers=[brokers], topics=[input_topic], tail=False,
                     starting_offset=OFFSET_BEGINNING)
    op.raises("errors", kinp.errs)
    if workload == "w1":
        out = op.map("passthrough", kinp.oks, passthrough)
    else:
        out = op.filter_map("filter-reshape", kinp.oks, filter_reshape)
    kop.output("out", out, brokers=[brokers], topic=output_topic)
    return flow


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", choices=["w1", "w2"], required=True)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    args = ap.parse_args()
    cli_main(build(args.workload, args.brokers, args.input, args.output))
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
