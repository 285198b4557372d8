#!/usr/bin/env bash
# Runs e2e test binaries as a user who is not root: every dfrun step, run,
# check and prune of these tests then goes through the rootless path (a user
# namespace over the user's subordinate ids, docs/rootless.md). Run as root
# (it creates the user); ctest runs it as e2e_as_user (tests/CMakeLists.txt).
#
# Usage: tests/e2e/as_user.sh BUILD_DIR SOURCE_DIR [TEST_BINARY_NAME...]
#   (default binaries: the build, runner, seed, mounts, copyflags and hostile
#   e2e tests)
#
# The user (dfgen-e2e; subordinate ids as useradd gives them, or
# 400000-465535 when it gives none) is created when missing. It gets a fresh dir of its own under /tmp: bin/ (copies of dfgen,
# dfrun and the test binaries: a build tree under /root is not theirs to
# read), src/ (examples/ and scripts/ of the checkout), fixtures/ (links to
# the cached base image archives, so scripts/fixtures.sh finds them without
# root) and its own test store; the harness finds these through
# DFGEN_E2E_BUILD_DIR, DFGEN_E2E_SOURCE_DIR and DFGEN_FIXTURES. Exits non-zero
# when any test fails (or cannot start). The dir is removed at the end (by
# root: the store holds files of the subordinate range).
set -euo pipefail

BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
shift 2
BINARIES=("$@")
[ ${#BINARIES[@]} -gt 0 ] ||
  BINARIES=(e2e_build_test e2e_runner_test e2e_seed_test e2e_mounts_test e2e_copyflags_test e2e_hostile_test)
USER_NAME=dfgen-e2e
FIXTURES="${DFGEN_FIXTURES:-/var/cache/dfgen-fixtures}"

# The tests these binaries hold that do not run as the user, and why. The
# only list of them: everything else runs.
EXCLUDED=(
  # dockerd's socket is root's (docker group membership is root-equivalent).
  "Hello.DockerLoadAndRun"
  # The golang (0.6 GB) and gcc (0.4 GB) fixtures: importing them into the
  # user's store too would add minutes to CI; the root run builds them. The
  # rootless path they take is the busybox tests' (RUN, COPY --from, targets).
  "Hello.BuildsRunsAndHasOneFile"
  "Hello.TargetBuildStopsAtTheBuildStage"
  "Seed.NinjaStageTargetBuildsOnlyThatStage"
  "Seed.PreviousStageBuildsTheSharedStageOnce"
  "Seed.PreviousStageBothTargetsInOneGraphShareBuilder"
  # Asserts the owners of a type=local export on the host: root's export keeps
  # the image's ids (0:0, 1234:5678); a rootless one has the user's uid and
  # subordinate ids there (docs/rootless.md).
  "RunnerMain.LocalOutputHasTheFilesAndNoWhiteouts"
  # `umoci unpack` without --rootless chowns the bundle: root only.
  "RunnerMain.OciLayoutConfigAndWhiteout"
  # RUN --security=insecure grants what only root has; rootless dfrun refuses
  # it (runner/sandbox).
  "Security.InsecureRunMountsSandboxedRunCannot"
  # The test makes its device nodes with mknod (CAP_MKNOD of the host).
  "HostileContext.DeviceNodesAndFifosAreCopiedAsNodes"
  # The test mounts a tmpfs as the store (and grows it with a remount).
  "HostileResources.FullDiskFailsClearlyAndRecovers"
)

if [ "$(id -u)" != 0 ]; then
  echo "as_user.sh: run as root (it creates the user $USER_NAME)" >&2
  exit 2
fi

# The user, idempotently; the lock is the one tests/e2e/harness.cc takes.
flock /tmp/dfgen-e2e-users.lock sh -ec "
  id -u $USER_NAME >/dev/null 2>&1 || useradd --no-create-home --shell /bin/sh $USER_NAME
  grep -q '^$USER_NAME:' /etc/subuid || usermod --add-subuids 400000-465535 $USER_NAME
  grep -q '^$USER_NAME:' /etc/subgid || usermod --add-subgids 400000-465535 $USER_NAME
  chmod 0666 /dev/net/tun"

DIR=$(mktemp -d /tmp/dfgen-e2e-user.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
mkdir -p "$DIR/bin" "$DIR/src" "$DIR/fixtures"
cp "$BUILD/bin/dfgen" "$BUILD/bin/dfrun" "$DIR/bin/"
for b in "${BINARIES[@]}"; do cp "$BUILD/bin/$b" "$DIR/bin/"; done
cp -a "$SRC/examples" "$SRC/scripts" "$DIR/src/"
for f in "$FIXTURES"/*.tar; do ln -s "$f" "$DIR/fixtures/"; done
chown -R "$USER_NAME:" "$DIR"
chmod 0755 "$DIR"

filter="-$(IFS=:; echo "${EXCLUDED[*]}")"
failed=()
for b in "${BINARIES[@]}"; do
  echo "== $b as $USER_NAME (--gtest_filter=$filter)"
  if ! (cd "$DIR" && runuser -u "$USER_NAME" -- env -i HOME="$DIR" USER="$USER_NAME" \
          PATH="$DIR/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
          DFGEN_E2E_BUILD_DIR="$DIR" DFGEN_E2E_SOURCE_DIR="$DIR/src" DFGEN_FIXTURES="$DIR/fixtures" \
          "$DIR/bin/$b" --gtest_filter="$filter"); then
    failed+=("$b")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "as_user.sh: failed as $USER_NAME: ${failed[*]}" >&2
  exit 1
fi
echo "as_user.sh: all passed as $USER_NAME: ${BINARIES[*]}"
