#!/usr/bin/env bash
# Starts a local Apache Kafka broker (one node in KRaft mode, broker and controller in one JVM)
# on 127.0.0.1:${PORT:-9092}, in the foreground; Ctrl-C stops it. Its data lives in
# ${KAFKA_DATA:-a new temp dir}: point KAFKA_DATA at the same folder to start it again with the
# topics and offsets it had. Fetches Kafka first if it is missing (scripts/setup.sh kafka).
# With CONTAINERS_PORT set, a second plaintext listener on that port of every address, advertised
# as host.containers.internal (podman's name for this machine inside its containers), serves
# containers and pods on this machine (k8s/overlays/local uses 9094).
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PORT:-9092}"
controller_port="${CONTROLLER_PORT:-$((port + 1))}"
listeners="PLAINTEXT://127.0.0.1:$port"
advertised="PLAINTEXT://127.0.0.1:$port"
protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
if [ -n "${CONTAINERS_PORT:-}" ]; then
  listeners="$listeners,CONTAINERS://0.0.0.0:$CONTAINERS_PORT"
  advertised="$advertised,CONTAINERS://host.containers.internal:$CONTAINERS_PORT"
  protocols="$protocols,CONTAINERS:PLAINTEXT"
fi
scripts/setup.sh kafka
libs="${SLUICE_KAFKA_LIBS:-$HOME/.cache/sluice/apache-kafka/libs}"
data="${KAFKA_DATA:-$(mktemp -d -t sluice-kafka.XXXXXX)}"
mkdir -p "$data"

config="$data/server.properties"
{
  cat scripts/apache-kafka/server.properties
  echo "node.id=1"
  echo "controller.quorum.voters=1@127.0.0.1:$controller_port"
  echo "listeners=$listeners,CONTROLLER://127.0.0.1:$controller_port"
  echo "advertised.listeners=$advertised"
  echo "listener.security.protocol.map=$protocols"
  echo "log.dirs=$data/logs"
} >"$config"
# The broker's own log: warnings and errors on the console, everything in $data/broker.log.
cat >"$data/log4j2.properties" <<PROPS
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = console
rootLogger.appenderRef.console.level = WARN
rootLogger.appenderRef.file.ref = file
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
appender.file.type = File
appender.file.name = file
appender.file.fileName = $data/broker.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
PROPS

java_opts=(-Xms256m -Xmx1g "-Dlog4j2.configurationFile=$data/log4j2.properties" -cp "$libs/*")
if [ ! -f "$data/logs/meta.properties" ]; then
  # A new cluster: its id is 16 random bytes in URL-safe base64, as Kafka writes them, and
  # not starting with "-" (which the option parser would take for an option), as Kafka's own.
  cluster_id=-
  while [ "${cluster_id#-}" != "$cluster_id" ]; do
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  done
  java "${java_opts[@]}" kafka.tools.StorageTool format "--cluster-id=$cluster_id" --config "$config" >/dev/null
fi
echo "kafka: 127.0.0.1:$port${CONTAINERS_PORT:+, containers: host.containers.internal:$CONTAINERS_PORT} (data in $data; Ctrl-C stops it)" >&2
exec java "${java_opts[@]}" kafka.Kafka "$config"
