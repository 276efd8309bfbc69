"""Many small stages compared at once: one NumPy sweep over ``k`` stages of ``n`` values each.

A long trace (every layer of an LLM: 20,000 stages of a few values) spends its diff in per-stage
work, not in arithmetic: reading one header entry, a dozen NumPy calls of a few microseconds
each, accumulators. :func:`compare_rows` takes ``k`` same-size stages stacked as ``(k, n)`` rows
and computes what :func:`~numtrace.compare.statistics.blocks.pair_block` computes for one block,
for every row at once, one NumPy call per quantity along the rows. NumPy sums each row of a
C-contiguous array as one contiguous block (pairwise summation), as it sums a 1-D block, so a
row's results are those of :func:`~numtrace.compare.statistics.stats.compare_stage` on that stage,
bit for bit (tests/properties/test_batch_stats.py): batching changes the cost, never a number.

A row the fast path refuses (a non-finite or extreme value, an absolute tolerance of 0) comes
back as None, and its stage is compared alone by the general code.

Example:
    >>> import numpy as np
    >>> a = np.array([[1.0, 2.0, 4.0], [0.5, 0.5, 0.5]], np.float32)
    >>> b = np.array([[1.0, 2.5, 4.0], [0.5, 0.5, np.nan]], np.float32)
    >>> from numtrace.compare.verdict import Tolerance
    >>> rows = compare_rows(a, b, [Tolerance(0.0, 0.1)] * 2, [(3,), (3,)], [("float32", "float32")] * 2)
    >>> side_a, side_b, d = rows[0]
    >>> side_b.mean, d.max_ratio, d.worst_index, d.mismatched, rows[1]  # row 1 holds a NaN: refused
    (2.5, 5.0, (1,), 1, None)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..verdict import Tolerance
from .blocks import _HIGH, _LOW
from .metrics import DiffStats, SideStats, diff_stats, side_stats

Stats = tuple[SideStats, SideStats, DiffStats]

#: Stages of at most this many elements are compared in batches (larger ones are streamed).
SMALL_MAX = 1 << 12
#: Elements per side in one batch: the float64 work arrays (a few MiB) stay in the caches.
BATCH_ELEMENTS = 1 << 16

_ONE_PLUS = float(np.nextafter(1.0, 2.0))


def compare_rows(a: np.ndarray, b: np.ndarray, tolerances: Sequence[Tolerance], shapes, dtypes) -> list[Stats | None]:
    """Per row of ``a``/``b`` (``(k, n)``, real floating): :func:`compare_stage`'s result, or None.

    ``tolerances``, ``shapes``, ``dtypes``: each row's tolerance, stage shape and recorded
    ``(dtype_a, dtype_b)``; a relative atol is resolved from the row's peak, as
    :func:`compare_stage` does. None for a row with a non-finite value, a value at or above
    2**400 or non-zero below 2**-401, or atol <= 0, as
    :func:`~numtrace.compare.statistics.blocks.pair_block` refuses such a block.
    """
    k, n = a.shape
    if b.shape != (k, n) or n == 0 or a.dtype.kind != "f" or b.dtype.kind != "f":
        return [None] * k
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        w = np.empty((2, k, n))
        np.copyto(w[0], a)
        np.copyto(w[1], b)
        lo, hi = w.min(axis=2), w.max(axis=2)  # (2, k); NaN propagates through min/max
        peaks = np.maximum(np.abs(lo[0]), np.abs(hi[0])).tolist()  # compare_stage's peak of a finite reference
        rtol = [tolerance.rtol for tolerance in tolerances]
        atol = [
            tolerance.resolve_atol(peak if tolerance.atol is None and tolerance.rtol > 0 else 0.0, *kinds)
            for tolerance, peak, kinds in zip(tolerances, peaks, dtypes)
        ]
        rtol_col = np.asarray(rtol, np.float64).reshape(k, 1)
        atol_col = np.asarray(atol, np.float64).reshape(k, 1)
        bound = np.maximum(np.maximum(-lo[0], hi[0]), np.maximum(-lo[1], hi[1]))
        ok = np.isfinite(lo[0]) & np.isfinite(lo[1]) & np.isfinite(bound)
        ok &= (bound < _HIGH) & ~((bound > 0) & (bound < _LOW)) & (atol_col[:, 0] > 0)
        sums = w.sum(axis=2)
        dev = np.subtract(w, (sums / n)[:, :, None])
        m2 = np.square(dev, out=dev).sum(axis=2)
        wa, wb = w[0], w[1]
        absd = np.abs(wb - wa)
        abs_max, sum_abs = absd.max(axis=1), absd.sum(axis=1)
        sum_d2 = np.square(absd).sum(axis=1)
        tol = np.abs(wa)
        tol *= rtol_col
        tol += atol_col
        ratio = np.divide(absd, tol)
        worst = ratio.argmax(axis=1)
        max_ratio = ratio[np.arange(k), worst]
        mismatched = np.zeros(k, np.int64)
        over = np.flatnonzero(max_ratio >= 1.0)  # rare: count exactly, keep the ratio consistent with the pass rule
        if over.size:
            out_of_tol = absd[over] > np.abs(wa[over]) * rtol_col[over] + atol_col[over]
            mismatched[over] = np.count_nonzero(out_of_tol, axis=1)
            sub = ratio[over]
            sub[out_of_tol & (sub <= 1.0)] = _ONE_PLUS
            worst[over] = sub.argmax(axis=1)
            max_ratio[over] = sub[np.arange(over.size), worst[over]]
        a2 = m2[0] + sums[0] * sums[0] / n
        b2 = m2[1] + sums[1] * sums[1] / n
        sum_ab = (a2 + b2 - sum_d2) / 2
        mean = sums / n * n / n  # SideAccumulator's merge of one block into an empty one: 0 + mean * n / n
        worst_ab = np.take_along_axis(w, worst[None, :, None], axis=2)[:, :, 0]
        sums_rows = np.stack([sum_abs, sum_d2, a2, b2, sum_ab], axis=1)  # the accumulator's sums, per row
    ok_rows, shape_rows, dtype_rows = ok.tolist(), list(shapes), list(dtypes)
    lo_l, hi_l, mean_l, m2_l, worst_ab_l = (x.tolist() for x in (lo, hi, mean, m2, worst_ab))  # [side][row]
    abs_max_l, ratio_l, worst_l, mismatched_l = (x.tolist() for x in (abs_max, max_ratio, worst, mismatched))
    sums_l, rtol_l, atol_l = sums_rows.tolist(), list(rtol), list(atol)
    out: list[Stats | None] = []
    for i in range(k):
        if not ok_rows[i]:
            out.append(None)
            continue
        # one block merged into empty accumulators: exp 0, sums added to 0.0, a worst value above a ratio of 0 only
        side_a, side_b = (
            side_stats(
                shape_rows[i],
                dtype_rows[i][side],
                (n, 0, 0, 0),
                (lo_l[side][i], hi_l[side][i], max(abs(lo_l[side][i]), abs(hi_l[side][i]))),
                n,
                0.0 + mean_l[side][i],
                m2_l[side][i],
                0,
            )
            for side in (0, 1)
        )
        ratio_i = ratio_l[i]
        worst_i = (worst_l[i], worst_ab_l[0][i], worst_ab_l[1][i]) if ratio_i > 0.0 else None
        d = diff_stats(
            (n, mismatched_l[i], n, 0, 0),
            tuple(0.0 + x for x in sums_l[i]),
            0,
            max(0.0, abs_max_l[i]),
            ratio_i,
            worst_i,
            side_a.abs_max or 0.0,
            shape_rows[i],
            (rtol_l[i], atol_l[i]),
        )
        out.append((side_a, side_b, d))
    return out
