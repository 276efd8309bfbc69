"""Fused block kernels and an ordered thread map: the fast path of :mod:`numtrace.compare.statistics.stats`.

A stage is streamed in chunks; each chunk is cut into blocks of :data:`BLOCK`
elements so that the float64 working buffers stay in the caches, and every
statistic of a block is computed from those buffers in one sweep of NumPy
calls: no temporary of stage size, no second pass over memory.

:func:`side_block` and :func:`pair_block` handle the common case, a block of
real floating values, all finite, of moderate magnitude (no value at or above
2**400, the largest below 2**-401 only if it is 0). They return ``None`` for
any other block, which the caller then runs through the general
(non-finite-aware, overflow-scaled) code. Values are widened to float64
exactly, so per-element quantities (``b - a``, the tolerance test) are the
same as the general code's, bit for bit; only summation order differs.

:func:`ordered_map` can spread per-chunk work over threads (NumPy releases
the GIL inside its loops) while the calling thread keeps reading the next
chunks, yielding the results in order, so results never depend on timing.
It is off unless ``NUMTRACE_THREADS`` asks for more than one thread (see
:func:`threads`).

Example:
    >>> import numpy as np
    >>> side_block(np.array([1.0, 2.0, 4.0], np.float32))
    (3, 1.0, 4.0, 7.0, 4.666666666666666)
    >>> side_block(np.array([1.0, np.nan])) is None
    True
    >>> list(ordered_map(sum, [[1, 2], [3]], parallel=True))
    [3, 3]
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from typing import Callable, Iterable, Iterator

import numpy as np

#: Elements per block: the float64 work buffers (3 MiB) stay in the caches, and each NumPy call
#: is long enough that its fixed cost (1-4 us) is small. 64Ki and 128Ki measured best of 16Ki-128Ki.
BLOCK = 1 << 16
#: Elements per read (1 MiB of float32): few system calls, heap memory reused (no page faults).
READ = 4 * BLOCK
#: Stages of fewer elements are computed on the calling thread alone.
PARALLEL_MIN = 1 << 20
_HIGH = 2.0**400  # same limits as the scaled sums of numtrace.compare.statistics.metrics
_LOW = 2.0**-401

_local = threading.local()
_pool_lock = threading.Lock()
_pool = None


def _buffers(n: int) -> tuple[np.ndarray, ...]:
    """This thread's four float64 work buffers, cut to ``n`` elements."""
    bufs = getattr(_local, "bufs", None)
    if bufs is None or bufs[0].size < n:
        bufs = _local.bufs = tuple(np.empty(max(n, BLOCK)) for _ in range(4))
    return tuple(b[:n] for b in bufs)


