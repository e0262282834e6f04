#!/usr/bin/env python3
"""Confluent's own Schema Registry serializers (confluent-kafka, fastavro, protobuf), producing
what sluice reads and reading what sluice writes, for the tests in tests/schema_formats.rs.

  registry_clients.py produce-orders       BROKERS TOPIC REGISTRY SCHEMA.avsc COUNT
  registry_clients.py produce-all-avro     BROKERS TOPIC REGISTRY SCHEMA.avsc COUNT
  registry_clients.py produce-all-protobuf BROKERS TOPIC REGISTRY DESCRIPTORS MESSAGE COUNT
  registry_clients.py consume-avro         BROKERS TOPIC REGISTRY COUNT
  registry_clients.py consume-protobuf     BROKERS TOPIC REGISTRY DESCRIPTORS MESSAGE COUNT
  registry_clients.py expect-all-avro      - - - SCHEMA.avsc COUNT [values]
  registry_clients.py expect-all-protobuf  - - - DESCRIPTORS MESSAGE COUNT [values]
  registry_clients.py read-avro-file       - - - PATH
  registry_clients.py read-protobuf-file   - - - DESCRIPTORS MESSAGE PATH

Producers serialize with the topic-name strategy, registering the schema, and key record i
`k<i>` (produce-orders: no key). Consumers print one JSON object per record: {"key", "value"},
the value as the deserializer returns it (Avro: logical types as text, bytes as base64;
Protobuf: MessageToJson with the .proto field names). DESCRIPTORS is a FileDescriptorSet file;
MESSAGE a full message name.

The all-* producers write `all_avro(i)` / `all_proto(i)`: values of every Avro type and every
Protobuf field kind (tests/schemas/all-types.avsc and tests/schema_formats.rs's ALL_PROTO). The expect-all-*
commands print what the consumers would print for exactly those values: each value written and
read back by the same library, with no sluice in between; with `values`, only the values, as
the file readers print them.

read-avro-file reads an Avro object container file with fastavro's reader: it prints the file's
codec, then each record as the consumers print values. read-protobuf-file reads messages each
after its length (a varint, as Java's writeDelimitedTo writes them) and prints each likewise.
"""
import base64
import datetime
import decimal
import io
import json
import struct
import sys
import uuid

import fastavro

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.internal.decoder import _DecodeVarint32


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


def all_avro(i):
    """Values of every Avro type (tests/schemas/all-types.avsc), varied by i: edges, unions' branches, nulls."""
    utc = datetime.timezone.utc
    base = datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=utc)
    return {
        "n": None,
        "b": i % 2 == 0,
        "i": [-(2**31), 2**31 - 1, 0][i % 3] if i < 3 else i * 7919 - 400_000,
        "l": [-(2**63), 2**63 - 1, 2**53 + 1][i % 3] if i < 3 else i * 1_000_000_007,
        "f": [0.0, 1.5, -2.25, float("inf"), float("-inf"), float("nan"), 3.0e38][i % 7],
        "d": [0.1 * i, -0.0, 1e300, -5e-324, float("nan")][i % 5],
        "by": bytes([i % 256, 0, 255]) * (i % 3),
        "s": "" if i % 5 == 0 else f"héllo {i} ✓ \"quoted\"\n",
        "a": list(range(-1, i % 4)),
        "m": {f"k{j}": f"v{i}-{j}" for j in range(i % 3)},
        "u": [None, f"s{i}", i * 3][i % 3],
        "e": ["RED", "GREEN"][i % 2],
        "fx": struct.pack(">i", i - 50),
        "dec": decimal.Decimal(i * 37 - 5000).scaleb(-2),
        "decf": decimal.Decimal(-(i * 1_000_003)).scaleb(-3),
        "uuid": uuid.UUID(int=i * 2**64 + i + 1),
        "date": datetime.date(2024, 2, 29) + datetime.timedelta(days=i - 20_000),
        "tm": datetime.time(i % 24, 2, 3, (i % 1000) * 1000),
        "tu": datetime.time(23, 59, i % 60, i % 1_000_000),
        "tsm": base + datetime.timedelta(milliseconds=i * 86_400_123 - 10**12),
        "tsu": base + datetime.timedelta(microseconds=i * 3_600_000_001),
        "tsn": 1_700_000_000_123_456_789 + i * 1_000_000_007 - 10**18,
        "ltm": 1_700_000_000_123 - i * 99_999_999,
        "dur": struct.pack("<III", i % 13, i * 3 % 400, i * 86_400_007 % 2**32),
        "rec": {"x": i},
        "again": None if i % 4 == 0 else {"x": -i},
        "withdef": f"set {i}",
    }


