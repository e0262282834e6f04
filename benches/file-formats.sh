#!/usr/bin/env bash
# CPU per event of the file output in each format: the generator makes EVENTS orders (W2's
# shape: 7 fields, 1-3 lines each), one jq step reshapes them, the file output writes them as
# JSON lines, an Avro object container file (null and deflate) or length-delimited Protobuf.
# Each binary given runs each format ROUNDS times, alternating; the generator and the step cost
# the same in every format, so the differences between rows are the formats' costs.
#   benches/file-formats.sh [-n EVENTS] [-r ROUNDS] [-f FORMATS] BINARY...
# FORMATS is a comma-separated subset of payload,avro-null,avro-deflate,protobuf.
set -euo pipefail

events=1000000
rounds=2
formats=payload,avro-null,avro-deflate,protobuf
while getopts "n:r:f:" opt; do
  case "$opt" in
    n) events="$OPTARG" ;;
    r) rounds="$OPTARG" ;;
    f) formats="$OPTARG" ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: $0 [-n EVENTS] [-r ROUNDS] [-f FORMATS] BINARY..." >&2; exit 2; }

avsc="$(cd "$(dirname "$0")/.." && pwd)/tests/schemas/order.avsc"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cat > "$dir/order.proto" <<'EOF'
syntax = "proto3";
package shop;
message Line { string sku = 1; int32 qty = 2; double price = 3; }
message Order {
  enum Status { NEW = 0; PAID = 1; SHIPPED = 2; }
  int64 id = 1;
  string customer = 2;
  Status status = 3;
  double amount = 4;
  int64 placed_at = 5;
  repeated Line lines = 6;
  optional string note = 7;
}
EOF

IFS=, read -ra wanted <<< "$formats"
for f in "${wanted[@]}"; do
  case "$f" in
    payload) format="payload" ;;
    avro-null) format="{avro: {schema_file: $avsc}}" ;;
    avro-deflate) format="{avro: {schema_file: $avsc, compression: deflate}}" ;;
    protobuf) format="{protobuf: {schema_file: $dir/order.proto, message: shop.Order}}" ;;
    *) echo "unknown format $f" >&2; exit 2 ;;
  esac
  cat > "$dir/$f.yaml" <<EOF
input:
  generate:
    count: $events
    template: '{id: ., customer: "c\(. % 97)", status: (["NEW","PAID","SHIPPED"][. % 3]), amount: (. % 1000 + 0.25), placed_at: (1700000000000 + . * 1000), lines: [range(1 + . % 3) as \$j | {sku: "s\(\$j)", qty: (\$j + 1), price: ((. % 50) + 0.25 * \$j)}], note: (if . % 5 == 0 then null else "n\(.)" end)}'
transforms:
  - jq: '{id, customer, status, amount, placed_at, lines, note}'
output:
  file: {path: $dir/out-$f, format: $format}
errors: stop
EOF
done

printf '%-40s %-13s %6s %14s %9s %12s\n' binary format round cpu-us/event rss-MiB file-bytes
for round in $(seq "$rounds"); do
  for f in "${wanted[@]}"; do
    for bin in "$@"; do
      rm -f "$dir/out-$f"
      /usr/bin/time -f "%U %S %M" -o "$dir/time" "$bin" run "$dir/$f.yaml" > /dev/null 2> "$dir/log" ||
        { cat "$dir/log" >&2; exit 1; }
      read -r user sys rss < "$dir/time"
      cpu=$(awk -v u="$user" -v s="$sys" -v n="$events" 'BEGIN { printf "%.2f", (u + s) * 1e6 / n }')
      printf '%-40s %-13s %6s %14s %9s %12s\n' "$bin" "$f" "$round" "$cpu" "$((rss / 1024))" "$(stat -c %s "$dir/out-$f")"
    done
  done
done
