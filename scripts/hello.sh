#!/usr/bin/env bash
# The main job: set up, build dfgen, build examples/hello with `dfgen && ninja hello`,
# and run the image (prints "hello, world").
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
bash scripts/setup.sh
bash scripts/build.sh
fixture=$(bash scripts/fixtures.sh golang | tail -1)
export PATH="$top/build/bin:$PATH"
# The example's `FROM golang:1.21` is pointed at a Go image made from Debian packages.
dfrun import "$fixture" -t dfgen-fixtures/golang:bookworm >/dev/null
cd examples/hello
dfgen --build-context golang:1.21=docker-image://dfgen-fixtures/golang:bookworm
ninja hello
dfrun run hello
