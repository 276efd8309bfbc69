"""Property tests of the diagnosis from input and output (a replay's own error): planted linear,
activation and normalisation bugs are named exactly, with their parameters; the same module on
both sides is never diagnosed; swapping reference and candidate swaps what each is said to
compute.
"""

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from numtrace.compare.diagnosis.io_fits import EPS_GRID, FUNCTIONS, SPARE, io_findings


@st.composite
def linear(draw):
    n = draw(st.integers(2, 12))
    rows = draw(st.integers(n + 1 + SPARE, 4 * n + 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((rows, n)) * draw(st.floats(0.1, 10))
    w = rng.standard_normal((n, n))
    assume(np.linalg.norm(w - w.T) > 0.1 * np.linalg.norm(w))  # not symmetric
    bias = rng.standard_normal(n) + 0.5
    return x, w, bias, draw(st.booleans())


@settings(max_examples=40, deadline=None)
@given(linear())
def test_a_transposed_weight_is_named(case):
    x, w, bias, known = case
    weights = (w, bias) if known else (None, None)
    found = io_findings(x, x @ w.T + bias, x @ w + bias, *weights)
    assert [f.kind for f in found] == ["transposed_weight"]


@settings(max_examples=40, deadline=None)
@given(linear())
def test_a_dropped_bias_is_named(case):
    x, w, bias, known = case
    weights = (w, bias) if known else (None, None)
    found = io_findings(x, x @ w.T + bias, x @ w.T, *weights)
    assert [(f.kind, f["dropped"]) for f in found] == [("bias", True)]
    assert found[0]["max_diff"] == np.abs(bias).max() or np.isclose(found[0]["max_diff"], np.abs(bias).max())


@settings(max_examples=40, deadline=None)
@given(linear(), st.floats(0.2, 5.0))
def test_a_scaled_weight_is_named_with_its_factor(case, factor):
    assume(abs(factor - 1) > 0.01)
    x, w, bias, known = case
    weights = (w, bias) if known else (None, None)
    found = io_findings(x, x @ w.T + bias, factor * (x @ w.T) + bias, *weights)
    assert [f.kind for f in found] == ["weight_scale"]
    assert np.isclose(found[0]["factor"], factor, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(linear())
def test_the_same_module_on_both_sides_is_never_diagnosed(case):
    x, w, bias, known = case
    y = x @ w.T + bias
    assert io_findings(x, y, y.copy(), *((w, bias) if known else (None, None))) == []
    assert io_findings(x, np.tanh(x), np.tanh(x)) == []


NAMES = sorted(FUNCTIONS)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(NAMES), st.sampled_from(NAMES), st.integers(0, 2**16))
def test_another_function_is_named_and_swapping_sides_swaps_it(f, g, seed):
    assume(f != g)
    x = np.random.default_rng(seed).standard_normal((8, 64)) * 3
    found = io_findings(x, FUNCTIONS[f](x), FUNCTIONS[g](x))
    assert [(k.kind, k["reference"], k["candidate"]) for k in found] == [("function", f, g)]
    swapped = io_findings(x, FUNCTIONS[g](x), FUNCTIONS[f](x))
    assert [(k["reference"], k["candidate"]) for k in swapped] == [(g, f)]


def _layer_norm(x, eps, gain=1.0, shift=0.0):
    centred = x - x.mean(-1, keepdims=True)
    return centred / np.sqrt((centred**2).mean(-1, keepdims=True) + eps) * gain + shift


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(EPS_GRID), st.sampled_from(EPS_GRID), st.integers(0, 2**16))
def test_another_norm_eps_is_named_with_both_values(eps_a, eps_b, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 24)) * 0.05  # variance 2.5e-3: eps from 1e-4 up changes the output
    a, b = _layer_norm(x, eps_a), _layer_norm(x, eps_b)
    assume(np.abs(a - b).max() > 1e-3 * np.abs(a).max())  # eps that differ visibly in the output
    found = io_findings(x, a, b)
    assert [f.kind for f in found] == ["norm"]
    assert (found[0]["reference_eps"], found[0]["candidate_eps"]) == (eps_a, eps_b)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**16))
def test_another_gain_or_a_root_mean_square_norm_is_named(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 24)) + 0.5
    gain = rng.uniform(0.5, 2.0, 24)
    found = io_findings(x, _layer_norm(x, 1e-5, gain), _layer_norm(x, 1e-5))
    assert [f.kind for f in found] == ["norm"] and "gain_rel_diff" in found[0]
    rms = x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-5)
    found = io_findings(x, _layer_norm(x, 1e-5), rms)
    assert (found[0]["reference_kind"], found[0]["candidate_kind"]) == ("layer", "rms")
