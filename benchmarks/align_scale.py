"""Pairing at scale: `trace diff` of 20,000-stage traces whose names agree, and whose names do not.

Two traces of N small float32 stages (16 values each, as in a long LLM trace) are written as
safetensors; the candidate is the reference with rounding noise, either under the same names or
renamed in another style (``model.layers.3.mod7.out`` against ``Model.Layers.3.Mod7.output``:
no name pass pairs them, the alignment does). Measured: the pairing alone (``align``) and the
whole ``trace diff --json`` (wall time, peak RSS via ``os.wait4``), medians of ``--repeat`` runs.

    python benchmarks/align_scale.py [--stages 20000] [--repeat 3] [--json]
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

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "src"))

import numtrace  # noqa: E402
from numtrace.compare.pairing.align import align  # noqa: E402

#: "20,000-stage traces align in seconds": the pairing of the renamed case, every stage paired
TARGET_S = 10.0


def write(folder: str, n: int) -> dict[str, str]:
    rng = np.random.default_rng(0)
    stages = [rng.standard_normal(16).astype(np.float32) for _ in range(n)]
    names = [f"model.layers.{i // 10}.mod{i % 10}.out" for i in range(n)]
    renamed = [f"Model.Layers.{i // 10}.Mod{i % 10}.output" for i in range(n)]
    noisy = [s + np.float32(1e-7) * rng.standard_normal(16).astype(np.float32) for s in stages]
    paths = {k: os.path.join(folder, f"{k}.safetensors") for k in ("reference", "same", "renamed")}
    numtrace.save(paths["reference"], dict(zip(names, stages)), order=names)
    numtrace.save(paths["same"], dict(zip(names, noisy)), order=names)
    numtrace.save(paths["renamed"], dict(zip(renamed, noisy)), order=renamed)
    return paths


def time_align(a: str, b: str) -> tuple[float, int]:
    with numtrace.load(a) as ref, numtrace.load(b) as cand:
        start = time.perf_counter()
        pairs = align(ref, cand)
        return time.perf_counter() - start, sum(p.name_a is not None and p.name_b is not None for p in pairs)


def time_diff(a: str, b: str) -> tuple[float, float]:
    exe = [sys.executable, "-c", "from numtrace.cli import main; main()", "diff", a, b, "--json"]
    start = time.perf_counter()
    process = subprocess.Popen(
        exe,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")},
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(process.stderr.read().decode() if process.stderr else "trace diff failed")
    return wall, usage.ru_maxrss / 1024


def measure(n: int, repeat: int) -> dict:
    folder = tempfile.mkdtemp(prefix="numtrace-align-")
    try:
        paths = write(folder, n)
        out: dict = {"stages": n}
        for case in ("same", "renamed"):
            aligned = [time_align(paths["reference"], paths[case]) for _ in range(repeat)]
            runs = [time_diff(paths["reference"], paths[case]) for _ in range(repeat)]
            out[case] = {
                "align_s": statistics.median(t for t, _ in aligned),
                "paired": aligned[0][1],
                "diff_s": statistics.median(w for w, _ in runs),
                "rss_mib": statistics.median(r for _, r in runs),
            }
        return out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def report(r: dict) -> str:
    lines = [
        f"{r['stages']} stages of 16 float32 values; medians",
        "case      pairing s  paired   diff --json s  peak RSS MiB",
    ]
    for case in ("same", "renamed"):
        c = r[case]
        lines.append(f"{case:<9} {c['align_s']:>9.2f}  {c['paired']:>6}   {c['diff_s']:>13.2f}  {c['rss_mib']:>12.0f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    r = measure(args.stages, args.repeat)
    print(json.dumps(r) if args.json else report(r))


if __name__ == "__main__":
    main()
