#!/bin/sh
# Builds the parser fuzzer with clang (libFuzzer + AddressSanitizer) and runs
# it on the seed corpus for a bounded time.
#   tests/fuzz/run.sh [SECONDS]      default 60
# Environment: CXX (default clang++), FUZZ_OUT (build dir, default /tmp/dfgen-fuzz),
# FUZZ_JOBS (parallel fuzzing jobs, default 1).
# New interesting inputs go to $FUZZ_OUT/corpus, not into the repository's
# seed corpus; crashes are written to $FUZZ_OUT as crash-*.
set -eu
seconds=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_OUT:-/tmp/dfgen-fuzz}
cxx=${CXX:-clang++}
mkdir -p "$out/corpus"

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

cd "$out"
exec ./parser_fuzz -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -jobs="${FUZZ_JOBS:-1}" -workers="${FUZZ_JOBS:-1}" \
  -dict="$root/tests/fuzz/parser.dict" \
  "$out/corpus" "$root/tests/fuzz/corpus/parser"
