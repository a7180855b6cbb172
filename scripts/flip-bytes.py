#!/usr/bin/env python3
"""Flips random bytes in a store's segments, one at a time, and checks that
every read either fails naming the damage (exit 5) or returns exactly what it
returned before the flip. Prints how many flips were found.

usage: scripts/flip-bytes.py MCPOPS_BINARY STORE_DIR [FLIPS] [SEED]
The store is restored byte for byte after each flip."""
import glob, os, random, subprocess, sys

binary, store = sys.argv[1], sys.argv[2]
flips = int(sys.argv[3]) if len(sys.argv) > 3 else 40
rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)


def export():
    o = subprocess.run([binary, "--store", store, "--quiet", "export", "--format", "csv"],
                       capture_output=True)
    return o.returncode, o.stdout, o.stderr.decode(errors="replace")


code, clean, err = export()
assert code == 0, err
segments = sorted(glob.glob(os.path.join(store, "segments", "day=*", "seg-*.parquet")))
found = same = wrong = 0
for i in range(flips):
    path = rng.choice(segments)
    size = os.path.getsize(path)
    at = rng.randrange(4, size)  # past the leading magic, which no reader uses
    with open(path, "r+b") as f:
        f.seek(at)
        old = f.read(1)
        f.seek(at)
        f.write(bytes([old[0] ^ (1 << rng.randrange(8))]))
    try:
        code, out, err = export()
        if code == 5 and "segment" in err or code == 5 and "seg-" in err:
            found += 1
        elif code == 0 and out == clean:
            same += 1
        else:
            wrong += 1
            print(f"flip {i} at {path}:{at}: exit {code}, {err.strip()[:200]}")
    finally:
        with open(path, "r+b") as f:
            f.seek(at)
            f.write(old)
print(f"{flips} flips: {found} found (exit 5), {same} read unchanged, {wrong} wrong or unnamed")
sys.exit(1 if wrong else 0)
