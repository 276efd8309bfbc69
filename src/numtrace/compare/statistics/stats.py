"""Per-side statistics and difference metrics, computed in one streaming pass.

Stages are read through :meth:`Trace.iter_chunks` only, so memory stays
bounded by the chunk size whatever the stage size. Everything is accumulated
in float64. Chunks are cut into cache-sized blocks; a block of finite real
values of moderate magnitude takes the fused fast path of
:mod:`numtrace.compare.statistics.blocks` (on worker threads for large stages if
``NUMTRACE_THREADS`` > 1), any other block the general code below; both feed the same accumulators, in
order, so results do not depend on chunking or threads beyond the rounding
of summation order. Complex stages are compared as real values: each element is its
real part followed by its imaginary part (counts, indices into values and
non-finite counts are over those parts; ``worst_index`` names the element).

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare.verdict import Tolerance
    >>> a = MemoryTrace({"x": np.array([1.0, 2.0, 4.0])})
    >>> b = MemoryTrace({"x": np.array([1.0, 2.5, 4.0])})
    >>> sa, sb, d = compare_stage(a, "x", b, "x", Tolerance(0.0, 0.1))
    >>> sa.mean, d.abs_max, d.mismatched, d.worst_index, round(d.max_ratio, 6)
    (2.3333333333333335, 0.5, 1, (1,), 5.0)
"""

from __future__ import annotations

import math
from typing import Iterable, Iterator

import numpy as np

from ...trace import Trace
from ..verdict import Tolerance
from . import blocks
from .metrics import DiffAccumulator, DiffStats, SideAccumulator, SideStats, as_values

__all__ = ["DiffStats", "SideStats", "compare_stage", "summarize"]


def summarize(trace: Trace, name: str, chunk_elements: int = 1 << 20) -> SideStats:
    """Statistics of one stage in one streaming pass.

    Example:
        >>> import numpy as np
        >>> from numtrace.trace import MemoryTrace
        >>> s = summarize(MemoryTrace({"x": np.array([1.0, np.nan, -3.0])}), "x")
        >>> s.min, s.max, s.abs_max, s.nan, s.count
        (-3.0, 1.0, 3.0, 1, 3)
    """
    info = trace.info(name)
    acc = SideAccumulator()
    parallel = info.size >= blocks.PARALLEL_MIN
    chunks = trace.iter_chunks(name, min(max(1, int(chunk_elements)), blocks.READ))
    with _quiet():
        for parts in blocks.ordered_map(_side_blocks, chunks, parallel):
            for part in parts:
                if isinstance(part, tuple):
                    acc.add_block(part)
                else:
                    acc.update(as_values(part))
    return acc.result(info.shape, info.dtype)


def _quiet():
    """No floating-point warnings: casts of signalling NaNs (garbage bytes) and overflow are expected."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")


def _cut(values: np.ndarray) -> list[np.ndarray]:
    flat = np.asarray(values).reshape(-1)
    step = blocks.BLOCK
    return [flat] if flat.size <= step else [flat[i : i + step] for i in range(0, flat.size, step)]


def _side_blocks(chunk: np.ndarray) -> list:
    """Fast-path results of a chunk's blocks; a block the fast path refuses is passed back as is."""
    with _quiet():
        return [blocks.side_block(block) or block for block in _cut(chunk)]


def _chunk_peak(chunk: np.ndarray) -> float:
    values = np.asarray(chunk).reshape(-1)
    if values.size and values.dtype.kind in "fiu":
        lo, hi = float(values.min()), float(values.max())
        if math.isfinite(lo) and math.isfinite(hi):
            return max(abs(lo), abs(hi))
    values = as_values(values)
    finite = values[np.isfinite(values)]
    return float(np.abs(finite).max()) if finite.size else 0.0


def _peak(chunks) -> float:
    """max |a| over the finite values of the chunks (0.0 when there are none)."""
    with _quiet():
        return max(map(_chunk_peak, chunks), default=0.0)


