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


def row_numbers(text: str, label: str) -> list[float] | None:
    """The numbers of the table row that starts with ``label`` in a benchmark's text report."""
    for line in text.splitlines():
        if line.startswith(label + " "):
            return [float(x) for x in re.findall(r"\d+(?:\.\d+)?", line[len(label) :])]
    return None


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
        help="diff, startup, record, tap, capture, mlx, torchlens, align, scale, fuzz",
    )
    args = parser.parse_args()
    sys.path.insert(0, HERE)
    import align_scale
    import diff_scale
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
        for key, label in (
            ("rounding", f"rounding noise, --jobs {r['jobs']}"),
            ("planted", f"3 planted + diagnosis, --jobs {r['jobs']}"),
        ):
            rows.append(
                (
                    f"1 diff throughput, {label}",
                    "<= 1.0x floor",
                    f"{r[key]['wall_s']:.2f} s",
                    f"{r['floor']['wall_s']:.2f} s",
                    r[key]["ratio"],
                    r[key]["ratio"] <= 1.0,
                )
            )
        rows.append(
            (
                "1 diff throughput, rounding noise, --jobs 1",
                "(scaling)",
                f"{r['rounding_1']['wall_s']:.2f} s",
                f"{r['floor']['wall_s']:.2f} s",
                r["rounding_1"]["ratio"],
                None,
            )
        )
        for key, label in (
            ("rounding", "rounding noise"),
            ("planted", "3 planted + diagnosis"),
            ("downstream", "24 diverging, --jobs 16"),
        ):
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
        text, _ = bench("capture_overhead.py", "--repeat", "3" if args.quick else "11", as_json=False)
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
        numbers = {k: row_numbers(text, k) for k in ("write floor", "capture to disk", "capture, writer thread")}
        floor = numbers["write floor"]
        for case in ("capture to disk", "capture, writer thread"):
            ours = numbers[case]
            if floor and ours:  # median wall ms, its ratio to bare, ..., then the fastest run (ms, ratio)
                # the goal is a ratio of medians; the fastest runs are shown beside them because writing
                # 155 MB on the benchmark VM takes either ~50 ms or ~280 ms, whatever writes it
                # (benchmarks/README.md): a median may compare which of the two states each case met
                rows.append(
                    (
                        f"4 ResNet-50 {case} vs write floor",
                        "<= 1.15x write floor",
                        f"med {ours[0]:.0f} ms (min {ours[6]:.0f})",
                        f"med {floor[0]:.0f} ms (min {floor[6]:.0f})",
                        ours[0] / floor[0],
                        ours[0] / floor[0] <= 1.15,
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
    if "scale" not in args.skip:
        r, _ = bench("diff_scale.py", "--repeat", "1" if args.quick else "3", *(["--skip-large"] if args.quick else []))
        show("diff at scale: many stages, large stages (benchmarks/diff_scale.py)", diff_scale.report(r))
        most = r["small"][str(diff_scale.COUNTS[-1])]
        for mode, label in (("table", "trace diff"), ("json", "trace diff --json")):
            rows.append(
                (
                    f"8 {label}, {diff_scale.COUNTS[-1]:,} small stages",
                    f"<= {diff_scale.TARGET_S:.0f} s",
                    f"{most[mode]['wall_s']:.2f} s",
                    f"{r['per_stage_us'][mode]:.0f} us/stage",
                    None,
                    most[mode]["wall_s"] <= diff_scale.TARGET_S,
                )
            )
        if r["large"]:
            one = r["large"]["1 x 1 GiB"]
            rows.append(
                (
                    "8 trace diff, one 1 GiB stage",
                    "(context)",
                    f"{one['wall_s']:.2f} s",
                    f"{one['rss_mib']:.0f} MiB RSS",
                    None,
                    None,
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
    print(f"{'target':<54}{'goal':<22}{'measured':<24}{'floor':<22}{'ratio':>7}  met")
    for name, goal, measured, floor, ratio, met in rows:
        ratio_text = f"{ratio:.2f}" if ratio is not None else ""
        verdict = "" if met is None else ("yes" if met else "NO")
        print(f"{name:<54}{goal:<22}{measured:<24}{floor:<22}{ratio_text:>7}  {verdict}")


if __name__ == "__main__":
    main()