def _widen(values: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``values`` as float64: itself if it already is, else copied exactly into ``out``."""
    if values.dtype == np.float64:
        return values
    np.copyto(out, values)
    return out


def _bounds(values: np.ndarray) -> tuple[float, float] | None:
    """(min, max) of a real floating block if all its values are finite and of moderate size."""
    if values.dtype.kind != "f" or values.size == 0:
        return None
    lo, hi = float(values.min()), float(values.max())  # NaN propagates through min/max
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return (lo, hi) if _moderate(max(-lo, hi)) else None


def _moderate(bound: float) -> bool:
    """True when no value of magnitude up to ``bound`` needs the scaled sums (0 is fine)."""
    return bound < _HIGH and not 0.0 < bound < _LOW


def _side(x: np.ndarray, dev: np.ndarray, bounds: tuple[float, float]) -> tuple[int, float, float, float, float]:
    n = x.size
    total = float(x.sum())
    np.subtract(x, total / n, out=dev)
    return n, bounds[0], bounds[1], total, float(np.square(dev, out=dev).sum())


def side_block(values: np.ndarray) -> tuple[int, float, float, float, float] | None:
    """``(n, min, max, sum, m2)`` of a block (``m2``: sum of squared deviations from its mean), or None.

    None when the block is not real floating, finite and of moderate magnitude.
    """
    bounds = _bounds(values)
    if bounds is None:
        return None
    wide, dev = _buffers(values.size)[:2]
    return _side(_widen(values, wide), dev, bounds)


def _pair_buffers(n: int) -> tuple[np.ndarray, ...]:
    """This thread's (2, n) widened values and deviations, and two n-element work buffers."""
    bufs = getattr(_local, "pair", None)
    if bufs is None or bufs[2].size < n:
        size = max(n, BLOCK)
        bufs = _local.pair = (np.empty((2, size)), np.empty((2, size)), np.empty(size), np.empty(size))
    return bufs[0][:, :n], bufs[1][:, :n], bufs[2][:n], bufs[3][:n]


def pair_block(va: np.ndarray, vb: np.ndarray, rtol: float, atol: float) -> tuple | None:
    """Side statistics of both blocks and their difference metrics in one sweep, or None.

    Returns ``(side_a, side_b, diff)`` with sides as :func:`side_block` and
    ``diff = (abs_max, sum_abs, sum_d2, sum_a2, sum_b2, sum_ab, max_ratio, k,
    mismatched)``; ``k`` is the first index of the largest ``|b-a| / (rtol*|a|
    + atol)``. ``sum_a2``/``sum_b2`` come from the side statistics
    (``m2 + sum^2 / n``, no cancellation) and ``sum_ab`` from
    ``(sum_a2 + sum_b2 - sum_d2) / 2`` (absolute error ~eps * sum_a2).
    None also when ``atol`` is 0 (a 0/0 ratio needs the general code).
    Both sides are widened into one (2, n) buffer so that each reduction is
    one NumPy call for both.
    """
    n = va.size
    if atol <= 0 or n == 0 or n != vb.size or va.dtype.kind != "f" or vb.dtype.kind != "f":
        return None
    w, dev, d, t = _pair_buffers(n)
    np.copyto(w[0], va)
    np.copyto(w[1], vb)
    lo_a, lo_b = w.min(axis=1).tolist()  # NaN propagates through min/max
    hi_a, hi_b = w.max(axis=1).tolist()
    bound = max(-lo_a, hi_a, -lo_b, hi_b)
    if not (math.isfinite(lo_a) and math.isfinite(lo_b) and math.isfinite(bound)) or not _moderate(bound):
        return None
    sums = w.sum(axis=1)
    np.subtract(w, (sums / n)[:, None], out=dev)
    m2_a, m2_b = np.square(dev, out=dev).sum(axis=1).tolist()
    sum_a, sum_b = sums.tolist()
    a, b = w[0], w[1]
    absd = np.abs(np.subtract(b, a, out=d), out=d)
    abs_max, sum_abs = float(absd.max()), float(absd.sum())
    sum_d2 = float(np.square(absd, out=t).sum())
    tol = np.abs(a, out=t)
    tol *= rtol
    tol += atol
    ratio = np.divide(absd, tol, out=t)
    k = int(ratio.argmax())
    max_ratio, mismatched = float(ratio[k]), 0
    if max_ratio >= 1.0:  # rare: count exactly, and keep the ratio consistent with the pass rule
        tol = np.abs(a) * rtol + atol
        out_of_tol = absd > tol
        mismatched = int(np.count_nonzero(out_of_tol))
        if mismatched:
            ratio[out_of_tol & (ratio <= 1.0)] = np.nextafter(1.0, 2.0)
            k = int(ratio.argmax())
            max_ratio = float(ratio[k])
    a2, b2 = m2_a + sum_a * sum_a / n, m2_b + sum_b * sum_b / n
    sum_ab = (a2 + b2 - sum_d2) / 2
    side_a, side_b = (n, lo_a, hi_a, sum_a, m2_a), (n, lo_b, hi_b, sum_b, m2_b)
    return side_a, side_b, (abs_max, sum_abs, sum_d2, a2, b2, sum_ab, max_ratio, k, mismatched)


def threads() -> int:
    """Worker threads for large stages: ``NUMTRACE_THREADS`` (default 1: none).

    Off by default: on the 2-core machine of benchmarks/README.md a second
    thread gained at most 10% wall time for 50% more CPU time (the kernels are
    bound by memory bandwidth, and lose when the machine is busy).
    """
    raw = os.environ.get("NUMTRACE_THREADS", "").strip()
    return max(1, min(int(raw), 4 * (os.cpu_count() or 1))) if raw.isdigit() else 1


def _executor():
    global _pool
    with _pool_lock:
        if _pool is None:
            from concurrent.futures import ThreadPoolExecutor

            _pool = ThreadPoolExecutor(max_workers=threads(), thread_name_prefix="numtrace-stats")
        return _pool


def ordered_map(fn: Callable, items: Iterable, parallel: bool, depth: int = 0) -> Iterator:
    """``map(fn, items)``, with ``fn`` run on worker threads when ``parallel`` (results still in order).

    ``items`` is always iterated on the calling thread (so a trace file is only
    ever read from one thread), at most ``depth`` items ahead of the results
    (default: twice the workers).
    """
    if not parallel or threads() < 2:
        yield from map(fn, items)
        return
    pool = _executor()
    pending: deque = deque()
    depth = depth or 2 * threads()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