def _lockstep(chunks_a, chunks_b, expected: int, labels: tuple[str, str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Re-cut two chunk streams of one length to common boundaries; pairs of equal size."""
    iter_a, iter_b = iter(chunks_a), iter(chunks_b)
    rest_a = rest_b = np.empty(0)
    seen = 0
    while True:
        while rest_a.size == 0 and (nxt := next(iter_a, None)) is not None:
            rest_a = np.asarray(nxt).reshape(-1)
        while rest_b.size == 0 and (nxt := next(iter_b, None)) is not None:
            rest_b = np.asarray(nxt).reshape(-1)
        if rest_a.size == 0 or rest_b.size == 0:
            if rest_a.size or rest_b.size or seen != expected:
                raise ValueError(
                    f"stage data of {labels[0]!r} and {labels[1]!r} do not both hold the "
                    f"{expected} values their shape promises"
                )
            return
        k = min(rest_a.size, rest_b.size)
        yield rest_a[:k], rest_b[:k]
        rest_a, rest_b = rest_a[k:], rest_b[k:]
        seen += k


def compare_stage(
    ref: Trace,
    ref_name: str,
    cand: Trace,
    cand_name: str,
    tolerance: Tolerance,
    chunk_elements: int = 1 << 20,
) -> tuple[SideStats, SideStats, DiffStats]:
    """Stats of both sides and the difference metrics of a same-shape stage.

    Streams both sides in lock-step chunks. A first pass over the reference (its
    peak, for a relative atol) is made only when the stage spans more than one
    chunk. Raises ValueError when the shapes differ.

    Example:
        >>> import numpy as np
        >>> from numtrace.trace import MemoryTrace
        >>> a = MemoryTrace({"mel": np.linspace(-10.0, 0.0, 100)})
        >>> b = MemoryTrace({"mel": np.linspace(-10.0, 0.0, 100) - 1.46})
        >>> _, _, d = compare_stage(a, "mel", b, "mel", Tolerance(1e-4), chunk_elements=7)
        >>> round(d.abs_mean, 12), d.mismatched
        (1.46, 100)
    """
    info_a, info_b = ref.info(ref_name), cand.info(cand_name)
    if tuple(info_a.shape) != tuple(info_b.shape):
        raise ValueError(f"shapes differ: reference {tuple(info_a.shape)}, candidate {tuple(info_b.shape)}")
    chunk_elements = max(1, int(chunk_elements))
    size = info_a.size
    need_peak = tolerance.atol is None and tolerance.rtol > 0
    parallel = size >= blocks.PARALLEL_MIN
    read = min(chunk_elements, blocks.READ)  # cache-sized reads: no page faults, data hot for the kernels
    chunks_a: Iterable[np.ndarray]
    if size <= chunk_elements:
        chunks_a = list(ref.iter_chunks(ref_name, read))  # at most one chunk's worth
        peak = _peak(chunks_a) if need_peak else 0.0
    else:
        peak = _peak(ref.iter_chunks(ref_name, chunk_elements)) if need_peak else 0.0
        chunks_a = ref.iter_chunks(ref_name, read)
    rtol = tolerance.rtol
    atol = tolerance.resolve_atol(peak, info_a.dtype, info_b.dtype)

    is_complex = [i.dtype.startswith("complex") for i in (info_a, info_b)]
    pair_complex = any(is_complex)
    side_a, side_b = SideAccumulator(), SideAccumulator()
    acc = DiffAccumulator(rtol, atol)
    chunks_b = cand.iter_chunks(cand_name, read)
    pairs = _lockstep(chunks_a, chunks_b, size, (ref.label, cand.label))
    kernel = _PairBlocks(rtol, atol, fast=not pair_complex)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for parts in blocks.ordered_map(kernel, pairs, parallel):
            for raw_a, raw_b, part in parts:
                if part is not None:
                    bound = max(side_a.add_block(part[0]), side_b.add_block(part[1]))
                    acc.add_block(part[2], bound, raw_a, raw_b)
                    continue
                va, vb = as_values(raw_a), as_values(raw_b)
                bound = max(side_a.update(va), side_b.update(vb))
                if pair_complex:
                    va = va if is_complex[0] else as_values(raw_a, True)
                    vb = vb if is_complex[1] else as_values(raw_b, True)
                acc.update(va, vb, bound)
    stats_a = side_a.result(info_a.shape, info_a.dtype)
    stats_b = side_b.result(info_b.shape, info_b.dtype)
    return stats_a, stats_b, acc.result(stats_a.abs_max or 0.0, info_a.shape, pair_complex)


class _PairBlocks:
    """The per-chunk-pair task: ``[(block_a, block_b, fast result or None), ...]``."""

    def __init__(self, rtol: float, atol: float, fast: bool) -> None:
        self.rtol, self.atol, self.fast = rtol, atol, fast

    def __call__(self, pair: tuple[np.ndarray, np.ndarray]) -> list:
        out = []
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            for va, vb in zip(_cut(pair[0]), _cut(pair[1])):
                part = blocks.pair_block(va, vb, self.rtol, self.atol) if self.fast else None
                out.append((va, vb, part))
        return out
