"""numtrace.testing.strategies and .planted: the data is what the parameters say it is."""

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from numtrace import dtypes
from numtrace.testing import assert_port_agrees, run_traced
from numtrace.testing import strategies as nst
from numtrace.testing.planted import KINDS, max_abs_error, peak, plant, plant_padding, plant_permutation, plant_shift

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(nst.arrays(("float32", "float16"), magnitudes=[1e3], min_dims=2, max_dims=2, max_side=4))
def test_arrays_honour_dtype_shape_and_magnitude(a):
    assert a.dtype.name in ("float32", "float16") and a.ndim == 2 and max(a.shape) <= 4
    assert np.isfinite(a).all() and np.abs(a).max() <= 1e3


def test_arrays_can_hold_non_finite_values():
    a = find(nst.arrays(finite=False), lambda a: np.isnan(a).any() and np.isinf(a).any())
    assert a.dtype.name in ("float64", "float32")


def test_arrays_refuse_dtypes_they_cannot_draw():
    with pytest.raises(ValueError, match="plant a rounding for bfloat16"):
        find(nst.arrays("int32"), lambda a: True)


STRATEGIES = {
    "offset": nst.offsets(),
    "scale": nst.scales(),
    "shift": nst.shifts(),
    "padding": nst.paddings(),
    "band": nst.bands(),
    "permutation": nst.permutations(),
    "rounding": nst.roundings(),
}


@pytest.mark.parametrize("kind", KINDS)
def test_planting_again_from_the_parameters_gives_the_same_candidate(kind):
    @SETTINGS
    @given(STRATEGIES[kind])
    def check(p):
        assert p.kind == kind and p.finding["kind"] == {
            "band": "localized",
            "permutation": "layout",
            "rounding": "precision",
        }.get(kind, kind)
        if kind != "rounding":  # the default min_error: 1% of the reference's peak
            assert max_abs_error(p) >= 0.01 * peak(p.reference) and max_abs_error(p) > 0
        if kind == "band":
            return  # a band's delta is not a field of its finding: see test_a_band_differs_only_inside_its_region
        again = plant(kind, p.reference, **p.params)
        np.testing.assert_array_equal(again.reference, p.reference)
        np.testing.assert_array_equal(again.candidate, p.candidate)
        assert again.candidate_dtype == p.candidate_dtype

    check()


@SETTINGS
@given(nst.bands())
def test_a_band_differs_only_inside_its_region(p):
    axis, start, stop = p.params["axis"], p.params["start"], p.params["stop"]
    inside = np.zeros(p.reference.shape, bool)
    index = [slice(None)] * p.reference.ndim
    index[axis] = slice(start, stop)
    inside[tuple(index)] = True
    assert np.array_equal(p.candidate[~inside], p.reference[~inside])
    assert 0 < stop - start < p.reference.shape[axis]


@SETTINGS
@given(nst.roundings())
def test_roundings_hold_values_of_their_dtype(p):
    dtype = p.params["dtype"]
    assert p.candidate_dtype == dtype
    if dtype == "bfloat16":
        assert p.candidate.dtype == np.float32
        np.testing.assert_array_equal(dtypes.decode(dtypes.encode(p.candidate, dtype), dtype), p.candidate)
    else:
        assert p.candidate.dtype.name == dtype
    ref, cand = p.traces("h")
    assert cand.info("h").dtype == dtype and ref.info("h").dtype == p.reference.dtype.name


@SETTINGS
@given(nst.trace_pairs())
def test_trace_pairs_differ_only_at_the_planted_stage(t):
    assert t.stage in t.reference.order and t.reference.order == t.candidate.order
    for name in t.reference.order:
        if name != t.stage:
            np.testing.assert_array_equal(t.reference.read(name), t.candidate.read(name))
    assert t.candidate.info(t.stage).dtype == t.planted.candidate_dtype
    assert t.finding == t.planted.finding


def test_trace_pairs_take_stage_names():
    t = find(nst.trace_pairs(kinds=["offset"], names=["enc", "mel", "db"]), lambda t: t.stage == "mel")
    assert t.reference.order == ["enc", "mel", "db"]


def test_unknown_kinds_are_refused():
    with pytest.raises(ValueError, match="kinds must be among"):
        nst.planted(["offset", "wobble"])


def test_planting_conventions():
    a = np.arange(5.0)
    assert plant_shift(a, 0, 2).candidate.tolist() == [3.0, 4.0, 0.0, 1.0, 2.0]  # b[i] = a[i - lag]
    p = plant_padding(np.full((2, 4), -5.0), axis=1, start=2, stop=4, value=0.0, value_a=-77.0)
    assert p.reference[:, 2:].tolist() == [[-77.0, -77.0]] * 2 and p.candidate[:, 2:].tolist() == [[0.0, 0.0]] * 2
    assert p.finding == {"kind": "padding", "axis": 1, "start": 2, "stop": 4, "value": 0.0, "value_a": -77.0}
    assert plant_permutation(np.zeros((2, 3, 4)), (0, 2, 1)).candidate.shape == (2, 4, 3)
    with pytest.raises(ValueError, match="cannot round to"):
        plant("rounding", a, dtype="int8")
    assert repr(plant("offset", a, value=1.5)) == (
        "Planted(offset: value=1.5; shape (5,), float64 -> float64; reference [0.0, 1.0, 2.0, 3.0, 4.0])"
    )
    assert (
        repr(plant("scale", np.ones((4, 4)), factor=2.0))
        == "Planted(scale: factor=2.0; shape (4, 4), float64 -> float64)"
    )


def test_run_traced_records_the_call_and_its_output():
    import numtrace

    result, trace = run_traced(lambda x: numtrace.tap("double", 2 * x) + 1, np.ones(2))
    assert trace.order == ["double", "output"] and result.tolist() == [3.0, 3.0]
    assert run_traced(lambda: None)[1].order == []
    assert run_traced(lambda: np.ones(1), output=None)[1].order == []


def test_assert_port_agrees_passes_and_shrinks_to_the_smallest_failing_input():
    def reference(n):
        return np.arange(n, dtype=np.float64) / 3

    def float32_port(n):
        return np.arange(n, dtype=np.float32) / 3

    def short_port(n):  # one element short from n = 7 on
        return float32_port(n)[: n - (n > 6)]

    quick = settings(max_examples=30, deadline=None, database=None)
    assert_port_agrees(reference, float32_port, st.integers(1, 40), settings=quick)
    with pytest.raises(AssertionError) as info:
        assert_port_agrees(reference, short_port, st.integers(1, 40), settings=quick)
    assert str(info.value).startswith("Traces differ: 1 / 1 stages (100%) fail")
    assert "First divergence: output (SMALL)" in str(info.value)
    assert any("x=7" in note for note in getattr(info.value, "__notes__", []))
