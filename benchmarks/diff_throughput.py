"""Diff throughput and memory: ``trace diff`` of two 768 MiB float32 traces against a NumPy floor.

Writes four traces of 48 float32 stages of 16 MiB each (shape 4x1024x1024)
into a temporary directory under /tmp: the reference holds normal values of a
different scale and offset per stage; the "rounding" candidate is the
reference with rounding-level noise (one ulp on every 7th element) in every
stage, so every stage is compared in full and is MATCH; the "planted"
candidate adds planted differences: a localized error in stage 20 (SMALL), an
offset in stage 36 (LARGE) and a scale in stage 44 (LARGE), which
``trace diff`` then also diagnoses (reading those stages whole); the
"downstream" candidate is off by an offset from stage 24 on (every stage after a
real bug diverges), diffed with ``--jobs 16``: more threads than a laptop has
cores, to show that peak memory does not grow with the threads (a divergent
stage's diagnosis runs on the main thread, one at a time). Then, in the same
run, alternating:

- **floor**: one streaming NumPy pass in a fresh Python process that opens
  both files with ``safetensors.safe_open(path, "np")`` and computes, per
  stage, min/max/mean/std of both sides and the max and mean absolute
  difference (plain NumPy calls on the arrays ``get_tensor`` returns);
- **numtrace**: ``trace diff A B --json`` (a subprocess; its output is
  discarded), which also counts non-finite values, mismatches against a
  tolerance, the worst element, rms/cosine/SNR, and diagnoses the stages that
  differ; with its default ``--jobs`` (the cores available) and, for the
  rounding case, ``--jobs 1`` (one thread) to show how it scales.

Wall time is the median of ``--repeat`` runs of each; peak RSS is the child's
``ru_maxrss`` (``os.wait4``). The files are in the page cache for every run
(they were just written), so both sides measure computation, not the disk.
Targets: ``trace diff`` (all cores) <= 1.0x the floor, peak RSS <= 400 MiB.

Run:  python benchmarks/diff_throughput.py [--repeat 3] [--stages 48] [--keep DIR]
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

STAGE_SHAPE = (4, 1024, 1024)  # 4 Mi float32 = 16 MiB
TARGET_RATIO, TARGET_RSS_MIB = 1.0, 400  # run_all.py checks the same: with all cores (--jobs default)
HERE = os.path.dirname(os.path.abspath(__file__))

FLOOR = r"""
import sys, numpy as np
from safetensors import safe_open
out = []
with safe_open(sys.argv[1], "np") as fa, safe_open(sys.argv[2], "np") as fb:
    for name in fa.keys():
        a, b = fa.get_tensor(name), fb.get_tensor(name)
        d = np.abs(a - b)
        out.append((a.min(), a.max(), a.mean(), a.std(), b.min(), b.max(), b.mean(), b.std(), d.max(), d.mean()))
print(len(out))
"""


NAMES = ("reference", "rounding", "planted", "downstream")


def make_traces(directory: str, stages: int, seed: int = 0) -> tuple[str, ...]:
    """Write the reference and both candidates (stage by stage, streaming); return their paths."""
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))
    from numtrace.formats import open_writer

    rng = np.random.default_rng(seed)
    paths = tuple(os.path.join(directory, f"{n}.safetensors") for n in NAMES)
    with (
        open_writer(paths[0]) as wa,
        open_writer(paths[1]) as wr,
        open_writer(paths[2]) as wb,
        open_writer(paths[3]) as wd,
    ):
        for i in range(stages):
            a = rng.standard_normal(STAGE_SHAPE, dtype=np.float32)
            a *= np.float32(0.5 + i % 5)
            a += np.float32(i % 3 - 1)
            b = a.copy()
            flat = b.reshape(-1)
            flat[::7] = np.nextafter(flat[::7], np.float32(np.inf))  # rounding-level noise
            name = f"model.layers.{i}.out"
            wr.add(name, b)
            wd.add(name, b + np.float32(0.25) if i >= 24 else b)  # a bug at 24, carried to every later stage
            if i == 20:
                b[1, 300:310, :] += np.float32(2e-3)  # localized: a few times the tolerance
            elif i == 36:
                b += np.float32(0.25)  # offset
            elif i == 44:
                b *= np.float32(1.01)  # scale
            wa.add(name, a)
            wb.add(name, b)
    return paths


def timed_child(argv: list[str]) -> dict:
    """Run ``argv``; its wall and CPU seconds, peak RSS in MiB (``os.wait4``), exit status and output."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return {
            "wall": wall,
            "cpu": usage.ru_utime + usage.ru_stime,
            "rss": usage.ru_maxrss / 1024,
            "exit": proc.returncode,
            "out": out.read(),
        }


