#!/bin/sh
# Builds the fuzzers with clang (libFuzzer + AddressSanitizer + UBSan) and runs
# each on its seed corpus for a bounded time.
#   tests/fuzz/run.sh [SECONDS [TARGET...]]   default 60 seconds, every target
# Targets: parser (Dockerfile syntax), ignore (.dockerignore matcher), layer
# (extract_layer of any bytes: never outside its destination), step (dfrun
# step's spec and result readers).
# Environment: CXX (default clang++), CC (default clang), FUZZ_OUT (build dir,
# default /tmp/dfgen-fuzz), FUZZ_JOBS (parallel fuzzing jobs, default 1).
# New interesting inputs go to $FUZZ_OUT/corpus-TARGET, not into the
# repository's seed corpus; crashes are written to $FUZZ_OUT as crash-*.
# Every target but parser links the project's libraries: they are built in
# $FUZZ_OUT/cmake with the sanitizers (tests/fuzz/project_include.cmake).
set -eu
seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-parser ignore layer step}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_OUT:-/tmp/dfgen-fuzz}
cxx=${CXX:-clang++}
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
    -DCMAKE_PROJECT_INCLUDE="$root/tests/fuzz/project_include.cmake" >/dev/null
  cmake --build "$out/cmake" -j"${FUZZ_BUILD_JOBS:-2}" --target "$@"
  for t in "$@"; do cp "$out/cmake/bin/$t" "$out/$t"; done
}

cmake_targets=
for t in $targets; do
  case $t in
    parser) build_parser ;;
    ignore|layer|step) cmake_targets="$cmake_targets ${t}_fuzz" ;;
    *) echo "run.sh: unknown target $t" >&2; exit 2 ;;
  esac
done
[ -n "$cmake_targets" ] && build_cmake $cmake_targets

cd "$out"
for t in $targets; do
  mkdir -p "$out/corpus-$t"
  dict=
  max_len=65536
  [ "$t" = parser ] && max_len=4096
  [ -f "$root/tests/fuzz/$t.dict" ] && dict="-dict=$root/tests/fuzz/$t.dict"
  echo "== fuzzing $t for ${seconds}s"
  ./${t}_fuzz -max_total_time="$seconds" -max_len="$max_len" -timeout=20 -rss_limit_mb=4096 \
    -jobs="${FUZZ_JOBS:-1}" -workers="${FUZZ_JOBS:-1}" $dict \
    "$out/corpus-$t" "$root/tests/fuzz/corpus/$t"
done