def all_proto(i):
    """A message of every Protobuf field kind (ALL_PROTO), as the Protobuf JSON mapping."""
    d = {
        # Not -0.0: prost-reflect writes it as 0 when the field has no presence.
        "d": [0.1 * i, 5e-324, 1e300, "NaN", "-Infinity"][i % 5],
        "f": [0.0, 1.5, -2.25, "Infinity"][i % 4],
        "i32": [-(2**31), 2**31 - 1, 0][i % 3] if i < 3 else i * 7919 - 400_000,
        "i64": str([-(2**63), 2**63 - 1, 2**53 + 1][i % 3] if i < 3 else i * 1_000_000_007),
        "u32": [2**32 - 1, 0, i][i % 3],
        "u64": str([2**64 - 1, 0, i * 10**12][i % 3]),
        "s32": -i * 1001,
        "s64": str(-i * 10**15),
        "f32": i * 3,
        "f64": str(2**64 - 1 - i),
        "sf32": -i,
        "sf64": str(-(2**63) + i),
        "b": i % 2 == 1,
        "s": "" if i % 5 == 0 else f"héllo {i} ✓",
        "by": base64.b64encode(bytes([i % 256, 0, 255]) * (i % 3)).decode(),
        "color": ["RED", "GREEN", "BLUE"][i % 3],
        "inner": {"x": i, "s": f"in{i}"},
        "nums": [str(n) for n in range(-1, i % 4)],
        "inners": [{"x": j} for j in range(i % 3)],
        "counts": {f"k{j}": j - 1 for j in range(i % 3)},
        "byId": {str(j * 10**12): {"s": f"v{j}"} for j in range(i % 2 + 1)},
        "colors": [["RED", "BLUE"], [], ["GREEN"]][i % 3],
        "ts": f"2023-11-14T22:13:{i % 60:02d}.{i % 1000:03d}Z",
        "dur": f"{i}.{i % 1000:03d}s",
        "wrapped": str(i * 10**10),
        "wrappedS": f"w{i}",
        "meta": {"k": i, "nested": {"list": [1, "two", None, True]}},
    }
    choice = i % 4
    if choice == 1:
        d["name"] = f"n{i}"
    elif choice == 2:
        d["number"] = str(i)
    elif choice == 3:
        d["detail"] = {"x": -i}
    if i % 2 == 0:
        d["maybe"] = "" if i % 4 == 0 else f"m{i}"
    return d


def produce_values(brokers, topic, values, serialize):
    """Produces each value (key k<i>), serialized for topic; exits when one is not delivered."""
    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5, "enable.idempotence": True})
    failed = []
    ctx = SerializationContext(topic, MessageField.VALUE)
    count = 0
    for i, value in enumerate(values):
        producer.produce(topic, key=f"k{i}", value=serialize(value, ctx),
                         on_delivery=lambda err, _msg: err and failed.append(str(err)))
        count += 1
        producer.poll(0)
    producer.flush(60)
    if failed or len(producer):
        sys.exit(f"not delivered: {failed[:3]} ({len(producer)} queued)")
    print(count)


def proto_json(message):
    return json.loads(json_format.MessageToJson(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True))


def avro_round_trip(schema, value):
    """value written and read back by fastavro alone."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, value)
    buf.seek(0)
    return fastavro.schemaless_reader(buf, schema, schema)


def print_expected(i, value, values_only):
    record = value if values_only else {"key": f"k{i}", "value": value}
    print(json.dumps(record, sort_keys=True))


def read_avro_file(path):
    with open(path, "rb") as f:
        reader = fastavro.reader(f)
        print(reader.codec)
        for record in reader:
            print(json.dumps(avro_json(record), sort_keys=True))


def read_protobuf_file(cls, path):
    data = open(path, "rb").read()
    pos = 0
    while pos < len(data):
        size, pos = _DecodeVarint32(data, pos)
        if pos + size > len(data):
            sys.exit(f"{path}: a message at byte {pos} runs past the end")
        print(json.dumps(proto_json(cls.FromString(data[pos:pos + size])), sort_keys=True))
        pos += size


def main():
    command, brokers, topic, registry_url = sys.argv[1:5]
    rest = sys.argv[5:]
    registry = SchemaRegistryClient({"url": registry_url if registry_url != "-" else "http://unused"})
    if command == "produce-orders":
        serializer = AvroSerializer(registry, open(rest[0]).read(), conf={"auto.register.schemas": True})
        produce_orders(brokers, topic, serializer, int(rest[1]))
    elif command == "produce-all-avro":
        serializer = AvroSerializer(registry, open(rest[0]).read(), conf={"auto.register.schemas": True})
        produce_values(brokers, topic, (all_avro(i) for i in range(int(rest[1]))), serializer)
    elif command == "expect-all-avro":
        schema = fastavro.parse_schema(json.loads(open(rest[0]).read()))
        for i in range(int(rest[1])):
            value = avro_json(avro_round_trip(schema, all_avro(i)))
            print_expected(i, value, rest[2:] == ["values"])
    elif command == "produce-all-protobuf":
        cls = message_class(rest[0], rest[1])
        serializer = ProtobufSerializer(cls, registry, conf={"auto.register.schemas": True, "use.deprecated.format": False})
        values = (json_format.ParseDict(all_proto(i), cls()) for i in range(int(rest[2])))
        produce_values(brokers, topic, values, serializer)
    elif command == "expect-all-protobuf":
        cls = message_class(rest[0], rest[1])
        for i in range(int(rest[2])):
            message = cls.FromString(json_format.ParseDict(all_proto(i), cls()).SerializeToString())
            print_expected(i, proto_json(message), rest[3:] == ["values"])
    elif command == "consume-avro":
        deserializer = AvroDeserializer(registry)
        consume(brokers, topic, int(rest[0]), deserializer, avro_json)
    elif command == "consume-protobuf":
        cls = message_class(rest[0], rest[1])
        deserializer = ProtobufDeserializer(cls, conf={"use.deprecated.format": False})
        consume(brokers, topic, int(rest[2]), deserializer, proto_json)
    elif command == "read-avro-file":
        read_avro_file(rest[0])
    elif command == "read-protobuf-file":
        read_protobuf_file(message_class(rest[0], rest[1]), rest[2])
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