def _summary(runs: list[dict]) -> dict:
    return {
        "wall_s": statistics.median(r["wall"] for r in runs),
        "wall_min_s": min(r["wall"] for r in runs),
        "cpu_s": statistics.median(r["cpu"] for r in runs),
        "rss_mib": max(r["rss"] for r in runs),
        "runs": [round(r["wall"], 2) for r in runs],
    }


def run(repeat: int, stages: int, keep: str | None) -> dict:
    directory = keep or tempfile.mkdtemp(prefix="numtrace-diffbench-", dir="/tmp")
    try:
        t0 = time.perf_counter()
        paths = tuple(os.path.join(directory, f"{n}.safetensors") for n in NAMES)
        if not (keep and all(os.path.exists(p) for p in paths)):
            # in a child: a parent that held the arrays would pass its RSS on to every forked child's ru_maxrss
            subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--generate", directory, "--stages", str(stages)],
                check=True,
            )
        made = time.perf_counter() - t0
        ref, rounding, planted, downstream = paths
        trace = shutil.which("trace", path=os.path.dirname(sys.executable)) or "trace"
        commands = {
            "floor": [sys.executable, "-c", FLOOR, ref, rounding],
            "rounding": [trace, "diff", "--json", ref, rounding],
            "planted": [trace, "diff", "--json", ref, planted],
            "rounding_1": [trace, "diff", "--json", "--jobs", "1", ref, rounding],
            "downstream": [trace, "diff", "--json", "--jobs", "16", ref, downstream],
        }
        runs: dict[str, list[dict]] = {k: [] for k in commands}
        for _ in range(repeat):  # round-robin: a busy machine slows every case alike
            for key, argv in commands.items():
                runs[key].append(timed_child(argv))
        result = {"stages": stages, "bytes_per_trace": os.path.getsize(ref), "generate_s": made, "cpus": os.cpu_count()}
        result["jobs"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        for key, case_runs in runs.items():
            result[key] = _summary(case_runs)
            if key != "floor":
                last = json.loads(case_runs[-1]["out"])
                verdicts = [st["verdict"] for st in last["stages"]]
                result[key].update(
                    exit=case_runs[-1]["exit"],
                    first_divergence=last["first_divergence"],
                    verdicts={v: verdicts.count(v) for v in sorted(set(verdicts))},
                )
                result[key]["ratio"] = result[key]["wall_s"] / result["floor"]["wall_s"]
                result[key]["cpu_ratio"] = result[key]["cpu_s"] / result["floor"]["cpu_s"]
        return result
    finally:
        if keep is None:
            shutil.rmtree(directory, ignore_errors=True)


def report(result: dict) -> str:
    mib = result["bytes_per_trace"] / 2**20
    floor = result["floor"]
    lines = [
        f"traces of {result['stages']} float32 stages, {mib:.0f} MiB each; {result['cpus']} CPUs; "
        f"medians of {len(floor['runs'])} runs, round-robin",
        f"{'case':<46}{'wall s':>8}{'x floor':>9}{'CPU s':>8}{'x floor':>9}{'peak RSS MiB':>14}  verdicts",
        f"{'floor: safe_open + NumPy, 1 pass':<46}{floor['wall_s']:>8.2f}{'':>9}{floor['cpu_s']:>8.2f}{'':>9}"
        f"{floor['rss_mib']:>14.0f}",
    ]
    for key, label in (
        ("rounding", f"trace diff, rounding noise only, --jobs {result.get('jobs', '?')}"),
        ("rounding_1", "trace diff, rounding noise only, --jobs 1"),
        ("planted", "trace diff, 3 planted + diagnosis"),
        ("downstream", "trace diff, 24 diverging + diagnosis, --jobs 16"),
    ):
        if key not in result:
            continue
        r = result[key]
        lines.append(
            f"{label:<46}{r['wall_s']:>8.2f}{r['ratio']:>9.2f}{r['cpu_s']:>8.2f}{r['cpu_ratio']:>9.2f}"
            f"{r['rss_mib']:>14.0f}  {r['verdicts']} (exit {r['exit']})"
        )
    lines.append(
        f"wall runs: floor {floor['runs']}, rounding {result['rounding']['runs']}, planted {result['planted']['runs']}"
    )
    lines.append(f"targets: trace diff <= {TARGET_RATIO}x the floor's wall time, peak RSS <= {TARGET_RSS_MIB} MiB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stages", type=int, default=48)
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="write the traces into DIR and keep them, or reuse them if they are there (default: a temp dir, deleted)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--generate", metavar="DIR", help=argparse.SUPPRESS)  # internal: write the traces only
    args = parser.parse_args()
    if args.generate:
        make_traces(args.generate, args.stages)
        return
    result = run(args.repeat, args.stages, args.keep)
    print(json.dumps(result) if args.json else report(result))


if __name__ == "__main__":
    main()
