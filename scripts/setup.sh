#!/usr/bin/env bash
# Installs every Debian package dfgen's build, tests and examples need.
# Idempotent; safe to run again. Needs root (or sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

packages=(
  # build
  cmake ninja-build g++ pkg-config clang
  libre2-dev libssl-dev libfmt-dev libgtest-dev libgmock-dev
  nlohmann-json3-dev libarchive-dev zlib1g-dev libzstd-dev libcurl4-openssl-dev libcli11-dev
  # running containers
  runc slirp4netns uidmap iproute2
  # test peers and fixtures
  mmdebstrap busybox-static skopeo umoci docker.io docker-registry openssl apache2-utils curl
  buildah time   # bench/run.sh: a peer builder; /usr/bin/time -v for peak RSS
  linux-perf   # bench/profile.sh and the profiles of bench/analysis.md
  zstd   # layer_test and image_test check zstd layers with zstd(1)
  python3 ca-certificates git   # git: ADD of git repositories (dfrun clones with it)
  openssh-client   # e2e: a real ssh-agent, ssh-keygen and ssh-add for RUN --mount=type=ssh
  libcap2-bin   # e2e repro: setcap gives a base image file a capability (an xattr)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# slirp4netns (RUN's private network) opens /dev/net/tun; rootless builds need it 0666,
# as udev normally makes it.
if [ -c /dev/net/tun ]; then $SUDO chmod 0666 /dev/net/tun || true; fi
