#!/usr/bin/env python3
"""A small Kafka client for trying pipelines out (confluent-kafka, current librdkafka).

  scripts/kafka.py create TOPIC... [--partitions N]
  scripts/kafka.py produce TOPIC [--key-field FIELD] < events.jsonl   # one event per line
  scripts/kafka.py consume TOPIC [--count N] [--timeout SECONDS]      # prints one JSON object per record

Brokers: --brokers, or $KAFKA_BROKERS, or 127.0.0.1:9092.
"""
import argparse
import json
import os
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create(args):
    admin = AdminClient({"bootstrap.servers": args.brokers})
    futures = admin.create_topics([NewTopic(t, num_partitions=args.partitions, replication_factor=1) for t in args.topics])
    for topic, future in futures.items():
        try:
            future.result()
            print(f"created {topic}", file=sys.stderr)
        except KafkaException as e:
            if e.args[0].code() != 36:  # TOPIC_ALREADY_EXISTS
                raise
            print(f"{topic} exists", file=sys.stderr)


def produce(args):
    producer = Producer({"bootstrap.servers": args.brokers, "enable.idempotence": True})
    n = 0
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        key = None
        if args.key_field:
            try:
                key = str(json.loads(line).get(args.key_field))
            except (ValueError, AttributeError):
                key = None
        while True:
            try:
                producer.produce(args.topic, value=line.encode(), key=key.encode() if key else None)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        n += 1
    left = producer.flush(60)
    if left:
        sys.exit(f"{left} records not delivered")
    print(f"produced {n} records to {args.topic}", file=sys.stderr)


def consume(args):
    consumer = Consumer({"bootstrap.servers": args.brokers, "group.id": "kafka-py-reader", "enable.auto.commit": False})
    meta = consumer.list_topics(args.topic, timeout=10)
    partitions = meta.topics[args.topic].partitions
    consumer.assign([TopicPartition(args.topic, p, 0) for p in partitions])  # from the beginning
    seen = 0
    while args.count is None or seen < args.count:
        msg = consumer.poll(args.timeout)
        if msg is None:
            break
        if msg.error():
            continue
        value = msg.value() or b""
        try:
            payload = json.loads(value)
        except ValueError:
            payload = value.decode("utf-8", "replace")
        record = {
            "partition": msg.partition(),
            "offset": msg.offset(),
            "key": msg.key().decode("utf-8", "replace") if msg.key() else None,
            "headers": {k: (v or b"").decode("utf-8", "replace") for k, v in (msg.headers() or [])},
            "payload": payload,
        }
        print(json.dumps(record), flush=True)
        seen += 1
    consumer.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--brokers", default=os.environ.get("KAFKA_BROKERS", "127.0.0.1:9092"))
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create")
    c.add_argument("topics", nargs="+")
    c.add_argument("--partitions", type=int, default=3)
    c.set_defaults(run=create)
    pr = sub.add_parser("produce")
    pr.add_argument("topic")
    pr.add_argument("--key-field")
    pr.set_defaults(run=produce)
    co = sub.add_parser("consume")
    co.add_argument("topic")
    co.add_argument("--count", type=int)
    co.add_argument("--timeout", type=float, default=10.0, help="stop after this many seconds without a record")
    co.set_defaults(run=consume)
    args = p.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
