#!/usr/bin/env bash
# Instructions per input event of the transform path (decode -> jq -> encode), counted by
# callgrind. Unlike timings, the counts repeat exactly whatever else the machine is doing, so
# a change to the transform path can be compared before and after on a busy machine.
#   benches/instructions.sh                       # every benchmark of benches/transform.rs
#   benches/instructions.sh json_w3_reshape_256b  # some of them
# Needs valgrind (scripts/setup.sh bench).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(cargo bench --bench transform --no-run 2>&1 |
  sed -n 's/.*Executable benches\/transform.rs (\(.*\))$/\1/p')
# Run without --bench, the binary checks each benchmark once and runs its routine twice: three
# batches of 500 events through `Worker::process` (callgrind's call counts show 3 calls).
events=1500

# Instructions executed inside Worker::process while the benchmarks matching $1 run.
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect='*Worker*process*' \
    "$bin" "$1" 2>&1 >/dev/null | sed -n 's/.*Collected : \([0-9]*\)$/\1/p' | tail -1
}

# The checks every run makes before the benchmarks (identities on 1 KB events) are counted once
# with no benchmark selected, and taken off.
before=$(count no-such-benchmark)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(json_identity json_w3_reshape_256b json_w2_select_reshape json_fanout_10_items raw_identity)
printf '%-26s %s\n' benchmark instructions/event
for name in "${names[@]}"; do
  printf '%-26s %d\n' "$name" $((($(count "$name") - before) / events))
done
