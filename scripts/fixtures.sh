#!/usr/bin/env bash
# Builds the base image fixtures the runner tests and examples use, cached in
# ${DFGEN_FIXTURES:-/var/cache/dfgen-fixtures}:
#
#   NAME.tar         a docker-archive (`docker save` layout: manifest.json, a
#                    config JSON named by its sha256, one <diff_id>/layer.tar),
#                    accepted by `dfrun import` and `docker load`
#   NAME.rootfs.tar  the same file system as a plain tar, for tests that only
#                    need a root file system
#
# Fixtures: busybox (busybox-static + applet links, root and nobody; no
# network needed), debian (mmdebstrap minbase bookworm), golang (minbase +
# golang-go), gcc (minbase + g++ libc6-dev).
#
# Usage: scripts/fixtures.sh [NAME...]     (no names: all of them)
# A fixture whose NAME.tar exists is not rebuilt. Outputs are written to a
# temp name and renamed, under a lock, so parallel callers are safe. Prints
# the paths of the docker-archives. Needs root (mmdebstrap --mode=root).
set -euo pipefail

CACHE="${DFGEN_FIXTURES:-/var/cache/dfgen-fixtures}"
MIRROR="${DFGEN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
ALL=(busybox debian golang gcc)

die() { echo "fixtures.sh: $*" >&2; exit 1; }

# python3 helper: packing a directory as a tar, and wrapping a rootfs tar as a
# docker-archive. Entries are sorted, owned by 0:0 when packed from a dir,
# paths are normalised (no leading "./"), so digests are reproducible.
pack() {
  python3 - "$@" <<'PY'
import hashlib, io, json, os, sys, tarfile

EPOCH = 0
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

def norm(name):
    while name.startswith("./"):
        name = name[2:]
    name = name.lstrip("/")
    return name.rstrip("/")

def dir_to_tar(src, out):
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, files in os.walk(src):
            dirs.sort()
            for name in sorted(dirs + files):
                full = os.path.join(root, name)
                info = tar.gettarinfo(full, arcname=os.path.relpath(full, src))
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = EPOCH
                if info.isreg():
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)

def rootfs_to_docker_archive(rootfs_tar, name, cmd_json, out_rootfs, out_archive):
    cmd = json.loads(cmd_json)
    tmp_layer = out_archive + ".layer"
    # Normalised copy of the rootfs: both the plain rootfs tar and the layer.
    with tarfile.open(rootfs_tar, "r") as src, \
         tarfile.open(tmp_layer, "w", format=tarfile.PAX_FORMAT) as dst:
        for m in src:
            n = norm(m.name)
            if n in ("", "."):
                continue
            m.name = n
            if m.islnk():
                m.linkname = norm(m.linkname)
            dst.addfile(m, src.extractfile(m) if m.isreg() else None)
    h = hashlib.sha256()
    with open(tmp_layer, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    diff = h.hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2025-05-20T00:00:00Z",
        "config": {"Env": [PATH_ENV], "Cmd": cmd},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff]},
        "history": [{"created": "2025-05-20T00:00:00Z",
                     "created_by": "dfgen scripts/fixtures.sh " + name}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [name + ":latest"],
                 "Layers": [diff + "/layer.tar"]}]
    legacy_json = json.dumps({"id": diff, "created": "2025-05-20T00:00:00Z",
                              "os": "linux", "architecture": "amd64"}).encode()
    def add_bytes(tar, path, data):
        info = tarfile.TarInfo(path)
        info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
        tar.addfile(info, io.BytesIO(data))
    with tarfile.open(out_archive, "w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, config_name, config_bytes)
        d = tarfile.TarInfo(diff)
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, EPOCH
        tar.addfile(d)
        add_bytes(tar, diff + "/VERSION", b"1.0")
        add_bytes(tar, diff + "/json", legacy_json)
        info = tar.gettarinfo(tmp_layer, arcname=diff + "/layer.tar")
        info.uid = info.gid = 0
        info.mtime, info.mode = EPOCH, 0o644
        with open(tmp_layer, "rb") as f:
            tar.addfile(info, f)
        add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
        add_bytes(tar, "repositories",
                  json.dumps({name: {"latest": diff}}).encode())
    os.replace(tmp_layer, out_rootfs)

op = sys.argv[1]
if op == "dir-to-tar":
    dir_to_tar(sys.argv[2], sys.argv[3])
elif op == "docker-archive":
    rootfs_to_docker_archive(*sys.argv[2:7])
else:
    sys.exit("unknown op " + op)
PY
}

