"""numtrace's verdicts and diagnosis, property-tested with its own planted-error strategies.

Each planted error comes with its parameters, so the properties say exactly
what must come out: a verdict, a first divergence, a finding with its figures.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from numtrace import compare
from numtrace.compare import Tolerance, ToleranceTable, Verdict, diff
from numtrace.testing import strategies as nst
from numtrace.testing.planted import peak

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ERRORS = ("offset", "scale", "shift", "padding", "band")  # the kinds that change values in place
# well-conditioned references for the diagnosis: 4+ elements per axis, magnitudes 1 and 1e3
DENSE = nst.arrays(min_side=4, max_side=8, magnitudes=[1.0, 1e3])
# ... whose values float32 holds as normal numbers (what underflows is not rounding)
NORMAL32 = nst.arrays("float64", min_side=4, max_side=8, magnitudes=[1.0, 1e3]).map(
    lambda a: np.where(np.abs(a) < 1e-30, 0.0, a)
)

needs_diagnosis = pytest.mark.skipif(
    not hasattr(compare, "diagnose"), reason="numtrace.compare.diagnosis.diagnose not available"
)


def stage(p, tolerance=None):
    reference, candidate = p.traces("x")
    table = None if tolerance is None else ToleranceTable(default=tolerance)
    return diff(reference, candidate, tolerances=table).stages[0]


def finding(result, kind):
    return next((f for f in result.diagnosis if f["kind"] == kind), None)


@SETTINGS
@given(nst.planted(ERRORS))
def test_a_planted_error_of_one_percent_is_large_under_default_tolerances(p):
    # float32/float64 defaults allow about 2 sqrt(eps32) = 0.07% of the peak; the strategies plant >= 1%
    assert stage(p).verdict is Verdict.LARGE


@SETTINGS
@given(nst.planted(ERRORS, min_error=0), st.floats(0.0, 0.1), st.floats(1e-9, 1.0))
def test_a_planted_error_above_the_tolerance_is_never_match(p, rtol, atol):
    a, b = p.reference.astype(np.float64), p.candidate.astype(np.float64)
    with np.errstate(all="ignore"):
        ratio = float(np.max(np.abs(b - a) / (rtol * np.abs(a) + atol)))
    verdict = stage(p, Tolerance(rtol, atol)).verdict
    if ratio > 1.0 * (1 + 1e-9):
        assert verdict is not Verdict.MATCH
    if ratio > 10.0 * (1 + 1e-9):
        assert verdict is Verdict.LARGE
    if ratio < 1.0 * (1 - 1e-9):
        assert verdict is Verdict.MATCH


@SETTINGS
@given(nst.roundings(dtypes=["float32"]))
def test_rounding_to_float32_is_match(p):
    result = stage(p)
    assert result.verdict is Verdict.MATCH
    assert finding(result, "dtype") == {"kind": "dtype", "a": "float64", "b": "float32"}


@SETTINGS
@given(nst.roundings(dtypes=["float16", "bfloat16"]))
def test_rounding_to_half_precision_is_match_under_its_own_default_tolerance(p):
    assert stage(p).verdict is Verdict.MATCH


@SETTINGS
@given(nst.permutations(nst.arrays(min_dims=2, min_side=2, max_side=6)))
def test_a_permuted_layout_is_never_a_silent_match(p):
    result = stage(p)
    assert result.verdict is not Verdict.MATCH or finding(result, "layout") is not None


@SETTINGS
@given(nst.trace_pairs(kinds=ERRORS))
def test_the_first_divergence_is_the_planted_stage(t):
    report = diff(t.reference, t.candidate)
    assert report.first_divergence == t.stage
    assert [s.name for s in report.stages if s.verdict is not Verdict.MATCH] == [t.stage]


@needs_diagnosis
@SETTINGS
@given(nst.offsets(DENSE))
def test_a_planted_offset_is_diagnosed_with_its_value(p):
    assume(peak(p.reference) > 1e-6)
    found = finding(stage(p), "offset")
    assert found is not None
    scale = max(peak(p.reference), abs(p.params["value"]))
    assert found["value"] == pytest.approx(p.params["value"], abs=1e-5 * scale)


@needs_diagnosis
@SETTINGS
@given(nst.scales(DENSE))
def test_a_planted_scale_is_diagnosed_with_its_factor(p):
    assume(peak(p.reference) > 1e-6)
    found = finding(stage(p), "scale")
    assert found is not None and found["factor"] == pytest.approx(p.params["factor"], rel=1e-4)


@needs_diagnosis
@SETTINGS
@given(nst.shifts(DENSE))
def test_a_planted_shift_is_diagnosed_with_its_axis_and_lag(p):
    assume(peak(p.reference) > 1e-6)
    found = finding(stage(p), "shift")
    axis = p.params["axis"]
    assert found is not None and found["axis"] == axis
    assert (found["lag"] - p.params["lag"]) % p.reference.shape[axis] == 0  # a circular shift: lags mod the length


@needs_diagnosis
@SETTINGS
@given(nst.planted(["padding", "band"], DENSE))
def test_a_planted_region_is_located_within_its_bounds(p):
    # a region at a border may be named padding or localized; where the reference already held the
    # pad value the error starts later, so the finding may be narrower, never wider or elsewhere
    assume(peak(p.reference) > 1e-6)
    found = [f for f in stage(p).diagnosis if f["kind"] in ("padding", "localized") and f["axis"] == p.params["axis"]]
    assert found
    assert any(p.params["start"] <= f["start"] < f["stop"] <= p.params["stop"] for f in found)


@needs_diagnosis
@SETTINGS
@given(nst.roundings(NORMAL32, dtypes=["float32", "bfloat16"]))
def test_rounding_outside_a_zero_tolerance_is_diagnosed_as_precision(p):
    assume(not np.array_equal(p.candidate, p.reference))
    result = stage(p, Tolerance(0.0, 0.0))
    assert finding(result, "precision") is not None
