#!/usr/bin/env bash
# Installs what building and testing sluice needs, idempotently. Safe to run again.
#   scripts/setup.sh build   # toolchain components and C build tools
#   scripts/setup.sh kafka   # a local Kafka-protocol broker (tansu) and a Python Kafka client
#   scripts/setup.sh nats    # nats-server and a Python NATS client
#   scripts/setup.sh test    # build + brokers and clients the tests start and use
set -euo pipefail

what="${1:-test}"
log() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; exit 1; fi
}

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq
    apt_updated=1
  fi
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_build() {
  command -v cargo >/dev/null || { log "cargo not found: install Rust (rustup) first"; exit 1; }
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  # librdkafka is built from source by the rdkafka crate (cmake), with TLS and compression.
  apt_install build-essential cmake pkg-config libssl-dev zlib1g-dev libzstd-dev libcurl4-openssl-dev libsasl2-dev
}

# Kafka-protocol broker used by the end-to-end tests. Pinned; built once and kept in ~/.cargo/bin.
TANSU_VERSION=0.6.0
setup_tansu() {
  if command -v tansu >/dev/null && tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    return 0
  fi
  log "installing tansu $TANSU_VERSION (takes a while the first time)"
  cargo install tansu --version "$TANSU_VERSION" --features dynostore --locked --quiet
}

setup_test() {
  setup_build
  setup_nats
  # The Kafka-protocol broker and an independent Kafka client (current librdkafka).
  setup_kafka
}

setup_nats() {
  command -v nats-server >/dev/null || apt_install nats-server
  python3 -c 'import nats' 2>/dev/null || python3 -m pip install --quiet 'nats-py>=2.9'
}

setup_kafka() {
  setup_tansu
  python3 -c 'import confluent_kafka' 2>/dev/null || python3 -m pip install --quiet 'confluent-kafka>=2.6'
}

case "$what" in
  build) setup_build ;;
  kafka) setup_kafka ;;
  nats) setup_nats ;;
  test) setup_test ;;
  *) log "usage: $0 [build|kafka|nats|test]"; exit 2 ;;
esac
