"""Property tests for the rules that keep verdicts honest: inherited precision, errors born under
the tolerance, and which findings may be offered as a cause."""

import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from numtrace.compare import diff
from numtrace.compare.diagnosis.ordering import CAUSE_MIN, WHERE_KINDS, as_causes, cause_share
from numtrace.compare.pairing.align import Pair
from numtrace.compare.precision import Precisions
from numtrace.compare.rootcause import BORN_HERE_RATIO
from numtrace.compare.verdict import default_tolerance
from numtrace.dtypes import eps
from numtrace.trace import MemoryTrace

SETTINGS = settings(max_examples=60, deadline=None)
FLOATS = ["float64", "float32", "float16", "bfloat16"]
seeds = st.integers(0, 2**32 - 1)


@SETTINGS
@given(st.integers(2, 8), st.data(), seeds, st.sampled_from(["float64", "float32"]))
def test_an_error_born_under_the_tolerance_is_marked_exactly_where_planted(count, data, seed, dtype):
    """Stage k carries a relative error r that every later stage inherits: k alone is marked, and
    only when r is 100x the rounding level (monotone in r), while every verdict stays MATCH."""
    k = data.draw(st.integers(0, count - 1))
    floor = eps(dtype)
    r = data.draw(st.floats(floor, 0.5 * math.sqrt(floor)))  # under the default tolerance
    assume(abs(math.log(r / (BORN_HERE_RATIO * floor))) > 0.05)  # not on the threshold itself
    rng = np.random.default_rng(seed)
    a = {f"s{i}": rng.standard_normal(64).astype(dtype) for i in range(count)}
    b = {name: (x.astype(np.float64) * (1 + r) if i >= k else x).astype(dtype) for i, (name, x) in enumerate(a.items())}
    if dtype == "float32":  # the planted error must survive the rounding of float32
        assume(r > 64 * floor)
    report = diff(MemoryTrace(a, order=list(a)), MemoryTrace(b, order=list(b)))
    assert [s.verdict.value for s in report.stages] == ["MATCH"] * count
    marked = [s.name for s in report.stages if s.born_here]
    assert marked == ([f"s{k}"] if r >= BORN_HERE_RATIO * floor else [])
    assert report.largest_jump == (marked[0] if marked else None)


@SETTINGS
@given(st.lists(st.sampled_from(FLOATS + ["int64"]), min_size=1, max_size=8), st.data())
def test_inherited_precision_is_symmetric_and_never_tightens_a_tolerance(kinds_a, data):
    kinds_b = data.draw(st.lists(st.sampled_from(FLOATS + ["int64"]), min_size=len(kinds_a), max_size=len(kinds_a)))
    names = [f"s{i}" for i in range(len(kinds_a))]
    a = MemoryTrace({n: (np.zeros(2), k) for n, k in zip(names, kinds_a)}, order=names)
    b = MemoryTrace({n: (np.zeros(2), k) for n, k in zip(names, kinds_b)}, order=names)
    ab, ba = Precisions(a, b), Precisions(b, a)
    for i, (n, ka, kb) in enumerate(zip(names, kinds_a, kinds_b)):
        x, y = ab.at(Pair(n, n)), ba.at(Pair(n, n))
        assert (x is None) == (y is None)
        if x is not None:  # the same precision whichever side is the reference (its source may differ)
            assert x.dtype == y.dtype
            assert default_tolerance(ka, kb, x.dtype).rtol > default_tolerance(ka, kb).rtol
        if (ka, kb) == ("int64", "int64"):  # integers must be equal, whatever came before
            assert x is None
            continue
        # the coarsest floating dtype at or before the stage, on either side, when coarser than its own
        upstream = [d for d in kinds_a[: i + 1] + kinds_b[: i + 1] if d != "int64"]
        coarsest = max(upstream, key=eps)
        if eps(coarsest) > max(eps(ka), eps(kb)):
            assert x is not None and x.dtype == coarsest
        else:
            assert x is None


findings = st.lists(
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["offset", "scale", "shift", "layout", "channel_offset", "padding", "localized"]),
            "explained": st.floats(0.0, 1.0),
        }
    ),
    max_size=5,
).map(lambda fs: sorted(fs, key=lambda f: -f["explained"]))


@SETTINGS
@given(findings, st.booleans())
def test_no_transform_under_the_cause_share_is_offered_as_a_cause(fitted, has_error):
    out = as_causes(fitted, has_error)
    offered = [f for f in out if f["kind"] != "unexplained"]
    assert all(f["kind"] in WHERE_KINDS or cause_share(f) >= CAUSE_MIN for f in offered)
    assert offered == [f for f in fitted if f in offered]  # order kept, nothing invented
    weak = [f for f in fitted if f not in offered]
    strong = [f for f in offered if f["kind"] not in WHERE_KINDS]
    unexplained = [f for f in out if f["kind"] == "unexplained"]
    if strong:
        assert not unexplained
    elif weak or (has_error and not offered):
        assert unexplained == [{"kind": "unexplained", "partial": weak}]
    assert all(f["kind"] not in WHERE_KINDS for f in weak)  # where the error is: never demoted


@SETTINGS
@given(seeds, st.floats(0.0, 3.0))
def test_a_scale_mixed_with_noise_is_a_cause_only_while_it_explains_most_of_the_error(seed, noise):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((40, 30))
    b = 1.5 * a + noise * 0.5 * rng.standard_normal(a.shape)
    stage = diff(MemoryTrace({"x": a}), MemoryTrace({"x": b})).stages[0]
    lead = stage.diagnosis[0]
    if lead["kind"] == "scale":
        assert lead["explained"] >= CAUSE_MIN
    else:
        assert lead["kind"] == "unexplained"
        assert all(f["explained"] < CAUSE_MIN for f in lead["partial"])
