#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then runs format and lint
# checks and every test. This is the command CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh test

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== layout of src/ (sizes, import circles, sideways imports, string errors)"
cargo run --quiet --locked -p sluice-layout
echo "== container image (scripts/image.sh; the container and manifest tests run it)"
time scripts/image.sh
echo "== cargo test"
cargo test --workspace --all-targets --locked
echo "== sample pipelines' own tests"
cargo run --quiet --locked -- test pipelines/
echo "== deployment files (Dockerfile, k8s/)"
scripts/check-deploy.sh
