#!/bin/sh
# Builds the fuzzers with clang (libFuzzer + AddressSanitizer + UBSan) and runs
# each on its seed corpus for a bounded time.
#   tests/fuzz/run.sh [SECONDS [TARGET...]]   default 300 seconds, every target
# Targets: parser (Dockerfile syntax), shell (shell word expansion and ignore
# patterns after it), ignore (.dockerignore matcher), layer (extract_layer of
# any bytes: never outside its destination), step (dfrun step's spec and result
# readers).
# Environment: CXX (default clang++), CC (default clang), FUZZ_OUT (build dir,
# default /tmp/dfgen-fuzz), FUZZ_JOBS (targets fuzzed at the same time,
# default 1), FUZZ_NICE (niceness of the fuzzers, default 10).
# New interesting inputs go to $FUZZ_OUT/corpus-TARGET, not into the
# repository's seed corpus; crashes are written to $FUZZ_OUT/TARGET as crash-*
# (leak-*, timeout-*, oom-*), each target's output to $FUZZ_OUT/TARGET.log.
# Every target but parser links the project's libraries: they are built in
# $FUZZ_OUT/cmake with the sanitizers (tests/fuzz/project_include.cmake).
# Exit status: 0 when every target ran its time without a crash, a leak, a
# timeout or a sanitizer report; 1 otherwise (the summary names the target);
# 2 for a usage or build error.
set -eu
seconds=${1:-300}
[ $# -gt 0 ] && shift
targets=${*:-parser shell ignore layer step}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_OUT:-/tmp/dfgen-fuzz}
cxx=${CXX:-clang++}
jobs=${FUZZ_JOBS:-1}
niceness=${FUZZ_NICE:-10}
mkdir -p "$out"

build_parser() {
  fmt_flags=$(pkg-config --cflags fmt 2>/dev/null || true)
  fmt_libs=$(pkg-config --libs fmt 2>/dev/null || echo -lfmt)
  $cxx -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$root" $fmt_flags \
    "$root/tests/fuzz/parser_fuzz.cc" \
    "$root/core/result.cc" \
    "$root"/generator/syntax/heredoc.cc \
    "$root"/generator/syntax/json_array.cc \
    "$root"/generator/syntax/line_parsers.cc \
    "$root"/generator/syntax/parser.cc \
    "$root"/generator/syntax/unicode.cc \
    $fmt_libs -o "$out/parser_fuzz"
}

build_cmake() {
  flags="-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
  cmake -S "$root" -B "$out/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_COMPILER="${CC:-clang}" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DCMAKE_PROJECT_INCLUDE="$root/tests/fuzz/project_include.cmake" >/dev/null || return 1
  cmake --build "$out/cmake" -j"${FUZZ_BUILD_JOBS:-2}" --target "$@" || return 1
  for t in "$@"; do cp "$out/cmake/bin/$t" "$out/$t" || return 1; done
}

cmake_targets=
for t in $targets; do
  case $t in
    parser) ;;
    shell|ignore|layer|step) cmake_targets="$cmake_targets ${t}_fuzz" ;;
    *) echo "run.sh: unknown target $t" >&2; exit 2 ;;
  esac
done
case " $targets " in *" parser "*) build_parser || exit 2 ;; esac
if [ -n "$cmake_targets" ]; then build_cmake $cmake_targets || exit 2; fi

# fuzz TARGET: runs one fuzzer for $seconds in $out/TARGET, output in
# $out/TARGET.log; its status in $out/TARGET.status (0 = clean).
fuzz() {
  t=$1
  log="$out/$t.log"
  rm -rf "$out/$t" && mkdir -p "$out/$t" "$out/corpus-$t"
  dict=
  max_len=65536
  [ "$t" = parser ] && max_len=4096
  [ -f "$root/tests/fuzz/$t.dict" ] && dict="-dict=$root/tests/fuzz/$t.dict"
  status=0
  (cd "$out/$t" && nice -n "$niceness" "$out/${t}_fuzz" -max_total_time="$seconds" -max_len="$max_len" \
     -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$out/$t/" $dict \
     "$out/corpus-$t" "$root/tests/fuzz/corpus/$t") >"$log" 2>&1 || status=$?
  # A sanitizer report that did not stop the run still fails it.
  if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:' "$log"; then
    [ "$status" -ne 0 ] || status=1
  fi
  if ls "$out/$t" | grep -qE '^(crash|leak|timeout|oom|slow-unit)-'; then
    [ "$status" -ne 0 ] || status=1
  fi
  echo "$status" >"$out/$t.status"
}

# summary TARGET: one line of numbers from the target's final stats.
summary() {
  t=$1
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log" | tail -n 1)
  peak=$(sed -n 's/^stat::peak_rss_mb: *//p' "$out/$t.log" | tail -n 1)
  corpus=$(ls "$out/corpus-$t" | wc -l)
  seeds=$(ls "$root/tests/fuzz/corpus/$t" | wc -l)
  cov=$(grep -oE 'cov: [0-9]+' "$out/$t.log" | tail -n 1 | cut -d' ' -f2)
  if [ "$(cat "$out/$t.status")" = 0 ]; then verdict=clean; else verdict="FAILED (see $out/$t.log)"; fi
  echo "$t: ${seconds}s, ${runs:-?} executions, coverage ${cov:-?}, corpus $seeds seeds + $corpus new, peak RSS ${peak:-?} MB: $verdict"
}

echo "fuzzing $targets for ${seconds}s each, $jobs at a time ($(date -u +%Y-%m-%dT%H:%MZ))"
running=0
for t in $targets; do
  echo "== fuzzing $t (log $out/$t.log)"
  fuzz "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait; running=0; fi
done
wait

failed=0
echo "== summary"
for t in $targets; do
  summary "$t"
  [ "$(cat "$out/$t.status")" = 0 ] || failed=1
done
exit $failed
