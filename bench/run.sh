#!/usr/bin/env bash
# dfgen + ninja against the builders present on this machine, in the same run:
# Docker BuildKit (DOCKER_BUILDKIT=1), Docker's legacy builder (DOCKER_BUILDKIT=0)
# and `buildah bud --layers`. Runs alternate between tools, each scenario is
# repeated BENCH_N times (default 3), medians and peer/dfgen ratios go into a
# markdown table (docs/benchmarks.md unless BENCH_OUT says otherwise).
#
# Usage: bash bench/run.sh            (as root; starts dockerd if needed)
# Env:   BENCH_N=3                    repetitions
#        BENCH_BIG_MIB=1024           size of scenario 4's layers (random, and zeros)
#        BENCH_BIG_TOOLS="dfgen buildkit buildah"   the tools scenario 4 runs (its 1 GiB
#                                     builds are the longest part; the legacy builder's
#                                     export is the same `docker save` as BuildKit's)
#        BENCH_RSS_MIB="64 1024"      the two sizes dfrun's peak RSS is measured at
#        BENCH_TOOLS="dfgen buildkit legacy buildah"   (missing peers are left out)
#        BENCH_SCENARIOS="1 2 3 4 5 6 7"
#        BENCH_BIN=DIR                dfgen/dfrun to use (default: build them in build/)
#        BENCH_WORK=DIR               scratch (default /var/tmp/dfgen-bench)
#        BENCH_OUT=FILE               the markdown report
#
# Base images are the fixtures of scripts/fixtures.sh: busybox for scenarios
# 2-6, golang (tagged golang:1.21) for scenario 1. Bench Dockerfiles have no
# heredocs and no `# syntax=` line (Docker 20.10's BuildKit has neither offline).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

N=${BENCH_N:-3}
BIG_MIB=${BENCH_BIG_MIB:-1024}
BIG_TOOLS=${BENCH_BIG_TOOLS:-"dfgen buildkit buildah"}
RSS_MIB=${BENCH_RSS_MIB:-"64 1024"}
SCENARIOS=${BENCH_SCENARIOS:-"1 2 3 4 5 6 7"}
WORK=${BENCH_WORK:-/var/tmp/dfgen-bench}
OUT=${BENCH_OUT:-$top/docs/benchmarks.md}
DOCKER=/usr/bin/docker   # Debian's docker.io client: `build` without buildx
TAGP=dfgen-bench         # every image this script makes is named dfgen-bench-*

log() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------- set-up
if [ -z "${BENCH_BIN:-}" ]; then
  bash scripts/setup.sh
  bash scripts/build.sh
  BENCH_BIN=$top/build/bin
fi
export PATH="$BENCH_BIN:$PATH"
command -v /usr/bin/time >/dev/null || { log "needs /usr/bin/time (package time)"; exit 1; }
busybox_tar=$(bash scripts/fixtures.sh busybox | tail -1)
golang_tar=$(bash scripts/fixtures.sh golang | tail -1)

tools=()
for t in ${BENCH_TOOLS:-dfgen buildkit legacy buildah}; do
  case $t in
    dfgen) tools+=(dfgen) ;;
    buildkit|legacy)
      if [ -x "$DOCKER" ] && bash scripts/start-dockerd.sh; then tools+=("$t")
      else log "no docker daemon: $t left out"; fi ;;
    buildah)
      if command -v buildah >/dev/null; then tools+=(buildah)
      else log "buildah is not installed: left out"; fi ;;
  esac
done
log "tools: ${tools[*]}; N=$N; scenarios: $SCENARIOS"

rm -rf "$WORK"
mkdir -p "$WORK"
RESULTS=$WORK/results.csv
echo "scenario,case,tool,rep,seconds" >"$RESULTS"
echo "layer,tool,bytes" >"$WORK/sizes.csv"

# Base images into every peer (not timed).
for t in "${tools[@]}"; do
  case $t in
    buildkit|legacy)
      if ! $DOCKER image inspect busybox:latest >/dev/null 2>&1; then $DOCKER load -i "$busybox_tar" >/dev/null; fi
      if ! $DOCKER image inspect golang:1.21 >/dev/null 2>&1; then
        $DOCKER load -i "$golang_tar" >/dev/null
        $DOCKER tag golang:latest golang:1.21
      fi ;;
    buildah)
      buildah pull -q docker-archive:"$busybox_tar" >/dev/null
      buildah tag localhost/busybox:latest busybox:latest
      buildah pull -q docker-archive:"$golang_tar" >/dev/null
      buildah tag localhost/golang:latest golang:1.21 ;;
  esac
