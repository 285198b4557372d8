#!/usr/bin/env bash
# Starts a Docker daemon (Debian's docker.io) in the background unless one
# answers already; waits until `docker info` works. Used by the tests that
# check `docker load` + `docker run` accept dfgen's images.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
log=${DOCKERD_LOG:-/tmp/dfgen-dockerd.log}
# A daemon killed without cleaning up leaves its pid files behind; a new one refuses to start.
for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
  if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
    rm -f "$pidfile"
  fi
done
DOCKERD=$(command -v dockerd || echo /usr/sbin/dockerd)
nohup "$DOCKERD" >"$log" 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
echo "start-dockerd.sh: dockerd did not come up; see $log" >&2
tail -20 "$log" >&2 || true
exit 1
