"""How `trace diff` grows with the number of stages and with their size.

Many small stages: traces of 1,000, 5,000 and 20,000 stages of 16 float32 values (a long LLM
trace), the candidate the reference with rounding noise (every stage MATCH), diffed as a table
(`trace diff A B`, what people type: MATCH runs collapse to one line) and as JSON (`--json`, one
object per stage). Large stages: a trace of two stages of 1 GiB each (2^28 float32), diffed whole
and with `--only` its first stage. Each case runs `trace diff` in a fresh process (wall time,
peak RSS via ``os.wait4``), medians of ``--repeat`` runs, round-robin. From the figures: the cost
per stage (slope from 1,000 to 20,000 stages) and per GiB.

    python benchmarks/diff_scale.py [--repeat 3] [--gib 1] [--skip-large] [--json]
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
COUNTS = (1_000, 5_000, 20_000)
#: "20,000 stages diff in under 2 s" (the table, what people type)
TARGET_S = 2.0

GENERATE = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import numtrace

folder, kind, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = np.random.default_rng(0)
if kind == "small":
    names = [f"model.layers.{i // 10}.mod{i % 10}.out" for i in range(n)]
    ref = {name: rng.standard_normal(16).astype(np.float32) for name in names}
    cand = {k: v + np.float32(1e-7) * rng.standard_normal(16).astype(np.float32) for k, v in ref.items()}
else:  # n stages of 2**28 float32 (1 GiB each)
    names = [f"block{i}.out" for i in range(n)]
    ref = {name: rng.standard_normal(1 << 28, dtype=np.float32) for name in names}
    cand = {k: v * np.float32(1 + 2**-23) for k, v in ref.items()}  # one ulp: rounding noise
numtrace.save(f"{folder}/a.safetensors", ref, order=names)
numtrace.save(f"{folder}/b.safetensors", cand, order=names)
"""


PHASES = """
import io, json, sys, time
sys.path.insert(0, sys.argv[1])
start = time.perf_counter()
import numtrace
from numtrace.compare.engine import diff
from numtrace.compare.pairing.align import align
from numtrace.report.json_lines import write_report
from numtrace.report.table import print_diff
import contextlib
imported = time.perf_counter()
a, b = numtrace.load(sys.argv[2]), numtrace.load(sys.argv[3])
loaded = time.perf_counter()
align(a, b)
paired = time.perf_counter()
report = diff(a, b)
compared = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    print_diff(report, width=120)
table = time.perf_counter()
data = report.to_dict()
as_dict = time.perf_counter()
write_report(data, io.StringIO())
encoded = time.perf_counter()
print(json.dumps({"import": imported - start, "read headers": loaded - imported, "pairing": paired - loaded,
                  "diff (its pairing again, compare, verdicts)": compared - paired, "table": table - compared,
                  "report objects": as_dict - table, "JSON text": encoded - as_dict}))
"""


def phases(folder: str) -> dict[str, float]:
    """Where the time of a diff goes, phase by phase, in one process (``print_diff`` to a string)."""
    argv = [
        sys.executable,
        "-c",
        PHASES,
        os.path.join(ROOT, "src"),
        f"{folder}/a.safetensors",
        f"{folder}/b.safetensors",
    ]
    out = subprocess.run(argv, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def generate(folder: str, kind: str, n: int) -> None:
    """In a child process: the parent's RSS would otherwise show in every forked child's ru_maxrss."""
    subprocess.run([sys.executable, "-c", GENERATE, os.path.join(ROOT, "src"), folder, kind, str(n)], check=True)


def timed(argv: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {process.stderr.read().decode() if process.stderr else ''}")
    return wall, usage.ru_maxrss / 1024


def measure(cases: dict[str, list[str]], repeat: int) -> dict[str, dict]:
    runs: dict[str, list] = {label: [] for label in cases}
    for _ in range(repeat):  # round-robin: a busy machine slows every case alike
        for label, argv in cases.items():
            runs[label].append(timed(argv))
    return {
        label: {"wall_s": statistics.median(w for w, _ in r), "rss_mib": max(m for _, m in r)}
        for label, r in runs.items()
    }


def run(repeat: int, large: bool) -> dict:
    trace = shutil.which("trace", path=os.path.dirname(sys.executable)) or "trace"
    out: dict = {"small": {}, "large": {}}
    for n in COUNTS:
        folder = tempfile.mkdtemp(prefix="numtrace-scale-", dir="/tmp")
        try:
            generate(folder, "small", n)
            a, b = f"{folder}/a.safetensors", f"{folder}/b.safetensors"
            out["small"][n] = measure({"table": [trace, "diff", a, b], "json": [trace, "diff", "--json", a, b]}, repeat)
            if n == COUNTS[-1]:
                out["phases"] = phases(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    first, last = out["small"][COUNTS[0]], out["small"][COUNTS[-1]]
    span = COUNTS[-1] - COUNTS[0]
    out["per_stage_us"] = {k: (last[k]["wall_s"] - first[k]["wall_s"]) / span * 1e6 for k in ("table", "json")}
    if large:
        folder = tempfile.mkdtemp(prefix="numtrace-scale-", dir="/tmp")
        try:
            generate(folder, "large", 2)
            a, b = f"{folder}/a.safetensors", f"{folder}/b.safetensors"
            cases = {
                "1 x 1 GiB": [trace, "diff", "--json", "--only", "block0.out", a, b],
                "2 x 1 GiB": [trace, "diff", "--json", a, b],
                "2 x 1 GiB, --jobs 1": [trace, "diff", "--json", "--jobs", "1", a, b],
            }
            out["large"] = measure(cases, repeat)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return out


def report(r: dict) -> str:
    lines = ["many small stages (16 float32 each, rounding noise, every stage MATCH); medians"]
    lines.append(f"{'stages':>8}{'table s':>10}{'RSS MiB':>9}{'--json s':>10}{'RSS MiB':>9}")
    for n, c in r["small"].items():
        t, j = c["table"], c["json"]
        lines.append(f"{int(n):>8}{t['wall_s']:>10.2f}{t['rss_mib']:>9.0f}{j['wall_s']:>10.2f}{j['rss_mib']:>9.0f}")
    per = r["per_stage_us"]
    lines.append(f"cost per stage (1,000 to 20,000): table {per['table']:.0f} us, --json {per['json']:.0f} us")
    if r.get("phases"):
        n = COUNTS[-1]
        lines.append(f"where the time of {n:,} stages goes, phase by phase in one process")
        for phase, seconds in r["phases"].items():
            lines.append(f"  {phase:<46}{seconds:>6.2f} s  {seconds / n * 1e6:>5.0f} us/stage")
    if r["large"]:
        lines.append("large stages (2^28 float32 = 1 GiB each, one ulp of noise); trace diff --json; medians")
        lines.append(f"{'case':<22}{'wall s':>8}{'GiB/s':>8}{'RSS MiB':>9}")
        for label, c in r["large"].items():
            gib = 1 if label.startswith("1 ") else 2
            lines.append(f"{label:<22}{c['wall_s']:>8.2f}{gib / c['wall_s']:>8.2f}{c['rss_mib']:>9.0f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    r = run(args.repeat, not args.skip_large)
    print(json.dumps(r) if args.json else report(r))


if __name__ == "__main__":
    main()
