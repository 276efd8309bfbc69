"""``trace diff --jobs``: the report is the same, byte for byte, whatever the number of threads,
on traces whose large stages hold the kinds of error the diagnosis names (and small ones between
them), through the Python API and the command line."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import numtrace
from numtrace.compare.parallel import PARALLEL_MIN_ELEMENTS, in_order
from report_schema import check_cli_output

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel")
    rng = np.random.default_rng(0)
    reference, candidate, order = {}, {}, []
    n = PARALLEL_MIN_ELEMENTS
    for i in range(24):
        large = i % 3 != 2
        a = rng.standard_normal((4, n // 4 + i) if large else (8, 3)).astype(np.float32)
        b = a + np.float32(1e-7) * rng.standard_normal(a.shape).astype(np.float32)
        if i == 4:
            b = a + 0.5  # an offset
        if i == 7:
            b = a * 1.1  # a scale
        if i == 10:
            b = a.copy()
            b[1, 100:140] = np.nan  # non-finite values
        if i == 13:
            b = np.concatenate([a[:, 1:], a[:, :1]], axis=1)  # a shift
        if i == 16:
            b = a[:, :-3]  # frames cropped: shapes differ
        name = f"model.block{i}.out"
        reference[name], candidate[name] = a, b
        order.append(name)
    reference["only.reference"] = rng.standard_normal(n).astype(np.float32)
    paths = root / "a.safetensors", root / "b.safetensors"
    numtrace.save(paths[0], reference, order=order + ["only.reference"])
    numtrace.save(paths[1], candidate, order=order)
    return paths


def test_the_report_is_the_same_whatever_the_threads(traces):
    reports = [json.dumps(numtrace.diff(*traces, jobs=jobs).to_dict()) for jobs in (1, 2, 3, 8)]
    assert reports[0] == reports[1] == reports[2] == reports[3]
    data = json.loads(reports[0])
    kinds = {s["name"]: s["diagnosis"][0]["kind"] for s in data["stages"] if s["diagnosis"]}
    assert kinds["model.block4.out"] == "offset" and kinds["model.block7.out"] == "scale"
    assert data["first_divergence"] == "model.block4.out" and data["summary"]["MISSING"] == 1


def test_threads_only_stream_statistics_the_diagnoses_stay_on_the_callers_thread(traces, monkeypatch):
    """A divergent stage's diagnosis holds its stage whole (~100 MiB of temporaries for a large
    one): on worker threads, peak memory would grow with --jobs. They run where the report is built."""
    import threading

    from numtrace.compare import engine

    threads = []
    real = engine.diagnose

    def diagnose(*args, **kwargs):
        threads.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "diagnose", diagnose)
    with_threads = numtrace.diff(*traces, jobs=4).to_dict()
    assert len(threads) >= 4 and all(threads)  # offset, scale, NaN, shift (the cropped stage: laid out)
    threads.clear()
    assert with_threads == numtrace.diff(*traces, jobs=1).to_dict() and all(threads)


def test_the_command_line_prints_the_same_json_with_any_jobs(traces):
    def run(*args):
        done = subprocess.run(
            [sys.executable, "-c", "from numtrace.cli import main; main()", "diff", *map(str, traces), "--json", *args],
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(SRC), "PATH": ""},
        )
        assert done.returncode == 1, done.stderr
        check_cli_output(["diff", *traces, "--json", *args], done.stdout, done.returncode)
        return done.stdout

    assert run("--jobs", "1") == run("--jobs", "2") == run()


def test_results_come_back_in_order_and_errors_surface():
    assert [r for _, r in in_order(range(50), lambda x: x * 2, lambda x: x % 5 != 0, jobs=3)] == list(range(0, 100, 2))

    def fails(x):
        if x == 7:
            raise ValueError("stage 7 cannot be read")
        return x

    with pytest.raises(ValueError, match="stage 7"):
        list(in_order(range(20), fails, lambda x: True, jobs=2))
