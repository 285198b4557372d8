#!/usr/bin/env bash
# Sets up everything and runs the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/fixtures.sh >/dev/null
bash scripts/start-dockerd.sh
bash scripts/build.sh
cd build
ctest --output-on-failure -j2 --timeout 1200