done

# ---------------------------------------------------------------- helpers
now() { date +%s.%N; }

# timed SCENARIO CASE TOOL REP CMD...: runs CMD (output to the log), records seconds.
# The clock is bash's $EPOCHREALTIME: no process is started to read it (two
# `date` processes around a command add ~1.5 ms, a third of a no-op rebuild).
timed() {
  local sc=$1 cs=$2 tool=$3 rep=$4; shift 4
  local t0 t1
  t0=$EPOCHREALTIME
  if ! "$@" >>"$WORK/build.log" 2>&1; then
    log "FAILED: scenario $sc $cs $tool (rep $rep): $*; see $WORK/build.log"
    tail -20 "$WORK/build.log" >&2
    exit 1
  fi
  t1=$EPOCHREALTIME
  local s
  s=$(python3 -c "print(f'{$t1-$t0:.3f}')")
  echo "$sc,$cs,$tool,$rep,$s" >>"$RESULTS"
  log "$sc $cs $tool #$rep: ${s}s"
}

# dfgen's store per scenario: cold = an empty store with only the base image.
dfgen_cold_store() {
  local sc=$1 base=$2
  export DFGEN_STORE=$WORK/s$sc/store
  rm -rf "$DFGEN_STORE" "$WORK/s$sc/build-dfgen"
  mkdir -p "$DFGEN_STORE" "$WORK/s$sc/build-dfgen"
  case $base in
    golang) dfrun import "$golang_tar" -t dfgen-fixtures/golang:bookworm >/dev/null ;;
    busybox) dfrun import "$busybox_tar" -t busybox:latest >/dev/null ;;
  esac
}

# build TOOL SC [extra args...]: one build of scenario SC's context with TOOL.
build() {
  local tool=$1 sc=$2; shift 2
  local ctx=$WORK/s$sc/ctx tag=$TAGP-s$sc
  case $tool in
    dfgen)
      local b=$WORK/s$sc/build-dfgen
      if [ ! -f "$b/build.ninja" ]; then
        dfgen "$ctx" -B "$b" -t "$tag" "${dfgen_args[@]}" "$@"
      fi
      ninja -C "$b" ;;
    buildkit) DOCKER_BUILDKIT=1 $DOCKER build -q -t "$tag" "$@" "$ctx" ;;
    legacy) DOCKER_BUILDKIT=0 $DOCKER build -q -t "$tag" "$@" "$ctx" ;;
    buildah) buildah bud --layers -q -t "$tag" "$@" "$ctx" ;;
  esac
}

# cold TOOL SC BASE [extra args]: build SC with no cache of earlier builds.
cold() {
  local tool=$1 sc=$2 base=$3; shift 3
  case $tool in
    dfgen) build dfgen "$sc" "$@" ;;
    buildkit) build buildkit "$sc" "$@" ;;
    legacy) build legacy "$sc" --no-cache "$@" ;;
    buildah) build buildah "$sc" --no-cache "$@" ;;
  esac
}

# prepare_cold TOOL SC BASE: the untimed part of a cold start.
prepare_cold() {
  local tool=$1 sc=$2 base=$3
  case $tool in
    dfgen) dfgen_cold_store "$sc" "$base" ;;
    buildkit)
      $DOCKER rmi -f "$TAGP-s$sc" >/dev/null 2>&1 || true
      DOCKER_BUILDKIT=1 $DOCKER builder prune -af >/dev/null ;;
    legacy|buildah)
      # --no-cache on the cold build; drop the tag so the image is new.
      if [ "$tool" = legacy ]; then $DOCKER rmi -f "$TAGP-s$sc" >/dev/null 2>&1 || true
      else buildah rmi -f "$TAGP-s$sc" >/dev/null 2>&1 || true; fi ;;
  esac
  # The set-up's writes (an imported base, a pruned cache) reach the disk now,
  # not in the timed build's first fsync.
  sync
}

