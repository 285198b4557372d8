#!/usr/bin/env python3
"""Compares two docker-archives (`docker save` layout) as images: the config
fields a Dockerfile sets and the file tree the layers add up to.

    compare.py CASE REFERENCE.tar CANDIDATE.tar [ALLOWLIST]
    compare.py --expect CASE EXPECT CANDIDATE.tar

REFERENCE is BuildKit's image (docker build + docker save), CANDIDATE is
dfgen's (--output type=docker). Each difference has a key: `config.FIELD` or
an absolute path. A difference whose key an ALLOWLIST line matches for this
CASE is reported as allowed (with the line's reason); any other difference
makes the exit status 1. Allowlist lines: `CASE KEY REASON...`, CASE and KEY
are fnmatch patterns (`*` = any case).

--expect checks CANDIDATE against written-out expectations instead (features
BuildKit 0.8 lacks), one per line of EXPECT, each on its key only:
    config.FIELD JSON            the config field (absent/null/empty alike)
    author JSON                  the image's author
    /path absent                 no such path
    /path dir 0755 0:0
    /path file 0644 0:0 "JSON string content"
    /path symlink 0:0 -> target
    /path hardlink 0644 0:0 => /other See docs/differential.md.
"""
import fnmatch
import hashlib
import io
import json
import os
import sys
import tarfile

CONFIG_FIELDS = ["Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes",
                 "Labels", "StopSignal", "Healthcheck", "OnBuild", "Shell"]


def read_archive(path):
    """(config dict, list of layer tar bytes) of a docker-archive."""
    with tarfile.open(path, "r") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        if len(manifest) != 1:
            sys.exit(f"{path}: expected one image in manifest.json, found {len(manifest)}")
        m = manifest[0]
        config = json.load(tar.extractfile(m["Config"]))
        layers = [tar.extractfile(name).read() for name in m["Layers"]]
    return config, layers


def abs_path(name):
    """"./a/b/", "a/b" and "/a/b" are all "/a/b"."""
    while name.startswith("./"):
        name = name[2:]
    name = "/" + name.strip("/")
    return "/" if name in ("/", "/.") else name