# build_rootfs NAME OUT: writes a plain rootfs tar for NAME to OUT.
build_rootfs() {
  local name=$1 out=$2
  case "$name" in
    busybox) build_busybox "$out" ;;
    debian) debootstrap_tar "$out" ;;
    golang) debootstrap_tar "$out" golang-go
            tar -tf "$out" | grep -x '\./usr/bin/go' >/dev/null || die "golang: no /usr/bin/go in rootfs" ;;
    gcc) debootstrap_tar "$out" g++ libc6-dev ;;
    *) die "unknown fixture $name (known: ${ALL[*]})" ;;
  esac
}

cmd_of() {
  case "$1" in
    busybox) echo '["sh"]' ;;
    *) echo '["bash"]' ;;
  esac
}

build_busybox() {
  local out=$1 bb
  bb=$(command -v busybox) || die "busybox-static is not installed"
  local stage
  stage=$(mktemp -d "$CACHE/.busybox.XXXXXX")
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev,home,var}
  chmod 1777 "$stage/tmp"
  chmod 700 "$stage/root"
  cp "$bb" "$stage/bin/busybox"
  chmod 755 "$stage/bin/busybox"
  local applet
  while read -r applet; do
    [ "$applet" = bin/busybox ] && continue
    [ -e "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
  done < <("$bb" --list-full)
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$stage/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$stage/etc/group"
  pack dir-to-tar "$stage" "$out"
  rm -rf "$stage"
}

# debootstrap_tar OUT [PACKAGE...]: minbase bookworm (+ packages) as a tar.
debootstrap_tar() {
  local out=$1; shift
  local include=()
  [ $# -gt 0 ] && include=("--include=$(IFS=,; echo "$*")")
  command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed"
  SOURCE_DATE_EPOCH=1747699200 mmdebstrap --quiet --mode=root --variant=minbase \
    --skip=output/dev --format=tar "${include[@]}" \
    "$SUITE" "$out" "$MIRROR" >&2
}

build_one() {
  local name=$1
  local archive="$CACHE/$name.tar" rootfs="$CACHE/$name.rootfs.tar"
  if [ -s "$archive" ] && [ -s "$rootfs" ]; then
    echo "$archive"
    return
  fi
  local tmp="$CACHE/.$name.$$"
  echo "fixtures.sh: building $name ..." >&2
  build_rootfs "$name" "$tmp.src.tar"
  pack docker-archive "$tmp.src.tar" "$name" "$(cmd_of "$name")" "$tmp.rootfs.tar" "$tmp.tar"
  rm -f "$tmp.src.tar"
  sync -f "$tmp.tar" 2>/dev/null || true
  mv -f "$tmp.rootfs.tar" "$rootfs"
  mv -f "$tmp.tar" "$archive"
  echo "$archive"
}

main() {
  [ $# -gt 0 ] || set -- "${ALL[@]}"
  mkdir -p "$CACHE"
  local name
  for name in "$@"; do
    case " ${ALL[*]} " in *" $name "*) ;; *) die "unknown fixture $name (known: ${ALL[*]})" ;; esac
    # One builder per fixture at a time; a waiting caller then finds it built.
    (
      flock 9
      trap 'rm -rf "$CACHE/.$name.$$".* "$CACHE"/.busybox.*' EXIT
      build_one "$name"
    ) 9>"$CACHE/.$name.lock"
  done
}

main "$@"
