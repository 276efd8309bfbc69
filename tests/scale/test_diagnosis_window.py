"""Diagnosis of large stages stays bounded in memory, and the sampling rule holds for any shape.

A large stage is diagnosed from a window of at most ``diagnose_max_elements``
elements and exact whole-stage sums (compare/sample.py, compare/sums.py). The
properties plant an error in random data of random shape and recover it from a
window much smaller than the stage (the threshold is lowered, not the data made huge).
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numtrace.compare import diff
from numtrace.compare.diagnosis import sums
from numtrace.compare.diagnosis.diagnose import diagnose
from numtrace.compare.diagnosis.sample import choose_box
from numtrace.testing.planted import find_finding as find
from numtrace.trace import MemoryTrace

SETTINGS = settings(max_examples=40, deadline=None)
shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=2, max_side=12)
seeds = st.integers(0, 2**32 - 1)


def sampled(a, b, budget, dtype="float64"):
    report = diff(MemoryTrace({"x": (a, dtype)}), MemoryTrace({"x": (b, dtype)}), diagnose_max_elements=budget)
    return report.stages[0]


# --- memory ---------------------------------------------------------------------------------------


def _peak(a, b, budget):
    ta, tb = MemoryTrace({"x": a}), MemoryTrace({"x": b})
    tracemalloc.start()
    try:
        stage = diff(ta, tb, diagnose_max_elements=budget).stages[0]
        return tracemalloc.get_traced_memory()[1], stage
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("slices", [1, 4])
def test_diagnosis_memory_is_bounded_by_the_window_not_the_stage(slices):
    """16 MiB per side at 4 slices: the diagnosis holds a few MiB, whatever the stage size
    (read whole, the same stage took ~25x its size in float64 temporaries)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((slices, 1024, 1024), dtype=np.float32)
    b = a.copy()
    b[-1, 300:310] += np.float32(0.01)
    b[0, 600:700] *= np.float32(1.1)
    peak, stage = _peak(a, b, 1 << 16)
    assert peak < 16 * 2**20, peak / 2**20
    assert stage.verdict.value == "LARGE" and "diagnosed from a sample" in stage.note
    assert find(stage.diagnosis, "localized", axis=1, start=600, stop=700).get("source") is None  # exact


def test_the_default_window_keeps_diagnosis_well_under_its_old_cost():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 1024, 1024), dtype=np.float32)
    peak, stage = _peak(a, a + np.float32(0.25), 1 << 20)
    assert peak < 160 * 2**20, peak / 2**20  # 20 float64 copies of the 1 Mi window, at most
    assert stage.diagnosis[0]["kind"] == "offset" and stage.diagnosis[0]["value"] == pytest.approx(0.25, rel=1e-6)


# --- the rule -------------------------------------------------------------------------------------


@SETTINGS
@given(shapes, st.data())
def test_the_window_fits_the_budget_holds_the_worst_element_and_keeps_trailing_axes(shape, data):
    size = math.prod(shape)
    budget = data.draw(st.integers(1, size))
    worst = tuple(data.draw(st.integers(0, n - 1)) for n in shape)
    box = choose_box(shape, worst, budget)
    lengths = [hi - lo for lo, hi in box]
    assert math.prod(lengths) <= budget
    assert all(0 <= lo < hi <= n for (lo, hi), n in zip(box, shape))
    assert all(lo <= w < hi for (lo, hi), w in zip(box, worst))

    def rule(c):  # leading axes at the worst element's index, axis c cut, later ones whole but a square partner
        later = [i for i in range(c + 1, len(shape)) if lengths[i] < shape[i]]
        return (
            all(lengths[i] == 1 for i in range(c))
            and len(later) <= 1
            and all(shape[i] == shape[c] and lengths[i] == lengths[c] for i in later)
        )

    assert lengths == list(shape) or any(rule(c) for c in range(len(shape)))


@SETTINGS
@given(shapes, seeds, st.data())
def test_scan_and_gather_give_the_window_and_the_whole_stages_sums(shape, seed, data):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    budget = data.draw(st.integers(1, math.prod(shape)))
    box = choose_box(shape, tuple(data.draw(st.integers(0, n - 1)) for n in shape), budget)
    window = tuple(slice(lo, hi) for lo, hi in box)
    cut = [i for i, (lo, hi) in enumerate(box) if hi - lo < shape[i]]
    chunk = data.draw(st.sampled_from([1, 5, sums.CHUNK]))
    original = sums.CHUNK
    sums.CHUNK = chunk  # many small chunks, and slabs longer than a chunk
    try:
        wa, wb, s = sums.scan(MemoryTrace({"x": a}), "x", MemoryTrace({"x": b}), "x", shape, box, 1.0, axes=cut)
        g = sums.gather(MemoryTrace({"x": a}), "x", shape, box)
    finally:
        sums.CHUNK = original
    np.testing.assert_array_equal(wa, a[window])
    np.testing.assert_array_equal(wb, b[window])
    np.testing.assert_array_equal(g, a[window])
    e = b - a
    assert s.total["ee"] == pytest.approx(float((e * e).sum()), rel=1e-9)
    assert s.total["ae"] == pytest.approx(float((a * e).sum()), rel=1e-9, abs=1e-9)
    assert s.window_ee == pytest.approx(float((e * e)[window].sum()), rel=1e-9)
    for axis in cut:
        other = tuple(k for k in range(len(shape)) if k != axis)
        np.testing.assert_allclose(s.axes[axis]["ee"], (e * e).sum(axis=other), rtol=1e-9)


@SETTINGS
@given(shapes, seeds, st.data(), st.sampled_from(["offset", "scale", "sign"]))
def test_a_planted_whole_stage_error_is_recovered_exactly_from_a_window(shape, seed, data, kind):
    a = np.random.default_rng(seed).standard_normal(shape)
    b = {"offset": a + 1.5, "scale": a * 3.0, "sign": -a}[kind]
    budget = data.draw(st.integers(1, math.prod(shape) - 1))
    found = sampled(a, b, budget).diagnosis
    whole = diagnose(a, b)
    assert found[0]["kind"] == whole[0]["kind"] == kind and "source" not in found[0]
    for key in ("value", "factor"):
        if key in whole[0]:
            assert found[0][key] == pytest.approx(whole[0][key], rel=1e-9)


@SETTINGS
@given(shapes, seeds, st.data())
def test_a_planted_band_is_recovered_with_its_stage_indices_from_a_window(shape, seed, data):
    a = np.random.default_rng(seed).standard_normal(shape)
    axis = data.draw(st.sampled_from(range(len(shape))))
    n = shape[axis]
    width = data.draw(st.integers(1, max(1, n // 2)))
    start = data.draw(st.integers(0, n - width))
    region = tuple(slice(start, start + width) if k == axis else slice(None) for k in range(a.ndim))
    b = a.copy()
    b[region] += 2.0
    budget = data.draw(st.integers(1, math.prod(shape) - 1))
    found = sampled(a, b, budget).diagnosis
    f = find(found, "localized", axis=axis, start=start, stop=start + width)
    assert f["offset"] == pytest.approx(2.0, rel=1e-9)


@settings(max_examples=15, deadline=None)
@given(st.integers(64, 400), seeds, st.sampled_from([1e-3, 1e-1]), st.integers(1000, 4000))
def test_random_noise_earns_no_finding_from_a_window_either(rows, seed, level, budget):
    """As a whole stage of noise earns nothing (tests/properties), nor does a window of 1000+ values."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((rows, 4, 20))
    b = a + level * rng.standard_normal(a.shape)
    assert sampled(a, b, budget).diagnosis == [{"kind": "unexplained", "partial": []}]
