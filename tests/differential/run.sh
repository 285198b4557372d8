#!/usr/bin/env bash
# Differential test: builds every case (tests/differential/cases/NAME/Dockerfile
# and its context) with dfgen + ninja and with BuildKit (`docker build`,
# DOCKER_BUILDKIT=1, on the dockerd of scripts/start-dockerd.sh), then compares
# the two images with compare.py (config fields and file trees) against
# allowlist.txt. See docs/differential.md.
#
# Usage: tests/differential/run.sh [-j N] [CASE...]   (no names: every case;
#        -j N builds N cases at once, default 1)
# A case is cases/NAME/Dockerfile and its context; two optional files beside it
# (not in the context: they are excluded by the case's .dockerignore or
# harmless) set the build: `args` (one NAME=VALUE per line: --build-arg for
# both builders) and `target` (a stage name: --target).
# A case named expected/NAME (tests/differential/expected/NAME) is for what
# BuildKit 0.8 cannot build (heredocs, COPY --parents, ...): dfgen builds it and
# compare.py --expect checks the image against the case's `expect` file.
# Needs dfgen, dfrun and ninja on PATH, DFGEN_STORE set (the e2e harness does
# both), root, and the fixtures (scripts/fixtures.sh busybox debian).
# Environment: DOCKER (default /usr/bin/docker: Debian's 20.10 client builds
# with BuildKit itself; a Docker 28 client wants the buildx plugin),
# DIFF_WORK (where builds go; default a temp dir, kept on failure).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
DOCKER=${DOCKER:-/usr/bin/docker}
FIXTURES=${DFGEN_FIXTURES:-/var/cache/dfgen-fixtures}
WORK=${DIFF_WORK:-$(mktemp -d /tmp/dfgen-differential.XXXXXX)}
: "${DFGEN_STORE:?set DFGEN_STORE to the store dfgen builds into}"

die() { echo "differential: $*" >&2; exit 2; }

