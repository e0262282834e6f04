#!/usr/bin/env python3
"""A small NATS client for trying pipelines out (nats-py).

  scripts/nats-client.py stream NAME SUBJECT...           # create (or update) a JetStream stream
  scripts/nats-client.py publish SUBJECT [--jetstream]    # one message per stdin line; --jetstream waits for the stream's ack
  scripts/nats-client.py read STREAM                      # prints every message of a stream, one JSON object per line
  scripts/nats-client.py subscribe SUBJECT [--count N] [--timeout SECONDS]   # core NATS, prints one JSON object per message

Server: --url, or $NATS_URL, or nats://127.0.0.1:4222.
"""
import argparse
import asyncio
import json
import os
import sys

import nats
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError


def show(subject, data, headers, **extra):
    try:
        payload = json.loads(data)
    except ValueError:
        payload = data.decode("utf-8", "replace")
    record = {"subject": subject, **extra, "headers": dict(headers or {}), "payload": payload}
    print(json.dumps(record), flush=True)


async def stream(nc, args):
    js = nc.jetstream()
    config = StreamConfig(name=args.name, subjects=args.subjects)
    try:
        await js.stream_info(args.name)
        await js.update_stream(config)
        print(f"updated stream {args.name}", file=sys.stderr)
    except NotFoundError:
        await js.add_stream(config)
        print(f"created stream {args.name}", file=sys.stderr)


async def publish(nc, args):
    js = nc.jetstream()
    n = 0
    for line in sys.stdin.buffer:
        line = line.rstrip(b"\n")
        if not line:
            continue
        if args.jetstream:
            await js.publish(args.subject, line)
        else:
            await nc.publish(args.subject, line)
        n += 1
    await nc.flush()
    print(f"published {n} to {args.subject}", file=sys.stderr)


async def read(nc, args):
    js = nc.jetstream()
    info = await js.stream_info(args.stream)
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await js.get_msg(args.stream, seq)
        except NotFoundError:
            continue
        show(msg.subject, msg.data, msg.headers, seq=seq)


async def subscribe(nc, args):
    sub = await nc.subscribe(args.subject)
    seen = 0
    while args.count is None or seen < args.count:
        try:
            msg = await sub.next_msg(timeout=args.timeout)
        except nats.errors.TimeoutError:
            break
        show(msg.subject, msg.data, msg.headers)
        seen += 1


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("stream")
    p.add_argument("name")
    p.add_argument("subjects", nargs="+")
    p = sub.add_parser("publish")
    p.add_argument("subject")
    p.add_argument("--jetstream", action="store_true")
    p = sub.add_parser("read")
    p.add_argument("stream")
    p = sub.add_parser("subscribe")
    p.add_argument("subject")
    p.add_argument("--count", type=int)
    p.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    nc = await nats.connect(args.url)
    try:
        await {"stream": stream, "publish": publish, "read": read, "subscribe": subscribe}[args.command](nc, args)
    finally:
        await nc.drain()


if __name__ == "__main__":
    asyncio.run(main())