# export TOOL SC DEST: the built image of SC as a docker archive.
export_archive() {
  local tool=$1 sc=$2 dest=$3 tag=$TAGP-s$sc
  rm -f "$dest"
  case $tool in
    dfgen) ;;   # written by the image edge (--output type=docker)
    buildkit|legacy) $DOCKER save -o "$dest" "$tag" ;;
    buildah) buildah push -q "$tag" docker-archive:"$dest:$tag:latest" ;;
  esac
}

# ---------------------------------------------------------------- scenarios
dfgen_args=()

setup_s1() {
  local ctx=$WORK/s1/ctx
  mkdir -p "$ctx"
  cat >"$ctx/Dockerfile" <<'EOF'
FROM golang:1.21
WORKDIR /src
COPY main.go ./
RUN go build -o /bin/hello ./main.go

FROM scratch
COPY --from=0 /bin/hello /bin/hello
CMD ["/bin/hello"]
EOF
  write_main_go "hello, world"
}
write_main_go() {
  printf 'package main\n\nimport "fmt"\n\nfunc main() {\n    fmt.Println("%s")\n}\n' "$1" \
    >"$WORK/s1/ctx/main.go"
}
run_s1() {
  local tool=$1 rep=$2
  dfgen_args=(--build-context golang:1.21=docker-image://dfgen-fixtures/golang:bookworm)
  write_main_go "hello, world"
  prepare_cold "$tool" 1 golang
  timed 1 cold "$tool" "$rep" cold "$tool" 1 golang
  timed 1 no-op "$tool" "$rep" build "$tool" 1
  sleep 0.1; touch "$WORK/s1/ctx/main.go"
  timed 1 "touch main.go" "$tool" "$rep" build "$tool" 1
  write_main_go "hello, $tool $rep $(now)"   # a line never built before
  timed 1 "one-line change" "$tool" "$rep" build "$tool" 1
}

setup_s2() {
  local ctx=$WORK/s2/ctx
  mkdir -p "$ctx"
  {
    for s in a b c d; do
      printf 'FROM busybox AS %s\nRUN sleep 2 && echo %s > /%s\n\n' "$s" "$s" "$s"
    done
    printf 'FROM busybox\n'
    for s in a b c d; do printf 'COPY --from=%s /%s /%s\n' "$s" "$s" "$s"; done
  } >"$ctx/Dockerfile"
}
run_s2() {
  local tool=$1 rep=$2
  dfgen_args=()
  prepare_cold "$tool" 2 busybox
  timed 2 cold "$tool" "$rep" cold "$tool" 2 busybox
  timed 2 no-op "$tool" "$rep" build "$tool" 2
}

setup_s3() {
  local ctx=$WORK/s3/ctx
  mkdir -p "$ctx"
  printf 'FROM busybox\nCOPY . /app\n' >"$ctx/Dockerfile"
  # 20,000 files in 100 folders, 5 KiB average (1-9 KiB): ~100 MB.
  python3 bench/make-tree.py "$ctx"
}
run_s3() {
  local tool=$1 rep=$2
  dfgen_args=()
  prepare_cold "$tool" 3 busybox
  timed 3 cold "$tool" "$rep" cold "$tool" 3 busybox
  timed 3 no-op "$tool" "$rep" build "$tool" 3
  echo "$tool $rep $(now)" >>"$WORK/s3/ctx/d050/f100.dat"
  timed 3 "one file changed" "$tool" "$rep" build "$tool" 3
}

# Scenario 4: one RUN writing BIG_MIB MiB, random (4r) or zeros (4z), built
# cold and exported: to a docker archive (every tool: dfgen's image edge,
# `docker save`, `buildah push docker-archive:`) and to an OCI archive with
# gzip layers (dfgen's image edge, `buildah push oci-archive:`; Docker 20.10's
# BuildKit has no OCI exporter without buildx). Layer sizes go to sizes.csv.
setup_s4() {
  local kind src
  for kind in r z; do
    src=/dev/urandom; [ $kind = z ] && src=/dev/zero
    mkdir -p "$WORK/s4$kind/ctx"
    printf 'FROM busybox\nARG MIB=%s\nRUN dd if=%s of=/big bs=1048576 count=$MIB 2>/dev/null\n' \
      "$BIG_MIB" "$src" >"$WORK/s4$kind/ctx/Dockerfile"
  done
}
s4_build_export() {
  local tool=$1 sc=$2 fmt=$3 dest=$4
  cold "$tool" "$sc" busybox
  case $tool:$fmt in
    dfgen:*) ;;   # the image edge wrote it (--output)
    buildah:oci) rm -f "$dest"; buildah push -q "$TAGP-s$sc" oci-archive:"$dest:$TAGP-s$sc" ;;
    *) export_archive "$tool" "$sc" "$dest" ;;
  esac
}
# "SIZE PATH" of the last layer of an OCI archive's (first) image: the big layer.
last_layer() {
  python3 - "$1" <<'PY'
import json, sys, tarfile
t = tarfile.open(sys.argv[1])
blob = lambda d: "blobs/" + d.replace(":", "/")
index = json.load(t.extractfile("index.json"))
m = json.load(t.extractfile(blob(index["manifests"][0]["digest"])))
while "manifests" in m:
    m = json.load(t.extractfile(blob(m["manifests"][0]["digest"])))
layer = m["layers"][-1]
print(layer["size"], blob(layer["digest"]))
PY
}
run_s4() {
  local tool=$1 rep=$2 kind fmt sc dest what
  case " $BIG_TOOLS " in *" $tool "*) ;; *) return 0 ;; esac
  for kind in r z; do
    sc=4$kind; what=random; [ $kind = z ] && what=zeros
    for fmt in docker oci; do
      [ $fmt = oci ] && [ "$tool" != dfgen ] && [ "$tool" != buildah ] && continue
      dest=$WORK/s4/out-$tool-$kind.$fmt.tar
      mkdir -p "$WORK/s4"
      dfgen_args=(--output "type=$fmt,dest=$dest")
      prepare_cold "$tool" "$sc" busybox
      local label="docker archive"; [ $fmt = oci ] && label="OCI archive (gzip)"
      timed 4 "$what: build + $label" "$tool" "$rep" s4_build_export "$tool" "$sc" "$fmt" "$dest"
      if [ "$rep" = 1 ] && [ $fmt = oci ]; then
        local size blob tmp=$WORK/s4/blob
        read -r size blob < <(last_layer "$dest")
        echo "$what,$tool,$size" >>"$WORK/sizes.csv"
        if [ "$tool" = dfgen ]; then
          # gzip -6 of the same layer tar, for the compression ratio.
          rm -rf "$tmp"; mkdir -p "$tmp"; tar -xf "$dest" -C "$tmp" "$blob"
          echo "$what,gzip -6,$(gzip -dc "$tmp/$blob" | gzip -6 | wc -c)" >>"$WORK/sizes.csv"
          rm -rf "$tmp"
        fi
      fi
      rm -f "$dest"
    done
  done
}

