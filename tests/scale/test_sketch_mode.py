"""Stats-only recording (``Recording(stats=True)``, ``trace run --stats``) and the diff by sketch."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scaling import trace_run  # noqa: F401 - a fixture

import numtrace
from numtrace.compare import diff
from numtrace.compare.sketches.diff import compare_sketches
from numtrace.compare.sketches.format import SKETCH_KEY, STAGE_PREFIX, channel_axis, make_sketch
from numtrace.compare.statistics.stats import compare_stage
from numtrace.compare.verdict import Tolerance, default_tolerance
from numtrace.formats import load
from numtrace.trace import MemoryTrace

ODE = """
import sys, numpy as np, numtrace
dtype = np.float64 if "--f64" in sys.argv else np.float32
x = np.random.default_rng(0).standard_normal((1, 16, 50)).astype(dtype)
with numtrace.scope("decoder"):
    numtrace.tap("in", x)
    with numtrace.scope("ode"):
        for i in range(6):
            x = x * dtype(0.9) + np.tanh(x)
            if "--bug" in sys.argv and i == 3:
                x[:, 5:7] += dtype(0.5)
            numtrace.tap("step", x)
    numtrace.tap("out", x.mean(axis=2))
"""


def sketched(stages: dict, axis=None) -> MemoryTrace:
    tensors, metadata = {}, {SKETCH_KEY: "1"}
    for name, x in stages.items():
        tensors[name], info = make_sketch(x, axis=axis)
        metadata[STAGE_PREFIX + name] = json.dumps(info)
    return MemoryTrace(tensors, metadata=metadata)


def test_a_recording_in_stats_mode_writes_a_sketch_trace(tmp_path):
    x = np.random.default_rng(1).standard_normal((2, 3, 40)).astype(np.float32)
    x[1, 2, 7] = np.nan
    path = tmp_path / "s.safetensors"
    with numtrace.record(path, stats=True):
        numtrace.tap("x", x)
        numtrace.tap("bf", numtrace.tap("ignored_value_check", 3.0))
    with load(path) as trace:
        assert trace.metadata[SKETCH_KEY] == "1" and trace.order == ["x", "ignored_value_check", "bf"]
        info = json.loads(trace.metadata[STAGE_PREFIX + "x"])
        means = trace.read("x")
    finite = x[np.isfinite(x)].astype(np.float64)
    assert info["shape"] == [2, 3, 40] and info["dtype"] == "float32" and info["axis"] == 1
    assert (info["count"], info["nan"], info["posinf"], info["neginf"]) == (240, 1, 0, 0)
    assert info["min"] == finite.min() and info["max"] == finite.max() and info["abs_max"] == np.abs(finite).max()
    assert info["mean"] == pytest.approx(finite.mean(), rel=1e-13) and info["std"] == pytest.approx(
        finite.std(), rel=1e-12
    )
    assert means.dtype == np.float64 and means.shape == (3,)
    np.testing.assert_allclose(means, np.nanmean(x.astype(np.float64), axis=(0, 2)), rtol=1e-13)
    assert info["hash"] == "blake2b:" + hashlib.blake2b(x.tobytes(), digest_size=16).hexdigest()


def test_the_hash_is_that_of_the_full_traces_bytes(tmp_path):
    x = np.linspace(-3, 3, 60, dtype=np.float32).reshape(3, 20)
    with numtrace.record(tmp_path / "full.st"):
        numtrace.tap("x", x)
    with numtrace.record(tmp_path / "sketch.st", stats=True):
        numtrace.tap("x", x)
    report = numtrace.diff(tmp_path / "sketch.st", tmp_path / "full.st")
    assert report.stages[0].verdict.value == "MATCH" and "identical bytes" in report.stages[0].note


def test_channel_axis_rule():
    assert channel_axis((4, 80, 312)) == 1 and channel_axis((4, 80, 312), -1) == 2 and channel_axis((4, 80), 0) == 0
    assert channel_axis(()) is None and channel_axis((7,)) is None and channel_axis((7,), 0) == 0
    assert channel_axis((2, 3), 2) is None and channel_axis((2, 1 << 17)) is None


def test_long_run_traced_by_sketch_then_rerun_in_full_around_the_first_divergence(tmp_path, trace_run):
    script = tmp_path / "ode.py"
    script.write_text(ODE)
    ref, cand = tmp_path / "ref.st", tmp_path / "cand.st"
    assert trace_run("run", "--stats", "-o", ref, script, "--f64").returncode == 0
    assert trace_run("run", "--stats", "-o", cand, script, "--bug").returncode == 0
    first = trace_run("diff", "--json", ref, cand)
    report = json.loads(first.stdout)
    assert first.returncode == 1 and report["first_divergence"] == "decoder.ode.step@3"
    verdicts = {s["name"]: s["verdict"] for s in report["stages"]}
    assert all(verdicts[f"decoder.ode.step@{i}"] == "MATCH" for i in (1, 2))
    stage = next(s for s in report["stages"] if s["name"] == "decoder.ode.step@3")
    assert stage["diagnosis"][0] == {"kind": "localized", "axis": 1, "start": 5, "stop": 7, "source": "sketch"}
    assert stage["diff"]["total"] == 0 and "compared by sketch" in stage["note"]
    full = tmp_path / "full.st"
    assert trace_run("run", "--only", "decoder.ode.step@[2-4]", "-o", full, script, "--bug").returncode == 0
    with load(full) as trace:
        assert trace.order == ["decoder.ode.step@2", "decoder.ode.step@3", "decoder.ode.step@4"]
    again = json.loads(trace_run("diff", "--json", ref, full).stdout)
    assert again["first_divergence"] == "decoder.ode.step@3"


def test_stats_axis_option(tmp_path, trace_run):
    script = tmp_path / "ode.py"
    script.write_text(ODE)
    out = tmp_path / "s.st"
    assert trace_run("run", "--stats", "--stats-axis", "-1", "-o", out, script).returncode == 0
    with load(out) as trace:
        assert json.loads(trace.metadata[STAGE_PREFIX + "decoder.in"])["axis"] == 2
        assert trace.info("decoder.in").shape == (50,)


def test_in_memory_stats_recording_diffs_by_sketch():
    x = np.random.default_rng(2).standard_normal((2, 8, 9))
    traces = []
    for shift in (0.0, 1.0):
        with numtrace.record(stats=True) as rec:
            numtrace.tap("x", x + shift)
        traces.append(rec.trace)
    stage = numtrace.diff(*traces).stages[0]
    assert stage.verdict.value == "LARGE" and stage.diagnosis[0]["kind"] == "offset"
    assert stage.diagnosis[0]["value"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "change, kind",
    [
        (lambda x: x * 1.5, "scale"),
        (lambda x: -x, "sign"),
        (lambda x: x + 2.0, "offset"),
    ],
)
def test_findings_from_sketches(change, kind):
    x = np.random.default_rng(3).standard_normal((3, 10, 30)) + 0.3
    stage = diff(sketched({"x": x}), sketched({"x": change(x)})).stages[0]
    assert stage.verdict.value == "LARGE" and stage.diagnosis[0]["kind"] == kind, stage.diagnosis


def test_nonfinite_missing_shape_and_dtype():
    x = np.ones((2, 4, 3), np.float32)
    y = x.copy()
    y[0, 1, 1] = np.inf
    report = diff(sketched({"x": x, "only_a": x, "s": x}), sketched({"x": y, "s": x[:, :2], "only_b": x}))
    by_name = {s.name: s for s in report.stages}
    assert (
        by_name["x"].verdict.value == "LARGE"
        and {"kind": "nonfinite", "side": "b", "count": 1} in by_name["x"].diagnosis
    )
    assert by_name["only_a"].verdict.value == "MISSING" and by_name["only_b"].verdict.value == "MISSING"
    assert by_name["s"].verdict.value == "LARGE" and "shapes differ" in by_name["s"].note
    same = diff(sketched({"x": x}), sketched({"x": x.astype(np.float64)})).stages[0]
    assert same.verdict.value == "MATCH" and same.diagnosis == [{"kind": "dtype", "a": "float32", "b": "float64"}]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    seed=st.integers(0, 2**32 - 1),
    noise=st.sampled_from([0.0, 1e-9, 1e-6, 1e-4, 1e-2, 1.0]),
    shape=st.sampled_from([(5,), (2, 3, 4), (1, 7, 11)]),
    planted=st.booleans(),
)
def test_the_sketch_ratio_never_exceeds_the_elementwise_ratio(seed, noise, shape, planted):
    """A sketch LARGE is a real LARGE; an elementwise MATCH is a sketch MATCH."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape) * rng.choice([1e-3, 1.0, 1e3])
    b = a + noise * rng.standard_normal(shape) * np.abs(a).max()
    if planted:
        b.flat[rng.integers(a.size)] += 10 * noise + 1e-3
    tol = default_tolerance("float64", "float64") if seed % 2 else Tolerance(1e-3)
    _, _, elementwise = compare_stage(MemoryTrace({"x": a}), "x", MemoryTrace({"x": b}), "x", tol)
    (ma, ia), (mb, ib) = make_sketch(a), make_sketch(b)
    verdict, d, _, _ = compare_sketches(ma, ia, mb, ib, tol)
    assert d.max_ratio <= elementwise.max_ratio * (1 + 1e-9) + 1e-12
    assert verdict.severity <= (2 if elementwise.max_ratio > 10 else 1 if elementwise.max_ratio > 1 else 0)
    if d.rms is not None and elementwise.rms is not None:
        assert d.rms <= elementwise.rms * (1 + 1e-9) + 1e-300 and d.abs_max <= elementwise.abs_max * (1 + 1e-9) + 1e-300
