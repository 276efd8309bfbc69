"""Every performance target, measured in one run: ``python benchmarks/run_all.py``.

Runs each benchmark of this directory in a subprocess (the same Python), prints
its own report, then one summary table: target, measured figure, floor, ratio,
met or not. The machine is described first (CPU, cores, memory, load average),
because every figure is a wall time on a possibly shared machine. Big files go
to a temporary directory under /tmp and are deleted.

Options: ``--quick`` (fewer repeats), ``--torchlens-python PY`` (a Python that
has torchlens, for benchmarks/torchlens_compare.py), ``--skip NAME`` (repeatable).

Example:
    python benchmarks/run_all.py --torchlens-python /tmp/tlvenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def machine() -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
        with open("/proc/meminfo") as f:
            mem = int(next(line.split()[1] for line in f if line.startswith("MemTotal"))) / 2**20
    except (OSError, StopIteration):
        mem = 0.0
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    import numpy

    return (
        f"{platform.system()} {platform.machine()}, {model}, {os.cpu_count()} CPUs, {mem:.0f} GiB RAM; "
        f"Python {platform.python_version()}, NumPy {numpy.__version__}; load average {load}"
    )


def bench(script: str, *args: str, python: str = sys.executable, as_json: bool = True) -> tuple[dict | str, float]:
    start = time.perf_counter()
    argv = [python, os.path.join(HERE, script), *args] + (["--json"] if as_json else [])
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{out.stdout}\n{out.stderr}")
    return (json.loads(out.stdout.strip().splitlines()[-1]) if as_json else out.stdout), time.perf_counter() - start


def show(title: str, text: str) -> None:
    print(f"\n== {title}\n{text.rstrip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--torchlens-python", metavar="PY")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="NAME",
        help="diff, startup, record, tap, capture, mlx, torchlens, align, fuzz",
    )
    args = parser.parse_args()
    sys.path.insert(0, HERE)
    import align_scale
    import diff_throughput
    import record_memory
    import startup
    import tap_noop

    repeat = "2" if args.quick else "3"
    rows = []
    print(f"machine: {machine()}")
    if "diff" not in args.skip:
        r, _ = bench("diff_throughput.py", "--repeat", repeat)
        show("diff throughput (benchmarks/diff_throughput.py)", diff_throughput.report(r))
        rows.append(
            (
                "1 diff throughput, rounding noise",
                "<= 1.5x floor",
                f"{r['rounding']['wall_s']:.2f} s",
                f"{r['floor']['wall_s']:.2f} s",
                r["rounding"]["ratio"],
                r["rounding"]["ratio"] <= 1.5,
            )
        )
        rows.append(
            (
                "1 diff throughput, 3 planted + diagnosis",
                "<= 1.5x floor",
                f"{r['planted']['wall_s']:.2f} s",
                f"{r['floor']['wall_s']:.2f} s",
                r["planted"]["ratio"],
                r["planted"]["ratio"] <= 1.5,
            )
        )
        for key, label in (("rounding", "rounding noise"), ("planted", "3 planted + diagnosis")):
            rss = r[key]["rss_mib"]
            rows.append(
                (
                    f"2 diff peak RSS, {label}",
                    "<= 400 MiB",
                    f"{rss:.0f} MiB",
                    f"{r['floor']['rss_mib']:.0f} MiB",
                    rss / 400,
                    rss <= 400,
                )
            )
    if "startup" not in args.skip:
        r, _ = bench("startup.py", "--repeat", "7" if args.quick else "15")
        show("start-up (benchmarks/startup.py)", startup.report(r))
        rows.append(
            (
                "3 start-up, trace diff of small traces",
                "<= 3x floor",
                f"{r['diff']['wall_s'] * 1e3:.0f} ms",
                f"{r['floor']['wall_s'] * 1e3:.0f} ms",
                r["diff"]["ratio"],
                r["diff"]["ratio"] <= 3 and not r["frameworks_imported"],
            )
        )
    if "tap" not in args.skip:
        r, _ = bench("tap_noop.py", "--number", "200000" if args.quick else "1000000")
        show("tap with no recording (benchmarks/tap_noop.py)", tap_noop.report(r))
        extra = max(r[k] for k in r if k.startswith("tap")) - r["bare call"]
        rows.append(
            (
                "4 tap, no recording",
                "nothing measurable",
                f"+{extra:.0f} ns/call",
                f"{r['bare call']:.0f} ns call",
                None,
                extra < 100,
            )
        )
    if "capture" not in args.skip:
        text, _ = bench("capture_overhead.py", "--repeat", "3" if args.quick else "5", as_json=False)
        show("capture overhead, torch ResNet-50 (benchmarks/capture_overhead.py)", text)
        for label in ("capture to disk", "capture in memory"):
            m = re.search(rf"^{label}\s+([\d.]+)\s+([\d.]+)", text, re.M)
            if m:
                ratio = float(m.group(2))
                rows.append(
                    (
                        f"4 capture overhead, ResNet-50, {label}",
                        "<= 1.5x bare",
                        f"{float(m.group(1)):.0f} ms",
                        "bare forward",
                        ratio,
                        ratio <= 1.5,
                    )
                )
        floors = {k: re.search(rf"^{k}\s+([\d.]+)\s+([\d.]+)", text, re.M) for k in ("write floor", "capture to disk")}
        if all(floors.values()):
            ours, least = (float(floors[k].group(1)) for k in ("capture to disk", "write floor"))
            rows.append(
                (
                    "4 ResNet-50 capture to disk vs write floor",
                    "(context)",
                    f"{ours:.0f} ms",
                    f"{least:.0f} ms ({float(floors['write floor'].group(2)):.2f}x bare)",
                    ours / least,
                    None,
                )
            )
    if "mlx" not in args.skip:
        try:
            text, _ = bench("mlx_capture_overhead.py", "--repeat", "10" if args.quick else "30", as_json=False)
            show("capture overhead, MLX transformer (benchmarks/mlx_capture_overhead.py)", text)
        except RuntimeError as err:
            show("capture overhead, MLX", f"skipped: {str(err).splitlines()[-1]}")
    if "torchlens" not in args.skip:
        if args.torchlens_python:
            text, _ = bench("torchlens_compare.py", "--repeat", "3", python=args.torchlens_python, as_json=False)
            show("numtrace vs torchlens (benchmarks/torchlens_compare.py)", text)
        else:
            show("numtrace vs torchlens", "skipped: pass --torchlens-python (see benchmarks/torchlens_compare.py)")
    if "align" not in args.skip:
        r, _ = bench("align_scale.py", "--repeat", "1" if args.quick else "3")
        show("pairing at scale (benchmarks/align_scale.py)", align_scale.report(r))
        renamed = r["renamed"]
        rows.append(
            (
                "7 pairing 20,000 renamed stages",
                f"<= {align_scale.TARGET_S:.0f} s",
                f"{renamed['align_s']:.1f} s",
                f"{r['same']['align_s']:.2f} s same names",
                None,
                renamed["align_s"] <= align_scale.TARGET_S and renamed["paired"] == r["stages"],
            )
        )
    if "record" not in args.skip:
        r, _ = bench("record_memory.py", "--repeat", repeat)
        show("recording memory (benchmarks/record_memory.py)", record_memory.report(r))
        growth = max(r[k]["growth_mib"] for k in ("full", "full_h5", "stats"))
        rows.append(
            (
                "5 recording 300 MiB, RSS growth",
                f"<= {record_memory.TARGET_GROWTH_MIB} MiB",
                f"{growth:.0f} MiB",
                "no recording",
                None,
                growth <= record_memory.TARGET_GROWTH_MIB,
            )
        )
        rows.append(
            (
                "5 stats-only recording, file size",
                "cheap",
                f"{r['stats']['file_mib'] * 1024:.0f} KiB",
                f"{r['full']['file_mib']:.0f} MiB full",
                r["stats"]["file_mib"] / r["full"]["file_mib"],
                True,
            )
        )
    if "fuzz" not in args.skip:
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/fuzz"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        line = (out.stdout.strip().splitlines() or ["?"])[-1]
        show("fuzzing (pytest tests/fuzz)", line)
        rows.append(
            (
                "6 fuzz: every reader, 7 hostile kinds",
                "exit 2, one line",
                line.strip("= "),
                "",
                None,
                out.returncode == 0 and time.perf_counter() - start < 600,
            )
        )
    print("\n== summary")
    print(f"{'target':<50}{'goal':<20}{'measured':<24}{'floor':<18}{'ratio':>7}  met")
    for name, goal, measured, floor, ratio, met in rows:
        ratio_text = f"{ratio:.2f}" if ratio is not None else ""
        verdict = "" if met is None else ("yes" if met else "NO")
        print(f"{name:<50}{goal:<20}{measured:<24}{floor:<18}{ratio_text:>7}  {verdict}")


if __name__ == "__main__":
    main()
