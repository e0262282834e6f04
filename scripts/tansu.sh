#!/usr/bin/env bash
# Starts a local Kafka-protocol broker (tansu, data in memory) on 127.0.0.1:${PORT:-9092}.
# Stop it with Ctrl-C. Installs tansu first if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PORT:-9092}"
command -v tansu >/dev/null || scripts/setup.sh kafka
exec tansu broker \
  --listener-url "tcp://127.0.0.1:${port}" \
  --advertised-listener-url "tcp://127.0.0.1:${port}" \
  --storage-engine memory://tansu/
