"""W1/W2 as a Quix Streams application, Kafka to Kafka; run.py starts it in the bench virtualenv.

Written the way the Quix Streams docs show a Kafka-to-Kafka app: an `Application`, `app.topic`
with the JSON (de)serialisers (the defaults; they use orjson), `sdf.filter` + `sdf.apply`,
`sdf.to_topic`, `app.run()`. It stops once N input messages are processed
(`on_message_processed` calls `app.stop()`); on stop the app commits its checkpoint, which
flushes the producer first. Then it prints `{"consumed": n, "produced": m}` on stdout.

  python benches/baselines/quixstreams_app.py --workload {w1,w2} --brokers B --input IN \
      --output OUT --count N --group G [--session-timeout-ms MS]
"""
import argparse
import json
import shutil
import tempfile

from quixstreams import Application


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", choices=["w1", "w2"], required=True)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    args = ap.parse_args()

    # The app is stateless; its state directory would otherwise be ./state.
    state_dir = tempfile.mkdtemp(prefix="quixstreams-state-")
    consumed = produced = 0

    def on_processed(topic, partition, offset):
        nonlocal consumed
        consumed += 1
        if consumed >= args.count:
            app.stop()

    app = Application(
        broker_address=args.brokers,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        consumer_extra_config={"session.timeout.ms": args.session_timeout_ms},
        on_message_processed=on_processed,
        state_dir=state_dir,
        loglevel="WARNING",
    )
    input_topic = app.topic(args.input, value_deserializer="json")
    output_topic = app.topic(args.output, value_serializer="json")
    sdf = app.dataframe(input_topic)

    if args.workload == "w2":
        def reshape(e):
            nonlocal produced
            produced += 1
            return {"ts": e["ts"], "service": e["service"], "msg": e["msg"], "latency_ms": e["latency"] * 1000}

        sdf = sdf.filter(lambda e: e["status"] >= 500)
        sdf = sdf.apply(reshape)
    sdf.to_topic(output_topic)

    try:
        app.run()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    if args.workload == "w1":
        produced = consumed
    print(json.dumps({"consumed": consumed, "produced": produced}), flush=True)


if __name__ == "__main__":
    main()
