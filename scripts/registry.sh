#!/usr/bin/env bash
# Starts a throw-away docker-registry on 127.0.0.1 for manual testing of
# `dfrun push` / `dfrun pull` (the e2e tests start their own).
#   scripts/registry.sh [PORT] [DIR]     default 5000, a new temp dir
# Prints the registry's address and pid; stop it with `kill PID`.
set -euo pipefail
port="${1:-5000}"
dir="${2:-$(mktemp -d /tmp/dfgen-registry.XXXXXX)}"
mkdir -p "$dir/data"
cat > "$dir/config.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $dir/data
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
pid=$!
for _ in $(seq 50); do
  if curl -s -o /dev/null "http://127.0.0.1:$port/v2/"; then
    echo "registry 127.0.0.1:$port pid $pid (storage and log in $dir)"
    exit 0
  fi
  sleep 0.1
done
echo "docker-registry did not start; see $dir/log" >&2
kill "$pid" 2>/dev/null || true
exit 1
