"""Recording never holds the trace in memory: peak RSS of ``trace run`` writing 300 MiB in 30 stages.

A script makes 30 float32 arrays of 10 MiB one after the other (each dropped
before the next) and taps each. It is run (round-robin, ``--repeat`` times):

- **bare**: ``python script.py`` (``tap`` does nothing: the script's own peak);
- **nothing kept**: ``trace run --probe no-such-stage`` (the same process, CLI
  imports included, recording active but keeping nothing): the baseline;
- **full**: ``trace run -o out.safetensors script.py``, every stage written to disk
  (and ``-o out.h5``);
- **stats**: ``trace run --stats -o out.safetensors script.py`` (sketches only).

The peak RSS of each child (``os.wait4``) minus the "nothing kept" run's is
the memory recording costs; it must stay bounded by about a stage or two, never grow
with the trace (300 MiB). The traces go to a temp directory under /tmp and
are deleted.

Run:  python benchmarks/record_memory.py [--repeat 3] [--stages 30] [--mib 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SCRIPT = """
import sys, numpy as np, numtrace
stages, mib = int(sys.argv[1]), int(sys.argv[2])
for i in range(stages):
    x = np.full(mib * 2**18, i, np.float32)  # mib MiB
    x[::3] = np.float32(-i)
    numtrace.tap(f"layer.{i}", x)
    del x
"""
TARGET_GROWTH_MIB = 48  # the writer's 16 MiB copy buffer + two 10 MiB stages + slack: constant, not the trace


def child(argv: list[str]) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{argv} failed ({code}): {err}")
    return {"wall": time.perf_counter() - start, "rss": usage.ru_maxrss / 1024}


def run(repeat: int, stages: int, mib: int) -> dict:
    directory = tempfile.mkdtemp(prefix="numtrace-recmem-", dir="/tmp")
    try:
        script = os.path.join(directory, "script.py")
        with open(script, "w") as f:
            f.write(SCRIPT)
        trace = shutil.which("trace", path=os.path.dirname(sys.executable)) or "trace"
        out = os.path.join(directory, "out")
        args = [script, str(stages), str(mib)]
        cases = {
            "bare": [sys.executable, *args],
            "none": [trace, "run", "--probe", "no-such-stage", "-o", out + "-none.safetensors", *args],
            "full": [trace, "run", "-o", out + ".safetensors", *args],
            "full_h5": [trace, "run", "-o", out + ".h5", *args],
            "stats": [trace, "run", "--stats", "-o", out + "-stats.safetensors", *args],
        }
        runs: dict[str, list[dict]] = {k: [] for k in cases}
        for _ in range(repeat):
            for key, argv in cases.items():
                runs[key].append(child(argv))
        sizes = {
            k: os.path.getsize(p)
            for k, p in (
                ("full", out + ".safetensors"),
                ("full_h5", out + ".h5"),
                ("stats", out + "-stats.safetensors"),
            )
        }
        result = {"stages": stages, "mib_per_stage": mib, "repeat": repeat}
        for key, rs in runs.items():
            result[key] = {
                "wall_s": statistics.median(r["wall"] for r in rs),
                "rss_mib": max(r["rss"] for r in rs),
                "file_mib": sizes.get(key, 0) / 2**20,
            }
        for key in ("full", "full_h5", "stats"):
            result[key]["growth_mib"] = result[key]["rss_mib"] - result["none"]["rss_mib"]
        return result
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def report(r: dict) -> str:
    total = r["stages"] * r["mib_per_stage"]
    lines = [
        f"{r['stages']} stages of {r['mib_per_stage']} MiB ({total} MiB recorded); medians of {r['repeat']} runs",
        f"{'case':<42}{'wall s':>8}{'peak RSS MiB':>14}{'growth':>8}{'file MiB':>10}",
    ]
    labels = {
        "bare": "python script.py (tap is a no-op)",
        "none": "trace run --probe no-such-stage (baseline)",
        "full": "trace run -o out.safetensors",
        "full_h5": "trace run -o out.h5",
        "stats": "trace run --stats -o out.safetensors",
    }
    for key, label in labels.items():
        c = r[key]
        growth = f"{c['growth_mib']:>8.0f}" if "growth_mib" in c else f"{'':>8}"
        lines.append(f"{label:<42}{c['wall_s']:>8.2f}{c['rss_mib']:>14.0f}{growth}{c['file_mib']:>10.1f}")
    lines.append(
        f"growth: peak RSS over the baseline; target <= {TARGET_GROWTH_MIB} MiB (a few stages), whatever the trace size"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stages", type=int, default=30)
    parser.add_argument("--mib", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.repeat, args.stages, args.mib)
    print(json.dumps(result) if args.json else report(result))


if __name__ == "__main__":
    main()