# Scenario 5: 50 RUN steps, and the same with one RUN step (context s5one):
# the per-step overhead is (50 steps - 1 step) / 49, with the default network
# sandbox and with --network=host (every tool's command-line option).
setup_s5() {
  mkdir -p "$WORK/s5/ctx" "$WORK/s5one/ctx"
  { printf 'FROM busybox\n'; for i in $(seq 1 50); do printf 'RUN echo %d > /f%d\n' "$i" "$i"; done; } \
    >"$WORK/s5/ctx/Dockerfile"
  printf 'FROM busybox\nRUN echo 1 > /f1\n' >"$WORK/s5one/ctx/Dockerfile"
}
run_s5() {
  local tool=$1 rep=$2
  dfgen_args=()
  prepare_cold "$tool" 5 busybox
  timed 5 cold "$tool" "$rep" cold "$tool" 5 busybox
  timed 5 no-op "$tool" "$rep" build "$tool" 5
  prepare_cold "$tool" 5one busybox
  timed 5 "one RUN step" "$tool" "$rep" cold "$tool" 5one busybox
  prepare_cold "$tool" 5 busybox
  timed 5 "cold (--network=host)" "$tool" "$rep" cold "$tool" 5 busybox --network=host
  prepare_cold "$tool" 5one busybox
  timed 5 "one RUN step (--network=host)" "$tool" "$rep" cold "$tool" 5one busybox --network=host
}

setup_s6() {
  local ctx=$WORK/s6/ctx
  mkdir -p "$ctx"
  printf 'FROM busybox AS unused\nRUN sleep 5 && echo unused > /u\n\nFROM busybox\nRUN echo used > /ok\n' \
    >"$ctx/Dockerfile"
}
run_s6() {
  local tool=$1 rep=$2
  dfgen_args=()
  prepare_cold "$tool" 6 busybox
  timed 6 cold "$tool" "$rep" cold "$tool" 6 busybox
}

