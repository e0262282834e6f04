#!/usr/bin/env python3
"""Confluent's own Schema Registry serializers (confluent-kafka, fastavro, protobuf), producing
what sluice reads and reading what sluice writes, for the tests in tests/schema_formats.rs.

  registry_clients.py produce-orders   BROKERS TOPIC REGISTRY SCHEMA.avsc COUNT
  registry_clients.py produce-avro     BROKERS TOPIC REGISTRY SCHEMA.avsc < values.jsonl
  registry_clients.py produce-protobuf BROKERS TOPIC REGISTRY DESCRIPTORS MESSAGE < values.jsonl
  registry_clients.py consume-avro     BROKERS TOPIC REGISTRY COUNT
  registry_clients.py consume-protobuf BROKERS TOPIC REGISTRY DESCRIPTORS MESSAGE COUNT

Producers serialize each JSON line (Avro: fastavro's mapping of JSON values; Protobuf:
json_format.ParseDict) with the topic-name strategy, registering the schema. Consumers print
one JSON object per record: {"key", "value"}, the value as the deserializer returns it (Avro:
logical types as JSON text; Protobuf: MessageToDict with the .proto field names, 64-bit
integers as numbers). DESCRIPTORS is a FileDescriptorSet file; MESSAGE a full message name.
"""
import base64
import datetime
import decimal
import json
import sys
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def message_class(descriptors, name):
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(descriptors, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def order(i):
    """Order i, as tests/schema_formats.rs's `order` describes it."""
    return {
        "id": i,
        "customer": f"c{i % 97}",
        "status": ["NEW", "PAID", "SHIPPED"][i % 3],
        "amount": decimal.Decimal(f"{i % 1000}.{i % 100:02d}"),
        "placed_at": datetime.datetime.fromtimestamp((1_700_000_000_000 + i * 1000) / 1000, datetime.timezone.utc),
        "lines": [{"sku": f"s{j}", "qty": j + 1, "price": float(i % 50) + 0.25 * j} for j in range(1 + i % 3)],
        "note": None if i % 5 == 0 else f"n{i}",
    }


def produce_orders(brokers, topic, serializer, count):
    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5, "enable.idempotence": True})
    failed = []
    ctx = SerializationContext(topic, MessageField.VALUE)
    for i in range(count):
        while True:
            try:
                producer.produce(topic, value=serializer(order(i), ctx),
                                 on_delivery=lambda err, _msg: err and failed.append(str(err)))
                break
            except BufferError:
                producer.poll(0.1)
        if i % 10000 == 0:
            producer.poll(0)
    producer.flush(60)
    if failed or len(producer):
        sys.exit(f"not delivered: {failed[:3]} ({len(producer)} queued)")
    print(count)


def produce(brokers, topic, serializer, to_value):
    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5, "enable.idempotence": True})
    failed = []
    count = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        record = json.loads(line)
        ctx = SerializationContext(topic, MessageField.VALUE)
        value = serializer(to_value(record["value"]), ctx)
        producer.produce(topic, key=record.get("key"), value=value,
                         on_delivery=lambda err, _msg: err and failed.append(str(err)))
        count += 1
        if count % 10000 == 0:
            producer.poll(0)
    producer.flush(60)
    if failed or len(producer):
        sys.exit(f"not delivered: {failed[:3]} ({len(producer)} queued)")
    print(count)


def consume(brokers, topic, count, deserializer, to_json):
    consumer = Consumer({
        "bootstrap.servers": brokers,
        "group.id": f"check-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    seen = 0
    idle = 0
    while seen < count and idle < 60:
        msg = consumer.poll(1.0)
        if msg is None:
            idle += 1
            continue
        if msg.error():
            sys.exit(f"consumer error: {msg.error()}")
        idle = 0
        value = deserializer(msg.value(), SerializationContext(topic, MessageField.VALUE))
        key = msg.key().decode() if msg.key() is not None else None
        print(json.dumps({"key": key, "value": to_json(value)}, sort_keys=True))
        seen += 1
    consumer.close()


def avro_json(value):
    """fastavro's Python values as JSON: logical types as text, bytes as base64."""
    if isinstance(value, dict):
        return {k: avro_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [avro_json(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (datetime.date, datetime.time, uuid.UUID)):
        return str(value)
    return value


def main():
    command, brokers, topic, registry_url = sys.argv[1:5]
    rest = sys.argv[5:]
    registry = SchemaRegistryClient({"url": registry_url})
    if command == "produce-orders":
        serializer = AvroSerializer(registry, open(rest[0]).read(), conf={"auto.register.schemas": True})
        produce_orders(brokers, topic, serializer, int(rest[1]))
    elif command == "produce-avro":
        schema = open(rest[0]).read()
        serializer = AvroSerializer(registry, schema, conf={"auto.register.schemas": True})
        produce(brokers, topic, serializer, lambda v: v)
    elif command == "produce-protobuf":
        cls = message_class(rest[0], rest[1])
        serializer = ProtobufSerializer(cls, registry, conf={"auto.register.schemas": True, "use.deprecated.format": False})
        produce(brokers, topic, serializer, lambda v: json_format.ParseDict(v, cls()))
    elif command == "consume-avro":
        deserializer = AvroDeserializer(registry)
        consume(brokers, topic, int(rest[0]), deserializer, avro_json)
    elif command == "consume-protobuf":
        cls = message_class(rest[0], rest[1])
        deserializer = ProtobufDeserializer(cls, conf={"use.deprecated.format": False})
        to_json = lambda m: json.loads(json_format.MessageToJson(
            m, preserving_proto_field_name=True, always_print_fields_with_no_presence=True))
        consume(brokers, topic, int(rest[2]), deserializer, to_json)
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
