#!/usr/bin/env bash
# Profiles dfgen's slowest path in bench/run.sh: `dfrun step` for a COPY of
# 20,000 files (~100 MB), cold (empty store) and again (store hit: what a
# `touch` of a context file costs). Uses perf (cpu-clock samples, DWARF call
# graphs) and prints the top symbols of each, self and children.
#
# Usage: BENCH_BIN=DIR bash bench/profile.sh     (DIR holds dfgen and dfrun)
set -eu   # no pipefail: `perf report | head` ends with SIGPIPE
cd "$(dirname "$0")/.."
top=$PWD
BIN=${BENCH_BIN:-$top/build/bin}
export PATH="$BIN:$PATH"
W=${BENCH_WORK:-/var/tmp/dfgen-bench-profile}
rm -rf "$W"; mkdir -p "$W/ctx"
busybox_tar=$(bash scripts/fixtures.sh busybox | tail -1)
export DFGEN_STORE=$W/store
dfrun import "$busybox_tar" -t busybox:latest >/dev/null
printf 'FROM busybox\nCOPY . /app\n' >"$W/ctx/Dockerfile"
python3 bench/make-tree.py "$W/ctx"
sleep 2.5   # older than the stat cache's 2 s window, like a real checkout
dfgen "$W/ctx" -B "$W/build" -t dfgen-bench-profile >/dev/null
cmd=$(ninja -C "$W/build" -t commands | grep 'dfrun.* step' | head -1)
echo "step: $cmd"
for run in cold again; do
  echo "== $run"
  (cd "$W/build" && /usr/bin/time -f "%e s wall, %U s user, %S s sys, %M KiB peak RSS" \
     perf record -q -F 499 -e cpu-clock --call-graph dwarf,16384 -o "$W/perf.$run" -- sh -c "$cmd") 2>&1 | grep -v '^\[' || true
  perf report -i "$W/perf.$run" --no-children --sort symbol --stdio -g none --percent-limit 2 2>/dev/null \
    | grep -v '^#' | grep -v '^$' | head -25
  echo "-- with children"
  perf report -i "$W/perf.$run" --children --sort symbol --stdio -g none --percent-limit 5 2>/dev/null \
    | grep -v '^#' | grep -v '^$' | head -45
done
