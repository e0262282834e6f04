#!/usr/bin/env bash
# Before and after, in one sitting: builds the sluice binary of each commit given, then runs
# the benchmark suite with each binary in turn, round after round, under one suite binary (this
# checkout's), so the raw loops, the other tools and the driver are the same for every commit.
#
#   benches/before-after.sh [-r ROUNDS] [-o DIR] REV... -- SUITE-ARGS...
#   benches/before-after.sh -r 3 f8de725 HEAD -- w1 w2 w3 w4 w7
#
# Each run writes DIR/<commit>-<round>.json (the suite's --json records, which name the commit
# of the binary measured) and .txt (its table). At the end, benches/charts.py --compare prints
# each workload's CPU per event by commit (mean and range over the rounds) and draws it.
# Settings the suite reads (W3_RATES, SLUICE_FETCH_WAIT_MS, ...) pass through.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
out=target/before-after
while getopts r:o: opt; do
  case $opt in
  r) rounds=$OPTARG ;;
  o) out=$OPTARG ;;
  *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
revs=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  revs+=("$1")
  shift
done
[ "${1:-}" = -- ] && shift
[ ${#revs[@]} -gt 0 ] || {
  sed -n '2,12p' "$0"
  exit 2
}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# One binary per commit, built in a throwaway work tree that shares this checkout's target
# directory (dependencies are built once).
target=$(pwd)/target
commits=()
for rev in "${revs[@]}"; do
  commit=$(git rev-parse --short "$rev^{commit}")
  commits+=("$commit")
  [ -x "$out/sluice-$commit" ] && continue
  tree=$(mktemp -d)
  git worktree add --quiet --detach "$tree" "$commit"
  (cd "$tree" && CARGO_TARGET_DIR=$target cargo build --release --locked --quiet --bin sluice)
  cp "$target/release/sluice" "$out/sluice-$commit"
  git worktree remove --force "$tree"
done

suite=$(cargo bench --bench suite --no-run 2>&1 |
  sed -n 's/.*Executable benches\/suite.rs (\(.*\))$/\1/p')
[ -x "$suite" ] || {
  echo "before-after: the suite did not build" >&2
  exit 1
}

# Commits alternate within each round, so a machine that slows down over the sitting weighs
# on all of them alike.
for round in $(seq 1 "$rounds"); do
  for commit in "${commits[@]}"; do
    echo "before-after: round $round of $rounds, sluice $commit" >&2
    SLUICE_BIN="$out/sluice-$commit" SLUICE_COMMIT="$commit" \
      "$suite" --bench "$@" --json "$out/$commit-$round.json" >"$out/$commit-$round.txt"
  done
done

json=()
for commit in "${commits[@]}"; do
  for round in $(seq 1 "$rounds"); do json+=("$out/$commit-$round.json"); done
done
python3 benches/charts.py --compare "$out" "${json[@]}"
