"""Where along each axis do two aligned stages differ? Per-index profiles and worst spots.

The "channel-by-channel mean difference" of a drill-down (``trace diff A B
--stage NAME``): for every axis, at every index, the mean of ``b - a``, the
mean and max of ``|b - a|`` over everything else, and the reference's rms
there; given the stage's tolerance, also each index's verdict (the verdict
rule applied to the elements at that index only). Pure NumPy; non-finite
positions are left out of the means.

Example:
    >>> import numpy as np

from ..verdict import SMALL_FACTOR
    >>> a = np.zeros((3, 4)); b = a.copy(); b[1] = 2.0
    >>> p = axis_profiles(a, b)[0]
    >>> p["axis"], p["mean_diff"], p["max_abs"]
    (0, [0.0, 2.0, 0.0], [0.0, 2.0, 0.0])
    >>> axis_profiles(a, b, rtol=0.0, atol=1.0)[0]["verdict"]
    ['MATCH', 'SMALL', 'MATCH']
    >>> b[1, 2] = 3.0
    >>> worst_locations(a, b, 2)[0]
    {'index': [1, 2], 'a': 0.0, 'b': 3.0, 'diff': 3.0}
"""

from __future__ import annotations

import numpy as np

from ..verdict import SMALL_FACTOR


def _real(x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind == "c":
        return np.abs(x).astype(np.float64)
    return x.astype(np.float64, copy=False)


def axis_profiles(a, b, rtol: float | None = None, atol: float | None = None) -> list[dict]:
    """One profile per axis of length > 1: ``axis``, ``length``, ``mean_diff``, ``mean_abs``,
    ``max_abs``, ``ref_rms`` (lists, one value per index; None where nothing is finite) and,
    when ``rtol`` and ``atol`` are given, ``verdict`` (MATCH, SMALL or LARGE per index)."""
    a, b = _real(a), _real(b)
    if a.ndim == 0:
        a, b = a.reshape(1), b.reshape(1)
    mask = np.isfinite(a) & np.isfinite(b)
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.where(mask, b - a, 0.0)
    a0 = np.where(mask, a, 0.0)
    ratio = _ratios(a, b, mask, d, rtol, atol) if rtol is not None and atol is not None else None
    out = []
    for axis in range(a.ndim):
        if a.shape[axis] < 2:
            continue
        other = tuple(k for k in range(a.ndim) if k != axis)
        count = mask.sum(axis=other) if other else mask.astype(int)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_diff = (d.sum(axis=other) if other else d) / count
            mean_abs = (np.abs(d).sum(axis=other) if other else np.abs(d)) / count
            ref_rms = np.sqrt((a0 * a0).sum(axis=other) / count if other else a0 * a0)
        max_abs = np.abs(d).max(axis=other) if other else np.abs(d)
        profile = {
            "axis": axis,
            "length": int(a.shape[axis]),
            "mean_diff": _list(mean_diff, count),
            "mean_abs": _list(mean_abs, count),
            "max_abs": _list(max_abs, count),
            "ref_rms": _list(ref_rms, count),
        }
        if ratio is not None:
            worst = ratio.max(axis=other) if other else ratio
            profile["verdict"] = np.where(
                worst <= 1.0, "MATCH", np.where(worst <= SMALL_FACTOR, "SMALL", "LARGE")
            ).tolist()
        out.append(profile)
    return out


def _ratios(a, b, mask, d, rtol: float, atol: float) -> np.ndarray:
    """Each element's ``|b - a| / (rtol |a| + atol)`` (0/0 is 0, x/0 inf); a non-finite value on one
    side only, or unequal non-finite values, inf."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        limit = rtol * np.abs(np.where(mask, a, 0.0)) + atol
        ratio = np.where(d == 0, 0.0, np.abs(d) / limit)
        same = (a == b) | (np.isnan(a) & np.isnan(b))
    return np.where(mask & ~np.isnan(ratio), ratio, np.where(mask | ~same, np.inf, 0.0))


def _list(values, count) -> list:
    return [float(v) if c else None for v, c in zip(np.asarray(values).ravel(), np.asarray(count).ravel())]


def worst_locations(a, b, k: int = 10) -> list[dict]:
    """The ``k`` positions with the largest ``|b - a|`` (non-finite mismatches first)."""
    a, b = _real(a), _real(b)
    if a.ndim == 0:
        a, b = a.reshape(1), b.reshape(1)
    with np.errstate(invalid="ignore"):
        d = np.abs(b - a)
    same_nonfinite = (a == b) | (np.isnan(a) & np.isnan(b))
    score = np.where(np.isfinite(d), d, np.where(same_nonfinite, -1.0, np.inf)).ravel()
    k = min(k, score.size)
    if k == 0:
        return []
    top = np.argpartition(-score, k - 1)[:k]
    top = top[np.lexsort((top, -score[top]))]  # largest first, ties by position
    out = []
    for flat in top:
        if score[flat] <= 0:
            break
        index = [int(i) for i in np.unravel_index(flat, a.shape)]
        va, vb = float(a.flat[flat]), float(b.flat[flat])
        out.append({"index": index, "a": va, "b": vb, "diff": vb - va})
    return out