# Scenario 7: a CMake monorepo with code and images (examples/monorepo): a
# static C++ server and client, and two images of them (server-image,
# cli-image). dfgen: one CMake build, add_docker_image() puts the image edges
# in CMake's own build.ninja. Peers: the same CMake build of the binaries,
# staged into a context, then one `build --target` per image. Timed: cold
# (configure + build), no-op, and one .cpp edited (a string in server.cpp:
# the server is recompiled and relinked, its image rebuilt).
setup_s7() {
  mkdir -p "$WORK/s7"
  cp -r "$top/examples/monorepo" "$WORK/s7/src"
  cp "$WORK/s7/src/Dockerfile" "$WORK/s7/Dockerfile.peer"
}
s7_build() {
  local tool=$1 b=$WORK/s7/build-$1
  if [ ! -f "$b/build.ninja" ]; then
    cmake -S "$WORK/s7/src" -B "$b" -G Ninja -DDFGEN_MODULE_DIR="$top/cmake-modules" \
      -DDFGEN_EXECUTABLE="$BENCH_BIN/dfgen" -DDFGEN_STORE="$WORK/s7/store" -DBUSYBOX_IMAGE=busybox:latest
  fi
  if [ "$tool" = dfgen ]; then ninja -C "$b"; return; fi
  ninja -C "$b" echo-server echo-cli
  local ctx=$WORK/s7/ctx-$tool
  mkdir -p "$ctx"
  cp "$WORK/s7/Dockerfile.peer" "$ctx/Dockerfile"
  cp -p "$b/echo-server" "$b/echo-cli" "$ctx/"
  local t
  for t in server cli; do
    case $tool in
      buildkit) DOCKER_BUILDKIT=1 $DOCKER build -q --target $t -t "$TAGP-s7-$t" "$ctx" ;;
      legacy) DOCKER_BUILDKIT=0 $DOCKER build -q --target $t -t "$TAGP-s7-$t" "$ctx" ;;
      buildah) buildah bud --layers -q --target $t -t "$TAGP-s7-$t" "$ctx" ;;
    esac
  done
}
s7_edit() { sed -i "s|echo-server: listening on|echo-server ($1): listening on|; s|echo-server ([^)]*): listening on|echo-server ($1): listening on|" "$WORK/s7/src/src/server.cpp"; }
run_s7() {
  local tool=$1 rep=$2
  cp "$top/examples/monorepo/src/server.cpp" "$WORK/s7/src/src/server.cpp"
  rm -rf "$WORK/s7/build-$tool" "$WORK/s7/ctx-$tool"
  case $tool in
    dfgen) rm -rf "$WORK/s7/store"; mkdir -p "$WORK/s7/store"
           DFGEN_STORE=$WORK/s7/store dfrun import "$busybox_tar" -t busybox:latest >/dev/null ;;
    buildkit) DOCKER_BUILDKIT=1 $DOCKER builder prune -af >/dev/null ;;
    legacy) $DOCKER rmi -f "$TAGP-s7-server" "$TAGP-s7-cli" >/dev/null 2>&1 || true
            $DOCKER image prune -f >/dev/null 2>&1 || true ;;
    buildah) buildah rmi -f "$TAGP-s7-server" "$TAGP-s7-cli" >/dev/null 2>&1 || true
             buildah rmi --prune >/dev/null 2>&1 || true ;;
  esac
  timed 7 "cold (configure + build)" "$tool" "$rep" s7_build "$tool"
  timed 7 no-op "$tool" "$rep" s7_build "$tool"
  s7_edit "$tool $rep $(now)"
  timed 7 "server.cpp edited" "$tool" "$rep" s7_build "$tool"
}

