"""Start-up: ``trace diff`` of two small traces against ``python -c "import numpy, safetensors"``.

Writes two 3-stage traces (a few KiB) into a temp directory, then times,
round-robin so that a busy machine slows both alike, ``--repeat`` runs of

- **floor**: ``python -c "import numpy, safetensors"`` (the least any
  NumPy + safetensors tool pays to start);
- **trace diff**: ``trace diff a.safetensors b.safetensors`` (the table; exit 1,
  one stage is LARGE), and ``trace diff --json``;

and reports medians (and minima) of wall time and CPU time (user + sys of the
child, ``os.wait4``). It also lists the modules the diff imports that the
floor does not, by import time (``python -X importtime``), and checks that no
framework (torch, mlx, fastai, matplotlib) is among them. Target: median wall
time of ``trace diff`` <= 3x the floor's.

Run:  python benchmarks/startup.py [--repeat 15]
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
TARGET = 3.0
FRAMEWORKS = ("torch", "mlx", "fastai", "matplotlib")


def child(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + sys) and exit status of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)


def import_times(argv: list[str]) -> dict[str, int]:
    """Cumulative import time (us) of each top-level package imported by ``argv`` (``-X importtime``)."""
    out = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True, text=True).stderr
    total: dict[str, int] = {}
    for line in out.splitlines():
        if not line.startswith("import time:") or "|" not in line or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        if not name.startswith(" ") and "." not in name.strip():
            total[name.strip()] = total.get(name.strip(), 0) + int(cumulative)
    return total


def run(repeat: int) -> dict:
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))
    import numtrace

    directory = tempfile.mkdtemp(prefix="numtrace-startup-")
    try:
        a, b = os.path.join(directory, "a.safetensors"), os.path.join(directory, "b.safetensors")
        x = np.linspace(-10.0, 0.0, 240, dtype=np.float32).reshape(1, 8, 30)
        numtrace.save(a, {"enc": x, "mel": x, "out": x.sum(axis=2)})
        numtrace.save(b, {"enc": x, "mel": x - np.float32(1.46), "out": x.sum(axis=2)})
        trace = shutil.which("trace", path=os.path.dirname(sys.executable)) or "trace"
        cases = {
            "floor": [sys.executable, "-c", "import numpy, safetensors"],
            "diff": [trace, "diff", a, b],
            "diff_json": [trace, "diff", "--json", a, b],
        }
        runs: dict[str, list[tuple[float, float, int]]] = {k: [] for k in cases}
        for argv in cases.values():
            child(argv)  # warm the file system cache
        for _ in range(repeat):
            for key, argv in cases.items():
                runs[key].append(child(argv))
        result = {"repeat": repeat}
        for key, rs in runs.items():
            result[key] = {
                "wall_s": statistics.median(r[0] for r in rs),
                "wall_min_s": min(r[0] for r in rs),
                "cpu_s": statistics.median(r[1] for r in rs),
                "exit": rs[-1][2],
            }
        for key in ("diff", "diff_json"):
            result[key]["ratio"] = result[key]["wall_s"] / result["floor"]["wall_s"]
            result[key]["cpu_ratio"] = result[key]["cpu_s"] / result["floor"]["cpu_s"]
        floor_imports = import_times(["-c", "import numpy, safetensors"])
        diff_imports = import_times(["-m", "numtrace.cli", "diff", a, b])
        extra = {k: v for k, v in diff_imports.items() if k not in floor_imports}
        result["extra_imports_ms"] = {
            k: round(v / 1000, 1) for k, v in sorted(extra.items(), key=lambda kv: -kv[1])[:8]
        }
        result["frameworks_imported"] = [m for m in FRAMEWORKS if m in diff_imports]
        return result
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def report(r: dict) -> str:
    lines = [
        f"medians of {r['repeat']} runs, round-robin",
        f"{'case':<40}{'wall ms':>9}{'min ms':>8}{'x floor':>9}{'CPU ms':>8}{'x floor':>9}",
    ]
    labels = {
        "floor": 'python -c "import numpy, safetensors"',
        "diff": "trace diff a b (table)",
        "diff_json": "trace diff --json a b",
    }
    for key, label in labels.items():
        c = r[key]
        ratio = f"{c['ratio']:>9.2f}" if "ratio" in c else f"{'':>9}"
        cpu_ratio = f"{c['cpu_ratio']:>9.2f}" if "cpu_ratio" in c else f"{'':>9}"
        lines.append(
            f"{label:<40}{c['wall_s'] * 1e3:>9.0f}{c['wall_min_s'] * 1e3:>8.0f}{ratio}"
            f"{c['cpu_s'] * 1e3:>8.0f}{cpu_ratio}"
        )
    lines.append(f"imports beyond the floor's (cumulative ms): {r['extra_imports_ms']}")
    lines.append(
        f"frameworks imported: {r['frameworks_imported'] or 'none'}; target: trace diff <= {TARGET}x the floor"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.repeat)
    print(json.dumps(result) if args.json else report(result))


if __name__ == "__main__":
    main()
