"""Plant each kind of error, recover it with its parameters; find nothing in rounding noise.

References are drawn as random normal data (hypothesis picks shape, dtype,
magnitude, seed and the planted parameters), so that the planted error is the
only structure in the pair: what must come back is the planted finding.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numtrace import dtypes
from numtrace.compare import Tolerance, ToleranceTable, Verdict, diff
from numtrace.compare.diagnosis.diagnose import diagnose
from numtrace.testing.planted import find_finding as find
from numtrace.trace import MemoryTrace

SETTINGS = settings(max_examples=40, deadline=None)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=9)
float_dtypes = st.sampled_from(["float64", "float32"])
magnitudes = st.sampled_from([1e-3, 1.0, 1e3])
seeds = st.integers(0, 2**32 - 1)


def reference(shape, dtype, magnitude, seed) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * magnitude).astype(dtype)


def kinds(findings):
    return [f["kind"] for f in findings]


def first(findings, kind):
    """The first finding (dtype findings aside), which must be of ``kind``."""
    fitted = [f for f in findings if f["kind"] != "dtype"]
    assert fitted and fitted[0]["kind"] == kind, findings
    return fitted[0]


@SETTINGS
@given(shapes, float_dtypes, magnitudes, seeds, st.floats(0.01, 10.0), st.sampled_from([1.0, -1.0]))
def test_offset_is_recovered(shape, dtype, magnitude, seed, relative, sign):
    a = reference(shape, dtype, magnitude, seed)
    value = float(np.asarray(sign * relative * magnitude, dtype))
    b = (a + np.asarray(value, dtype)).astype(dtype)
    f = first(diagnose(a, b, dtype, dtype), "offset")
    assert f["value"] == pytest.approx(value, rel=1e-3)
    assert f["explained"] > 0.999 and f["residual"] < 1e-3


@SETTINGS
@given(shapes, float_dtypes, magnitudes, seeds, st.one_of(st.floats(0.01, 0.9), st.floats(1.1, 100.0)))
def test_scale_is_recovered_with_its_db(shape, dtype, magnitude, seed, factor):
    a = reference(shape, dtype, magnitude, seed)
    factor = float(np.asarray(factor, dtype))
    b = (a * np.asarray(factor, dtype)).astype(dtype)
    f = first(diagnose(a, b, dtype, dtype), "scale")
    assert f["factor"] == pytest.approx(factor, rel=1e-4)
    assert f["db"] == pytest.approx(20 * math.log10(factor), abs=1e-3)


@SETTINGS
@given(shapes, float_dtypes, magnitudes, seeds)
def test_sign_flip_is_recovered(shape, dtype, magnitude, seed):
    a = reference(shape, dtype, magnitude, seed)
    first(diagnose(a, -a, dtype, dtype), "sign")


@SETTINGS
@given(shapes, float_dtypes, magnitudes, seeds, st.data())
def test_circular_shift_is_recovered_with_axis_and_lag(shape, dtype, magnitude, seed, data):
    a = reference(shape, dtype, magnitude, seed)
    axis = data.draw(st.sampled_from([k for k, n in enumerate(shape) if n >= 2]))
    n = shape[axis]
    lag = data.draw(st.integers(1, n // 2)) * data.draw(st.sampled_from([1, -1]))
    b = np.roll(a, lag, axis)
    f = first(diagnose(a, b, dtype, dtype), "shift")
    assert f["axis"] == axis
    assert (f["lag"] - lag) % n == 0  # lags n apart are the same circular shift
    assert -n / 2 < f["lag"] <= n / 2


@SETTINGS
@given(st.integers(40, 300), st.integers(1, 8), st.sampled_from([1, -1]), seeds)
@example(40, 8, -1, 26570483)  # the 8 frames shifted in hold 31% of the error: once unreported (1 run in 30)
def test_linear_frame_shift_is_recovered(frames, lag, sign, seed):
    """Frames one hop late: the candidate's frame i is the reference's i + 1 (the edge is new data)."""
    rng = np.random.default_rng(seed)
    long = rng.standard_normal((16, frames + 2 * lag)).cumsum(axis=1)
    a = long[:, lag : lag + frames]
    b = long[:, lag - sign * lag : lag - sign * lag + frames]  # b[i] = a[i - sign * lag]
    f = first(diagnose(a, b), "shift")
    assert (f["axis"], f["lag"]) == (1, sign * lag)


@SETTINGS
@given(shapes, float_dtypes, magnitudes, seeds, st.data())
def test_padding_is_recovered_with_region_and_values(shape, dtype, magnitude, seed, data):
    a = reference(shape, dtype, magnitude, seed)
    axis = data.draw(st.sampled_from(range(len(shape))))
    n = shape[axis]
    width = data.draw(st.integers(1, n - 1))
    start, stop = (n - width, n) if data.draw(st.booleans()) else (0, width)
    value = float(np.asarray(data.draw(st.sampled_from([0.0, 3.0 * magnitude, -2.5 * magnitude])), dtype))
    region = tuple(slice(start, stop) if k == axis else slice(None) for k in range(a.ndim))
    value_a = None
    if data.draw(st.booleans()):  # the reference pads too, with silence
        value_a = float(a.min())
        a[region] = value_a
    b = a.copy()
    b[region] = value
    findings = diagnose(a, b, dtype, dtype)
    f = find(findings, "padding", axis=axis, start=start, stop=stop)
    assert f["value"] == value
    if value_a is not None:
        assert f["value_a"] == value_a
    if a[region].size > 1:
        assert findings[0]["kind"] == "padding"


@SETTINGS
@given(shapes, float_dtypes, magnitudes, seeds, st.data())
def test_band_is_recovered_as_localized(shape, dtype, magnitude, seed, data):
    a = reference(shape, dtype, magnitude, seed)
    axis = data.draw(st.sampled_from(range(len(shape))))
    n = shape[axis]
    width = data.draw(st.integers(1, max(1, n // 2)))
    start = data.draw(st.integers(0, n - width))
    delta = float(np.asarray(data.draw(st.sampled_from([0.5, -2.0, 7.0])) * magnitude, dtype))
    region = tuple(slice(start, start + width) if k == axis else slice(None) for k in range(a.ndim))
    b = a.copy()
    b[region] = (a[region] + np.asarray(delta, dtype)).astype(dtype)
    assume(width < n)
    findings = diagnose(a, b, dtype, dtype)
    f = find(findings, "localized", axis=axis, start=start, stop=start + width)
    assert f["offset"] == pytest.approx(delta, rel=1e-3)
    assert findings[0]["kind"] == "localized"


@SETTINGS
@given(hnp.array_shapes(min_dims=2, max_dims=4, min_side=2, max_side=6), float_dtypes, seeds, st.data())
def test_layout_is_recovered_and_a_pure_layout_change_matches(shape, dtype, seed, data):
    a = reference(shape, dtype, 1.0, seed)
    perm = data.draw(st.permutations(range(len(shape))))
    assume(list(perm) != list(range(len(shape))))
    b = np.ascontiguousarray(np.transpose(a, perm))
    stage = diff(MemoryTrace({"x": a}), MemoryTrace({"x": b})).stages[0]
    f = find(stage.diagnosis, "layout")
    assert np.array_equal(np.transpose(a, f["perm"]), b)  # the same layout (equal axes may swap)
    if b.shape != a.shape:
        assert stage.verdict is Verdict.MATCH  # a layout change alone is not a bug
    else:
        assert stage.verdict is Verdict.LARGE and stage.diagnosis[0]["kind"] == "layout"


@SETTINGS
@given(shapes, float_dtypes, seeds, st.data())
def test_one_longer_axis_compares_the_overlap(shape, dtype, seed, data):
    a = reference(shape, dtype, 1.0, seed)
    axis = data.draw(st.sampled_from(range(len(shape))))
    cut = data.draw(st.integers(1, shape[axis] - 1))
    at_start = data.draw(st.booleans())
    keep = slice(cut, None) if at_start else slice(None, shape[axis] - cut)
    b = a[tuple(keep if k == axis else slice(None) for k in range(a.ndim))]
    stage = diff(MemoryTrace({"x": a}), MemoryTrace({"x": b})).stages[0]
    f = find(stage.diagnosis, "shape", axis=axis, a_len=shape[axis], b_len=shape[axis] - cut)
    assert stage.verdict is Verdict.SMALL  # the overlap matches; a length mismatch is never MATCH
    if cut <= 16:
        assert (f["a_start"], f["b_start"]) == ((cut, 0) if at_start else (0, 0))


@SETTINGS
@given(shapes, float_dtypes, seeds, st.integers(1, 5), st.sampled_from(["a", "b"]))
def test_nonfinite_counts_per_side(shape, dtype, seed, count, side):
    a = reference(shape, dtype, 1.0, seed)
    b = a.copy()
    target = a if side == "a" else b
    flat = np.random.default_rng(seed).choice(a.size, min(count, a.size), replace=False)
    target.reshape(-1)[flat] = np.nan
    f = first(diagnose(a, b, dtype, dtype), "nonfinite")
    assert (f["side"], f["count"]) == (side, flat.size)


@SETTINGS
@given(shapes, magnitudes, seeds, st.sampled_from(["float32", "float16", "bfloat16"]))
def test_rounding_under_a_tight_tolerance_is_precision_and_nothing_else(shape, magnitude, seed, dtype):
    a = reference(shape, "float64", magnitude, seed)
    b = dtypes.decode(dtypes.encode(a, dtype), dtype).reshape(shape) if dtype == "bfloat16" else a.astype(dtype)
    assume(not np.array_equal(a, b))
    strict = ToleranceTable(default=Tolerance(0.0, 0.0))
    stage = diff(MemoryTrace({"x": a}), MemoryTrace({"x": (b, dtype)}), tolerances=strict).stages[0]
    assert stage.verdict is not Verdict.MATCH
    assert kinds(stage.diagnosis) == ["precision", "dtype"]
    assert stage.diagnosis[0]["dtype"] == dtype


@SETTINGS
@given(shapes, float_dtypes, magnitudes, seeds, st.integers(0, 3))
def test_float32_rounding_noise_finds_nothing(shape, dtype, magnitude, seed, ulps):
    """Rounding noise, whatever its shape: no structured finding fires (precision at most)."""
    a = reference(shape, "float64", magnitude, seed)
    b = a.astype(np.float32)
    if ulps:  # a few more ulps of noise, as two float32 computations of one value differ
        steps = np.random.default_rng(seed + 1).integers(-ulps, ulps + 1, a.shape)
        b = (b + steps * np.spacing(b)).astype(np.float32)
    assert set(kinds(diagnose(a, b, "float64", "float32"))) <= {"precision", "dtype"}
    both = b.astype(np.float32)
    assert set(kinds(diagnose(a.astype(np.float32), both, "float32", "float32"))) <= {"precision"}


@settings(max_examples=20, deadline=None)
@given(st.integers(50, 1000), seeds, st.sampled_from([1e-3, 1e-1]))
def test_random_noise_well_above_rounding_earns_no_structured_finding(rows, seed, level):
    """Large i.i.d. noise (another resampler, say) has no structure: no fit may claim it, and the
    diagnosis says that no simple transform explains it."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((rows, 20))
    b = a + level * rng.standard_normal((rows, 20))
    assert diagnose(a, b) == [{"kind": "unexplained", "partial": []}]


@SETTINGS
@given(
    st.integers(1, 5), st.data(), float_dtypes, st.sampled_from(["offset", "scale", "sign", "padding", "band", "shift"])
)
def test_the_planted_stage_is_first_divergence_and_root_cause(count, data, dtype, kind):
    where = data.draw(st.integers(0, count - 1))
    stages_a, stages_b = {}, {}
    for i in range(count):
        a = reference((6, 7), dtype, 1.0, i)
        b = a.copy()
        if i == where:
            b = {"offset": a + 1.5, "scale": a * 3.0, "sign": -a, "shift": np.roll(a, 2, axis=1)}.get(kind, b)
            if kind == "padding":
                b[:, 5:] = 0.0
            if kind == "band":
                b[2:4] += 1.0
        stages_a[f"s.{i}"], stages_b[f"s.{i}"] = a, b.astype(dtype)
    report = diff(MemoryTrace(stages_a), MemoryTrace(stages_b))
    assert report.first_divergence == report.root_cause == f"s.{where}"
    expected = {"band": "localized"}.get(kind, kind)
    assert report[f"s.{where}"].diagnosis[0]["kind"] == expected