def apply_layer(tree, data):
    """Applies one layer (any compression) to tree: path -> entry tuple."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as layer:
        members = layer.getmembers()
        for m in members:
            path = abs_path(m.name)
            parent, base = os.path.split(path)
            if base == ".wh..wh..opq":
                prefix = parent.rstrip("/") + "/"
                for p in [p for p in tree if p.startswith(prefix)]:
                    del tree[p]
                continue
            if base.startswith(".wh."):
                gone = os.path.join(parent, base[4:])
                for p in [p for p in tree if p == gone or p.startswith(gone + "/")]:
                    del tree[p]
                continue
        for m in members:
            path = abs_path(m.name)
            if os.path.basename(path).startswith(".wh."):
                continue
            if path in tree and tree[path][0] == "dir" and m.isdir():
                pass   # a directory entry replaces the metadata only
            elif path in tree and not m.isdir():
                # a file replacing a directory removes what was below it
                for p in [p for p in tree if p.startswith(path + "/")]:
                    del tree[p]
            tree[path] = describe(layer, m)


def describe(layer, m):
    mode = f"{m.mode & 0o7777:04o}"
    owner = f"{m.uid}:{m.gid}"
    if m.isdir():
        return ("dir", mode, owner, "", "")
    if m.issym():
        return ("symlink", "", owner, "", "-> " + m.linkname)   # a link's own mode means nothing
    if m.islnk():
        return ("hardlink", mode, owner, "", "=> " + abs_path(m.linkname))
    if m.isreg():
        digest = hashlib.sha256(layer.extractfile(m).read()).hexdigest()[:16]
        return ("file", mode, owner, str(m.size), "sha256:" + digest)
    kinds = {tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}
    return (kinds.get(m.type, "other"), mode, owner, "", f"{m.devmajor},{m.devminor}")


def tree_of(layers):
    tree = {}
    for data in layers:
        apply_layer(tree, data)
    tree.pop("/", None)
    return tree


def normalise(value):
    """Absent, null and empty are one thing in a config."""
    return None if value in (None, [], {}, "") else value


def config_diffs(ref, cand):
    out = []
    rc, cc = ref.get("config") or {}, cand.get("config") or {}
    for field in CONFIG_FIELDS:
        a, b = normalise(rc.get(field)), normalise(cc.get(field))
        if a != b:
            out.append(("config." + field,
                        f"config.{field}:\n  - buildkit {json.dumps(a, sort_keys=True)}\n"
                        f"  + dfgen    {json.dumps(b, sort_keys=True)}"))
    # MAINTAINER sets the image's author, beside the config.
    a, b = normalise(ref.get("author")), normalise(cand.get("author"))
    if a != b:
        out.append(("author", f"author:\n  - buildkit {json.dumps(a)}\n  + dfgen    {json.dumps(b)}"))
    return out


def fmt_entry(e):
    return " ".join(x for x in e if x)


def tree_diffs(ref, cand):
    out = []
    for path in sorted(set(ref) | set(cand)):
        a, b = ref.get(path), cand.get(path)
        if a == b:
            continue
        if a is None:
            out.append((path, f"{path}: only in dfgen: {fmt_entry(b)}"))
        elif b is None:
            out.append((path, f"{path}: only in buildkit: {fmt_entry(a)}"))
        else:
            out.append((path, f"{path}:\n  - buildkit {fmt_entry(a)}\n  + dfgen    {fmt_entry(b)}"))
    return out


def read_allowlist(path, case):
    rules = []
    if not path or not os.path.exists(path):
        return rules
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            if len(parts) < 3:
                sys.exit(f"{path}:{n}: expected CASE KEY REASON")
            if fnmatch.fnmatchcase(case, parts[0]):
                rules.append((parts[1], parts[2], f"{os.path.basename(path)}:{n}"))
    return rules


def expected_entry(want):
    """The entry tuple (as describe() makes) of an expectation's text."""
    content = None
    if '"' in want:
        at = want.index('"')
        content = json.loads(want[at:]).encode()
        want = want[:at].strip()
    parts = want.split()
    if content is not None:
        digest = hashlib.sha256(content).hexdigest()[:16]
        return tuple(parts[:3]) + (str(len(content)), "sha256:" + digest)
    if parts[0] == "dir":
        return tuple(parts[:3]) + ("", "")
    if parts[0] == "symlink":
        return ("symlink", "", parts[1], "", " ".join(parts[2:]))
    if parts[0] == "hardlink":
        return ("hardlink", parts[1], parts[2], "", " ".join(parts[3:]))
    sys.exit(f"cannot read the expectation {want!r}")


def check_expectations(case, expect_path, cand_path):
    cfg, layers = read_archive(cand_path)
    config, tree = cfg.get("config") or {}, tree_of(layers)
    failed = checked = 0
    with open(expect_path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, want = line.partition(" ")
            want = want.strip()
            checked += 1
            if key.startswith("config.") or key == "author":
                got = normalise(cfg.get("author") if key == "author" else config.get(key[7:]))
                ok, got_text, want_text = got == normalise(json.loads(want)), json.dumps(got, sort_keys=True), want
            elif want == "absent":
                ok, got_text, want_text = key not in tree, fmt_entry(tree[key]) if key in tree else "absent", want
            else:
                exp = expected_entry(want)
                got = tree.get(key)
                ok, got_text, want_text = got == exp, fmt_entry(got) if got else "absent", fmt_entry(exp)
            if not ok:
                failed += 1
                print(f"DIFF {key} ({os.path.basename(expect_path)}:{n}):\n  - expected {want_text}\n  + dfgen    {got_text}")
    print(f"{case}: {checked} expectation(s), {failed} not met")
    return 1 if failed else 0


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--expect":
        return check_expectations(*sys.argv[2:5])
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    case, ref_path, cand_path = sys.argv[1:4]
    allow = read_allowlist(sys.argv[4] if len(sys.argv) == 5 else None, case)
    ref_cfg, ref_layers = read_archive(ref_path)
    cand_cfg, cand_layers = read_archive(cand_path)
    diffs = config_diffs(ref_cfg, cand_cfg) + tree_diffs(tree_of(ref_layers), tree_of(cand_layers))
    failed = 0
    for key, text in diffs:
        rule = next((r for r in allow if fnmatch.fnmatchcase(key, r[0])), None)
        if rule:
            print(f"allowed ({rule[2]}: {rule[1]}): {text}")
        else:
            print(f"DIFF {text}")
            failed += 1
    print(f"{case}: {len(diffs)} difference(s), {failed} not allowed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
