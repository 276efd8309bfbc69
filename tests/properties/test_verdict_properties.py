import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numtrace.compare import Tolerance, ToleranceTable, Verdict, diff
from numtrace.compare.statistics.stats import compare_stage
from numtrace.compare.verdict import default_tolerance
from numtrace.trace import MemoryTrace

SETTINGS = settings(max_examples=60, deadline=None)
F32_MAX = float(np.finfo(np.float32).max)

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6)
finite64 = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
any64 = st.floats(allow_nan=True, allow_infinity=True, width=64)
arrays = hnp.arrays(np.float64, shapes, elements=finite64)
wild_arrays = hnp.arrays(np.float64, shapes, elements=any64)
chunks = st.sampled_from([1, 3, 7, 1 << 20])


def one(a, b, tol=None, chunk=1 << 20):
    table = None if tol is None else ToleranceTable(default=tol)
    return diff(MemoryTrace({"x": a}), MemoryTrace({"x": b}), tolerances=table, chunk_elements=chunk).stages[0]


@SETTINGS
@given(st.lists(wild_arrays, min_size=1, max_size=4), chunks)
def test_a_trace_diffed_with_itself_is_all_match(stages, chunk):
    t = MemoryTrace({f"s.{i}": x for i, x in enumerate(stages)})
    report = diff(t, t, chunk_elements=chunk)
    assert {s.verdict for s in report.stages} == {Verdict.MATCH}
    assert report.first_divergence is None and not report.failed("small")


@SETTINGS
@given(st.data(), shapes, st.floats(1e-9, 10.0), chunks)
def test_absolute_tolerance_verdict_and_symmetric_metrics_are_symmetric(data, shape, atol, chunk):
    a = data.draw(hnp.arrays(np.float64, shape, elements=finite64))
    b = data.draw(hnp.arrays(np.float64, shape, elements=finite64))
    tol = Tolerance(0.0, atol)
    ab, ba = one(a, b, tol, chunk), one(b, a, tol, chunk)
    assert ab.verdict == ba.verdict
    assert ab.diff.mismatched == ba.diff.mismatched
    assert ab.diff.abs_max == ba.diff.abs_max
    assert ab.diff.max_ratio == ba.diff.max_ratio
    for key in ("abs_mean", "rms"):
        assert math.isclose(getattr(ab.diff, key), getattr(ba.diff, key), rel_tol=1e-12, abs_tol=1e-300)
    if ab.diff.cosine is None:
        assert ba.diff.cosine is None or np.all(a == 0) or np.all(b == 0)
    else:
        assert math.isclose(ab.diff.cosine, ba.diff.cosine, rel_tol=1e-12, abs_tol=1e-12)


@SETTINGS
@given(hnp.arrays(np.float64, shapes, elements=st.floats(-F32_MAX, F32_MAX)), chunks)
def test_float64_against_its_float32_rounding_matches_under_default_tolerances(a, chunk):
    b = a.astype(np.float32)
    stage = one(a, b, chunk=chunk)
    assert stage.verdict is Verdict.MATCH, (stage.diff, stage.note)


@SETTINGS
@given(st.data(), shapes, st.lists(st.floats(0.0, 1e3), min_size=2, max_size=6))
def test_growing_noise_never_improves_the_verdict(data, shape, scales):
    a = data.draw(hnp.arrays(np.float64, shape, elements=finite64))
    noise = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-1.0, 1.0)))
    previous_severity, previous_ratio = -1, -1.0
    for scale in sorted(scales):
        stage = one(a, a + scale * noise)
        assert stage.verdict in (Verdict.MATCH, Verdict.SMALL, Verdict.LARGE)
        assert stage.verdict.severity >= previous_severity
        assert stage.diff.max_ratio >= previous_ratio
        previous_severity, previous_ratio = stage.verdict.severity, stage.diff.max_ratio


@SETTINGS
@given(st.data(), arrays, st.floats(10.01, 1e3), st.booleans(), chunks)
def test_a_planted_error_beyond_ten_tolerances_is_large(data, a, factor, down, chunk):
    index = data.draw(st.integers(0, a.size - 1))
    tol = default_tolerance("float64", "float64")
    peak = float(np.abs(a).max())
    atol = tol.resolve_atol(peak, "float64", "float64")
    b = a.copy().reshape(-1)
    element_tol = tol.rtol * abs(b[index]) + atol
    b[index] += (-1 if down else 1) * factor * element_tol
    stage = one(a, b.reshape(a.shape), chunk=chunk)
    assert stage.verdict is not Verdict.MATCH
    assert stage.verdict is Verdict.LARGE
    assert stage.diff.mismatched == 1
    assert stage.diff.worst_index == tuple(int(i) for i in np.unravel_index(index, a.shape))


@SETTINGS
@given(st.lists(st.tuples(arrays, st.sampled_from([0.0, 1e-12, 1e-6, 1e-3, 1.0])), min_size=1, max_size=6))
def test_first_divergence_is_the_first_non_match_stage(stages):
    names = [f"stage.{i}" for i in range(len(stages))]
    a = MemoryTrace({n: x for n, (x, _) in zip(names, stages)})
    b = MemoryTrace({n: x + e for n, (x, e) in zip(names, stages)})
    report = diff(a, b)
    non_match = [s.name for s in report.stages if s.verdict is not Verdict.MATCH]
    assert report.first_divergence == (non_match[0] if non_match else None)
    assert report.to_dict()["first_divergence"] == report.first_divergence


@SETTINGS
@given(wild_arrays, st.data(), st.sampled_from([1, 2, 5]))
def test_chunking_never_changes_verdicts_counts_or_worst_element(a, data, chunk):
    b = data.draw(hnp.arrays(np.float64, a.shape, elements=any64))
    tol = Tolerance(1e-3)
    ta, tb = MemoryTrace({"x": a}), MemoryTrace({"x": b})
    whole = compare_stage(ta, "x", tb, "x", tol)
    part = compare_stage(ta, "x", tb, "x", tol, chunk_elements=chunk)
    for key in ("mismatched", "total", "max_ratio", "worst_index", "abs_max", "nonfinite_a", "nonfinite_b", "atol"):
        assert getattr(part[2], key) == getattr(whole[2], key), key
    assert (part[0].nan, part[0].min, part[0].max) == (whole[0].nan, whole[0].min, whole[0].max)
