"""The fused fast path of compare_stage agrees with the general code, is deterministic with threads,
and streams: memory stays bounded by its blocks, whatever the stage size."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from numtrace.compare.statistics import blocks
from numtrace.compare.statistics.stats import compare_stage, summarize
from numtrace.compare.verdict import Tolerance, default_tolerance
from numtrace.trace import MemoryTrace


def _general(monkeypatch, fn, *args, **kwargs):
    """Run ``fn`` with the fast path switched off (every block through the general code)."""
    with monkeypatch.context() as m:
        m.setattr(blocks, "pair_block", lambda *a: None)
        m.setattr(blocks, "side_block", lambda *a: None)
        return fn(*args, **kwargs)


def _close(x, y, rel=1e-12) -> None:
    for key, vx in vars(x).items():
        vy = getattr(y, key)
        if isinstance(vx, float) and vy is not None and math.isfinite(vx):
            assert vx == pytest.approx(vy, rel=rel, abs=1e-300), key
        else:
            assert vx == vy or (vx != vx and vy != vy), key


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize("chunk", [1 << 20, 1000, 70_001])
def test_fast_path_agrees_with_the_general_code(monkeypatch, dtype, chunk):
    rng = np.random.default_rng(7)
    a = (rng.standard_normal((3, 50_000)) * 4 + 1).astype(np.float32 if dtype == "bfloat16" else dtype)
    b = a + (rng.standard_normal(a.shape) * 1e-3).astype(a.dtype)
    b[1, 1234] += 5
    ta, tb = MemoryTrace({"x": (a, dtype)}), MemoryTrace({"x": (b, dtype)})
    for tol in (default_tolerance(dtype, dtype), Tolerance(1e-2, 1e-3)):
        fast = compare_stage(ta, "x", tb, "x", tol, chunk_elements=chunk)
        slow = _general(monkeypatch, compare_stage, ta, "x", tb, "x", tol, chunk_elements=chunk)
        for f, s in zip(fast, slow):
            _close(f, s)
        assert fast[2].worst_index == slow[2].worst_index == (1, 1234)
        assert fast[2].mismatched == slow[2].mismatched > 0
    _close(summarize(ta, "x", chunk), _general(monkeypatch, summarize, ta, "x", chunk))


def test_boundary_ratios_match_the_general_code(monkeypatch):
    """Elements exactly at and just over the tolerance, in many blocks: same counts, same worst element."""
    a = np.tile(np.array([0.0, 2.0, 4.0, -3.0]), 70_000)
    b = a.copy()
    b[::4] += 0.5  # exactly at atol: passes
    b[5::40] = np.nextafter(b[5::40] + 0.5 + 1e-3 * 2.0, np.inf)  # just over rtol*|a| + atol
    ta, tb = MemoryTrace({"x": a}), MemoryTrace({"x": b})
    tol = Tolerance(1e-3, 0.5)
    fast = compare_stage(ta, "x", tb, "x", tol, chunk_elements=1 << 16)
    slow = _general(monkeypatch, compare_stage, ta, "x", tb, "x", tol, chunk_elements=1 << 16)
    assert fast[2].mismatched == slow[2].mismatched == 7000
    assert fast[2].max_ratio == slow[2].max_ratio > 1.0 and fast[2].worst_index == slow[2].worst_index


def test_threads_give_exactly_the_serial_results(monkeypatch):
    rng = np.random.default_rng(3)
    a = rng.standard_normal(3 * 2**20).astype(np.float32)
    b = a + rng.standard_normal(a.size).astype(np.float32) * 1e-4
    a[5] = np.nan
    ta, tb = MemoryTrace({"x": a}), MemoryTrace({"x": b})
    tol = default_tolerance("float32", "float32")
    monkeypatch.setenv("NUMTRACE_THREADS", "1")
    serial = compare_stage(ta, "x", tb, "x", tol), summarize(ta, "x")
    monkeypatch.setenv("NUMTRACE_THREADS", "3")
    threaded = compare_stage(ta, "x", tb, "x", tol), summarize(ta, "x")
    assert repr(serial) == repr(threaded)  # bit for bit (repr: NaN equals NaN)


def test_streaming_memory_is_bounded_by_blocks_not_by_the_stage():
    """A 64 MiB float32 stage on each side: the comparison allocates a few MiB, not the stage."""
    size = 16 * 2**20
    rng = np.random.default_rng(0)
    a = rng.standard_normal(size, dtype=np.float32)
    b = a.copy()
    b[::5] = np.nextafter(b[::5], np.float32(np.inf))
    ta, tb = MemoryTrace({"x": a}), MemoryTrace({"x": b})
    tracemalloc.start()
    try:
        _, _, d = compare_stage(ta, "x", tb, "x", default_tolerance("float32", "float32"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert d.mismatched == 0 and d.abs_max > 0
    assert peak < 24 * 2**20, peak  # blocks of 64 Ki float64 (a few MiB), not the 2 x 64 MiB stages
