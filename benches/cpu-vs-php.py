#!/usr/bin/env python3
"""`scripts/bench-vs-php` in CPU time: the PHP reference and `flowgate inspect --jsonl` on the
same payload streams, µs of CPU (user + system) per line, and the ratio.

    benches/cpu-vs-php.py [SCALE]          # FLOWGATE_BIN=... for another build

Wall-clock ratios on the shared 2-core machine move with the neighbours' builds; the CPU time
a process is charged moves much less (it still carries cache and frequency effects). Same
streams and method as scripts/bench-vs-php: best of 3 runs, minus the same program on a
one-line stream (start-up).
"""
import json
import os
import resource
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCALE = int(sys.argv[1]) if len(sys.argv) > 1 else 1
BIN = os.environ.get("FLOWGATE_BIN") or os.path.join(ROOT, "target/release/flowgate")
if "FLOWGATE_BIN" not in os.environ:
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "flowgate"], cwd=ROOT, check=True)
PHP = ["php", "-d", "precision=14", os.path.join(ROOT, "tests/php/pipeline.php")]
FLOWGATE = [BIN, "inspect", "--jsonl"]


def cpu_seconds(cmd, path):
    """CPU time of one run of `cmd` on the file `path`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(path, "rb") as stdin:
        subprocess.run(cmd, stdin=stdin, stdout=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best(cmd, path):
    return min(cpu_seconds(cmd, path) for _ in range(3))


with tempfile.TemporaryDirectory() as tmp:
    print(f"{'payload':8} {'lines':>6} {'php µs/line':>12} {'flowgate µs/line':>17} {'ratio':>7}")
    for name, lines in (("a", 20000), ("b", 2000), ("c", 2000), ("d", 2000)):
        lines *= SCALE
        with open(os.path.join(ROOT, "benches/payloads", name + ".b64")) as f:
            b64 = f.read().rstrip("\n")
        paths = {}
        for n in (lines, 1):
            paths[n] = os.path.join(tmp, f"{name}-{n}.jsonl")
            with open(paths[n], "w") as out:
                for i in range(n):
                    # As PHP's json_encode writes it (`/` as `\/`), like scripts/bench-vs-php.
                    out.write(json.dumps({"id": i, "b64": b64}, separators=(",", ":")).replace("/", "\\/") + "\n")
        per_line = {}
        for side, cmd in (("php", PHP), ("flowgate", FLOWGATE)):
            per_line[side] = (best(cmd, paths[lines]) - best(cmd, paths[1])) / (lines - 1) * 1e6
        ratio = per_line["php"] / per_line["flowgate"]
        print(f"{name:8} {lines:>6} {per_line['php']:>12.2f} {per_line['flowgate']:>17.2f} {ratio:>6.1f}x")
