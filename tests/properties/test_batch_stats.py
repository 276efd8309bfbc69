"""Small stages compared in batches give every number the one-stage path gives, bit for bit.

``compare_rows`` (many stages in one NumPy sweep) against ``compare_stage`` (one stage,
streamed), and a whole diff with batching against the same diff with it turned off: equal
results, equal JSON, whatever the values (NaN, infinities, zeros, huge or tiny magnitudes),
dtypes, shapes and tolerances.
"""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numtrace.compare import small_stages
from numtrace.compare.engine import diff
from numtrace.compare.statistics.batch import compare_rows
from numtrace.compare.statistics.stats import compare_stage
from numtrace.compare.verdict import Tolerance, ToleranceTable
from numtrace.trace import MemoryTrace

SETTINGS = settings(max_examples=80, deadline=None)

values = st.one_of(
    st.floats(-1e6, 1e6),
    st.sampled_from([0.0, -0.0, 1e-30, -1e-30, 1e30, np.nan, np.inf, -np.inf, 1e-45]),
)
float_dtypes = st.sampled_from([np.float16, np.float32, np.float64])
tolerances = st.one_of(
    st.builds(Tolerance, st.sampled_from([1e-7, 3.45e-4, 1e-2, 0.0])),
    st.builds(Tolerance, st.sampled_from([0.0, 1e-5]), st.sampled_from([0.0, 1e-6, 0.5])),
)


def nudged(rng: np.random.Generator, a: np.ndarray) -> np.ndarray:
    """``a`` with rounding-level noise on some elements and an occasional gross error."""
    b = np.array(a, np.float64)
    noise = rng.random(a.shape) < 0.3
    b[noise] *= 1.0 + rng.standard_normal(int(noise.sum())) * 1e-6
    if rng.random() < 0.3:
        b.flat[int(rng.integers(b.size))] += 1.0
    with np.errstate(over="ignore"):
        return b.astype(a.dtype)


@SETTINGS
@given(st.data(), st.integers(1, 12), st.integers(1, 40), float_dtypes, float_dtypes, tolerances)
def test_each_row_is_compare_stage_bit_for_bit(data, k, n, dtype_a, dtype_b, tolerance):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    with np.errstate(over="ignore"):  # float16: large values become infinities
        a = data.draw(hnp.arrays(np.float64, (k, n), elements=values)).astype(dtype_a)
        b = np.stack([nudged(rng, row) for row in a]).astype(dtype_b)
        if data.draw(st.booleans()):
            b = a.astype(dtype_b)  # identical values: no worst element
    names = (np.dtype(dtype_a).name, np.dtype(dtype_b).name)
    rows = compare_rows(a, b, [tolerance] * k, [(n,)] * k, [names] * k)  # each row resolves its own atol
    for row_a, row_b, got in zip(a, b, rows):
        want = compare_stage(MemoryTrace({"x": row_a}), "x", MemoryTrace({"x": row_b}), "x", tolerance)
        if got is None:  # refused: only what pair_block refuses too
            finite = np.isfinite(row_a).all() and np.isfinite(row_b).all()
            assert (
                not finite
                or want[2].atol <= 0
                or max(np.abs(row_a).max(), np.abs(row_b).max()) >= 2.0**400
                or (0 < max(np.abs(row_a).max(), np.abs(row_b).max()) < 2.0**-401)
            )
            continue
        assert repr(got) == repr(want)  # repr: -0.0 and 0.0, NaN, every field


def test_rows_refuse_what_the_block_kernel_refuses():
    a = np.array([[1.0, np.nan], [1.0, np.inf], [0.0, 1e-300], [1.0, 2.0]])
    tolerances = [Tolerance(1e-3, 1e-3)] * 3 + [Tolerance(1e-3, 0.0)]
    rows = compare_rows(a, a.copy(), tolerances, [(2,)] * 4, [("float64", "float64")] * 4)
    assert rows == [None, None, None, None]  # NaN, inf, below 2**-401, atol 0
    ints = np.ones((2, 3), np.int32)
    assert compare_rows(ints, ints, [Tolerance(0.0, 0.0)] * 2, [(3,)] * 2, [("int32", "int32")] * 2) == [None, None]


def _diff_json(reference, candidate, **options) -> str:
    return json.dumps(diff(reference, candidate, **options).to_dict(), allow_nan=False)


shapes = st.sampled_from([(), (1,), (3,), (2, 3), (4, 1, 2), (16,), (7, 5)])
stage_dtypes = st.sampled_from(["float16", "float32", "float64", "int32", "bool", "complex64"])


@st.composite
def trace_pairs(draw):
    """Two traces of small stages: mixed sizes, dtypes and shapes, NaN, zeros, a shape mismatch."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    reference, candidate = {}, {}
    for i in range(draw(st.integers(1, 25))):
        shape, dtype = draw(shapes), draw(stage_dtypes)
        a = np.asarray(rng.standard_normal(shape) * 10.0 ** float(rng.integers(-3, 4))).astype(dtype)
        if dtype.startswith("float") and rng.random() < 0.15:
            a.flat[0] = np.nan
        if rng.random() < 0.1:
            a = np.zeros_like(a)
        b = nudged(rng, a) if dtype.startswith("float") else a.copy()
        if rng.random() < 0.1 and dtype.startswith("float"):
            b = b.astype("float32" if dtype != "float32" else "float64")
        if rng.random() < 0.05 and a.ndim:
            b = np.concatenate([b, b[:1]])  # another length: the aligned path
        reference[f"stage{i}"], candidate[f"stage{i}"] = a, b
    return MemoryTrace(reference), MemoryTrace(candidate)


@SETTINGS
@given(trace_pairs(), st.sampled_from([None, "1e-6", "0"]))
def test_a_diff_with_batches_is_the_diff_without(monkeypatch_traces, tol):
    reference, candidate = monkeypatch_traces
    table = ToleranceTable.from_options([tol]) if tol else None
    batched = _diff_json(reference, candidate, tolerances=table)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(small_stages, "SMALL_MAX", 0)  # nothing is small: every stage alone
        alone = _diff_json(reference, candidate, tolerances=table)
    assert batched == alone


def test_batches_cover_many_stages_and_every_result_is_kept(tmp_path):
    """More stages than one batch holds, of a few sizes, read back from a safetensors file."""
    import numtrace

    rng = np.random.default_rng(5)
    sizes = [1, 16, 16, 300, 4096, 4097, 16]
    names = [f"layers.{i}.out" for i in range(9000)]
    ref = {name: rng.standard_normal(sizes[i % len(sizes)]).astype(np.float32) for i, name in enumerate(names)}
    cand = {name: x * np.float32(1 + 1e-7) for name, x in ref.items()}
    cand["layers.4321.out"] = cand["layers.4321.out"] + np.float32(1.0)  # one planted error
    numtrace.save(tmp_path / "a.safetensors", ref, order=names)
    numtrace.save(tmp_path / "b.safetensors", cand, order=names)
    with numtrace.load(tmp_path / "a.safetensors") as a, numtrace.load(tmp_path / "b.safetensors") as b:
        report = diff(a, b)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(small_stages, "SMALL_MAX", 0)
            alone = diff(a, b)
    assert [s.name for s in report.stages] == names
    assert report.to_dict() == alone.to_dict()
    assert report.first_divergence == "layers.4321.out" and report.counts["LARGE"] == 1
    assert math.isclose(report["layers.4321.out"].diff.abs_max, 1.0, rel_tol=1e-6)
