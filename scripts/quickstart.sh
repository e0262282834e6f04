#!/usr/bin/env bash
# Builds sluice and runs the quickstart pipeline: no broker needed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
cargo run --release --locked --quiet -- run pipelines/quickstart.yaml
