#!/usr/bin/env python3
# Writes the 20,000-file context of scenario 3 into DIR: 100 folders of 200
# files, 1-9 KiB each (~100 MB), incompressible, the same bytes on every run.
import os, random, sys

root = sys.argv[1]
rng = random.Random(42)
blob = os.urandom(1 << 20)
for d in range(100):
    p = os.path.join(root, f"d{d:03}")
    os.makedirs(p, exist_ok=True)
    for f in range(200):
        n = rng.randint(1024, 9 * 1024)
        off = rng.randint(0, len(blob) - n)
        with open(os.path.join(p, f"f{f:03}.dat"), "wb") as out:
            out.write(blob[off:off + n])
            out.write(f"{d}/{f}".encode())