# dfrun's peak RSS while it runs scenario 4's RUN step (layer capture) and its
# image edge (docker archive export), at each size of BENCH_RSS_MIB.
measure_rss() {
  local mib=$1 b=$WORK/rss-$1
  export DFGEN_STORE=$b/store
  rm -rf "$b"; mkdir -p "$b/ctx" "$DFGEN_STORE"
  dfrun import "$busybox_tar" -t busybox:latest >/dev/null
  printf 'FROM busybox\nRUN dd if=/dev/urandom of=/big bs=1048576 count=%s 2>/dev/null\n' "$mib" >"$b/ctx/Dockerfile"
  dfgen "$b/ctx" -B "$b/build" -t "$TAGP-rss" --output "type=docker,dest=$b/out.tar" >/dev/null
  # Run every edge's command under /usr/bin/time, in graph order.
  local i=0 cmd
  while IFS= read -r cmd; do
    i=$((i + 1))
    (cd "$b/build" && /usr/bin/time -v -o "$b/time.$i" sh -c "$cmd") >>"$WORK/build.log" 2>&1
    local kb what
    kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$b/time.$i")
    case $cmd in *image-*) what="image export" ;; *) what="step" ;; esac
    echo "$mib,$what,$kb" >>"$WORK/rss.csv"
    log "rss ${mib} MiB $what: ${kb} KiB"
  done < <(ninja -C "$b/build" -t commands | grep -v '^dfgen ')
  ls -l "$b/out.tar" >>"$WORK/build.log"
  rm -rf "$b"
}

# ---------------------------------------------------------------- the run
for sc in $SCENARIOS; do "setup_s$sc"; done
start=$(now)
head_at_start=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
for rep in $(seq 1 "$N"); do
  for sc in $SCENARIOS; do
    # Alternate the order of tools between repetitions.
    order=("${tools[@]}")
    if [ $((rep % 2)) = 0 ]; then
      order=(); for ((k=${#tools[@]}-1; k>=0; k--)); do order+=("${tools[k]}"); done
    fi
    for t in "${order[@]}"; do "run_s$sc" "$t" "$rep"; done
  done
done
echo "mib,what,kb" >"$WORK/rss.csv"
for mib in $RSS_MIB; do measure_rss "$mib"; done
elapsed=$(python3 -c "print(round($(now)-$start))")

# Clean up the peers' images (the base images stay).
for sc in $SCENARIOS 4r 4z 5one 7-server 7-cli; do
  $DOCKER rmi -f "$TAGP-s$sc" >/dev/null 2>&1 || true
  command -v buildah >/dev/null && { buildah rmi -f "$TAGP-s$sc" >/dev/null 2>&1 || true; }
done
command -v buildah >/dev/null && { buildah rmi --prune >/dev/null 2>&1 || true; }

# ---------------------------------------------------------------- the report
machine() {
  echo "- nproc: $(nproc); memory: $(free -g | awk '/Mem:/ {print $2}') GiB; kernel: $(uname -r)"
  echo "- CPU: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "- dfgen: $BENCH_BIN, built $(date -u -r "$BENCH_BIN/dfrun" +%H:%M) UTC (main at the run's start: $head_at_start; build type: $(bt=$(sed -n "s/^CMAKE_BUILD_TYPE:STRING=//p" "$BENCH_BIN/../CMakeCache.txt" 2>/dev/null); echo "${bt:-RelWithDebInfo, the default}"))"
  echo "- ninja $(ninja --version); runc $(runc --version | awk 'NR==1 {print $3}')"
  if [ -x "$DOCKER" ]; then echo "- Docker $($DOCKER version --format '{{.Server.Version}}' 2>/dev/null) (client $DOCKER)"; fi
  if command -v buildah >/dev/null; then echo "- $(buildah --version)"; fi
  echo "- repetitions: $N (medians); whole run: ${elapsed} s"
}
python3 bench/report.py "$RESULTS" "$WORK/rss.csv" "$BIG_MIB" "$(machine)" "$WORK/sizes.csv" >"$WORK/table.md"
log "table: $WORK/table.md"
if [ "${BENCH_KEEP_DOC:-0}" = 1 ] && [ -f "$OUT" ]; then
  log "BENCH_KEEP_DOC=1: $OUT left as it is"
else
  # docs/benchmarks.md = the generated table + the analysis kept in bench/analysis.md
  { cat "$WORK/table.md"; echo; cat bench/analysis.md 2>/dev/null || true; } >"$OUT"
fi
# The raw numbers go beside the report they made (bench/ for docs/benchmarks.md).
if [ "$OUT" = "$top/docs/benchmarks.md" ]; then
  cp "$RESULTS" "$WORK/rss.csv" "$WORK/sizes.csv" "$top/bench/" 2>/dev/null || true
fi
log "done: $OUT"