# docker_image NAME:TAG FIXTURE: the fixture's image under NAME:TAG in dockerd,
# loaded only when the tag names another image (the fixture's config file name
# is its image ID).
docker_image() {
  local ref=$1 fixture=$2 archive="$FIXTURES/$2.tar" id
  id=sha256:$(tar -xOf "$archive" manifest.json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Config"][:-5])')
  if [ "$("$DOCKER" image inspect -f '{{.Id}}' "$ref" 2>/dev/null)" != "$id" ]; then
    "$DOCKER" load -q -i "$archive" >/dev/null
    "$DOCKER" tag "$id" "$ref"
  fi
}

# prepare CASE...: dockerd, and the base images the cases name, in dockerd and
# in dfgen's store under the same names. golang and gcc (large) only when a
# case's Dockerfile names them.
prepare() {
  PATH="$(dirname "$DOCKER"):$PATH" bash "$SRC/scripts/start-dockerd.sh" || die "no docker daemon"
  local want=(busybox:latest:busybox debian:bookworm:debian) fixtures=(busybox debian) name files=()
  for name in "$@"; do files+=("$(case_dir "$name")/Dockerfile"); done
  for name in golang gcc; do
    if grep -qs "FROM $name:latest" "${files[@]}"; then
      want+=("$name:latest:$name"); fixtures+=("$name")
    fi
  done
  bash "$SRC/scripts/fixtures.sh" "${fixtures[@]}" >/dev/null || die "fixtures.sh failed"
  local w ref fixture
  for w in "${want[@]}"; do
    ref=${w%:*} fixture=${w##*:}
    docker_image "$ref" "$fixture"
    # dfgen resolves the same names in its store.
    dfrun import "$FIXTURES/$fixture.tar" -t "$ref" >/dev/null
  done
}

# case_dir NAME: cases/NAME, or expected/NAME for a name that starts so.
case_dir() {
  case $1 in expected/*) echo "$HERE/$1" ;; *) echo "$HERE/cases/$1" ;; esac
}

# run_case NAME: 0 when the images match (allowed differences aside), or for
# an expected/ case when dfgen's image meets the expectations.
run_case() {
  local name=$1 ctx out="$WORK/$1"
  ctx=$(case_dir "$name")
  [ -f "$ctx/Dockerfile" ] || die "no case $name"
  rm -rf "$out" && mkdir -p "$out"
  local tag="dfgen-differential/$name:latest" opts=() line
  if [ -f "$ctx/args" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
      [ -n "$line" ] && opts+=(--build-arg "$line")
    done <"$ctx/args"
  fi
  [ -f "$ctx/target" ] && opts+=(--target "$(tr -d '[:space:]' <"$ctx/target")")
  if [[ $name == expected/* ]]; then
    if ! { dfgen "$ctx" "${opts[@]}" -B "$out/build" -t "dfgen-differential-${name//\//-}" \
             --output "type=docker,dest=$out/dfgen.tar" && ninja -C "$out/build"; } \
           >"$out/dfgen.log" 2>&1; then
      echo "$name: dfgen build failed:"; tail -20 "$out/dfgen.log"; return 1
    fi
    python3 "$HERE/compare.py" --expect "$name" "$ctx/expect" "$out/dfgen.tar"
    return
  fi
  if ! DOCKER_BUILDKIT=1 "$DOCKER" build --no-cache "${opts[@]}" -t "$tag" "$ctx" >"$out/buildkit.log" 2>&1; then
    echo "$name: docker build failed:"; tail -20 "$out/buildkit.log"; return 1
  fi
  "$DOCKER" save -o "$out/buildkit.tar" "$tag"
  "$DOCKER" rmi "$tag" >/dev/null
  # The context first: --output takes every word up to the next option.
  if ! { dfgen "$ctx" "${opts[@]}" -B "$out/build" -t "dfgen-differential-$name" \
           --output "type=docker,dest=$out/dfgen.tar" && ninja -C "$out/build"; } \
         >"$out/dfgen.log" 2>&1; then
    echo "$name: dfgen build failed:"; tail -20 "$out/dfgen.log"; return 1
  fi
  python3 "$HERE/compare.py" "$name" "$out/buildkit.tar" "$out/dfgen.tar" "$HERE/allowlist.txt"
}

main() {
  local jobs=1
  if [ "${1:-}" = -j ]; then jobs=$2; shift 2; fi
  local cases=("$@") failed=() start=$SECONDS
  if [ ${#cases[@]} -eq 0 ]; then
    for d in "$HERE"/cases/*/; do cases+=("$(basename "$d")"); done
    for d in "$HERE"/expected/*/; do [ -d "$d" ] && cases+=("expected/$(basename "$d")"); done
  fi
  mkdir -p "$WORK"
  prepare "${cases[@]}"
  # Each case's output goes to WORK/NAME.out and is printed whole when the case
  # ends, so parallel cases do not interleave.
  local running=0 name
  for name in "${cases[@]}"; do
    if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
    rm -f "$WORK/$name.failed"
    mkdir -p "$(dirname "$WORK/$name")"
    ( if run_case "$name" >"$WORK/$name.out" 2>&1; then s=ok; else s=FAILED; fi
      { echo "=== $name"; cat "$WORK/$name.out"; } | flock "$WORK/.print" cat
      [ $s = ok ] || touch "$WORK/$name.failed" ) &
    running=$((running + 1))
  done
  wait
  for name in "${cases[@]}"; do
    [ -f "$WORK/$name.failed" ] && failed+=("$name")
  done
  echo "differential: ${#cases[@]} case(s) in $((SECONDS - start))s"
  # The last line is the summary, alone: "N passed, M failed".
  local passed=$(( ${#cases[@]} - ${#failed[@]} ))
  if [ ${#failed[@]} -gt 0 ]; then
    echo "differential: ${#failed[@]} case(s) differ: ${failed[*]} (builds kept in $WORK)"
    echo "$passed passed, ${#failed[@]} failed"
    exit 1
  fi
  [ -n "${DIFF_WORK:-}" ] || rm -rf "$WORK"
  echo "differential: ${#cases[@]} case(s) match"
  echo "$passed passed, ${#failed[@]} failed"
}

main "$@"
