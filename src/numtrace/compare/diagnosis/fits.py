"""Findings that fit a model of the candidate from the reference: B = A + c, B = k A, ...

Pure NumPy, used by :func:`numtrace.compare.diagnosis.diagnose.diagnose`. Every fit is
least squares; it reports ``explained`` (the share of the error energy
``E = sum((b - a)^2)`` that the fit removes) and ``residual`` (the relative
error left, ``sqrt(E_left / sum(a^2))``, comparable to ``diff.rel_rms``).

A fit is *significant* when its F statistic, ``(E - E_left) / q`` over
``E_left / (n - p)``, is at least :data:`MIN_F` (q parameters added, p in all):
a few free parameters always explain a little of random noise; they explain a
lot only of a real structure. The richer fits (per channel, elementwise,
proportional) come as a :class:`Fit`: the :class:`~numtrace.compare.findings.Finding`
they would report and whether they are significant, for the caller to weigh.

Example:
    >>> import numpy as np
    >>> x = np.linspace(-10.0, 0.0, 50)
    >>> fit_global(x, x - 1.46)["offset"]["value"]
    -1.46
    >>> fit = fit_proportional(0.5 * x, x, x, float(x @ x), stage="enc")
    >>> fit.significant, fit.finding
    (True, Finding(kind='proportional', stage='enc', factor=0.5, explained=1.0, residual=0.0))
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from ..findings import Finding

#: F statistic a fit needs (about a 5-sigma effect for one parameter): noise never reaches it.
MIN_F = 25.0
#: |factor + 1| below this makes a scale fit a sign flip.
SIGN_TOLERANCE = 0.02
#: Elements the elementwise fit uses (a fixed random subsample beyond it: it sorts them).
ELEMENTWISE_MAX = 1 << 20
#: The elementwise fit needs at least this many elements, and uses groups of this size or more.
ELEMENTWISE_GROUP = 32
#: ... and at most this many groups (reference-value quantiles).
ELEMENTWISE_GROUPS = 64


class Fit(NamedTuple):
    """A fitted finding and whether its F test says it is real (:func:`significant`)."""

    finding: Finding
    significant: bool


def dot_sum(x: np.ndarray, y: np.ndarray) -> float:
    """Sum of products by pairwise summation (np.sum): accurate, the same on every machine,
    and not at the mercy of a BLAS thread pool (np.dot can be 40x slower on small vectors)."""
    return float(np.multiply(x, y).sum())


def significant(energy: float, left: float, n: int, q: int, p: int) -> bool:
    """Whether removing ``energy - left`` with ``q`` more parameters (``p`` in all) is real."""
    gained = energy - left
    if gained <= 0:
        return False
    if left <= 1e-24 * energy or n <= p:
        return left <= 1e-24 * energy
    return (gained / q) / (left / (n - p)) >= MIN_F


def shares(energy: float, left: float, a2: float) -> dict:
    """``explained`` and ``residual`` of a fit that leaves ``left`` of the error energy ``energy``."""
    left = min(max(left, 0.0), energy)
    return {
        "explained": 1.0 - left / energy,
        "residual": math.sqrt(left / a2) if a2 > 0 else math.inf,
    }


def fit_global(x: np.ndarray, y: np.ndarray) -> dict[str, dict]:
    """Offset, scale and affine fits of flat finite values ``y`` (candidate) on ``x`` (reference).

    Returns ``{"offset": {...}, "scale": {...}, "affine": {...}}`` each with its
    parameters, ``explained``, ``residual`` and ``significant``.
    """
    n = x.size
    e = y - x
    energy = float(dot_sum(e, e))
    a2 = float(dot_sum(x, x))
    out: dict[str, dict] = {}
    if n == 0 or energy <= 0:
        return out
    c = float(e.mean())
    left = float(np.sum((e - c) ** 2))
    out["offset"] = {"value": c, **shares(energy, left, a2), "significant": significant(energy, left, n, 1, 1)}
    if a2 > 0:
        k = float(dot_sum(x, y)) / a2
        left = float(np.sum((y - k * x) ** 2))
        out["scale"] = {"factor": k, **shares(energy, left, a2), "significant": significant(energy, left, n, 1, 1)}
    mx, my = float(x.mean()), float(y.mean())
    dx = x - mx
    var = float(dot_sum(dx, dx))
    if var > 0 and n > 2:
        k = float(dot_sum(dx, y - my)) / var
        c = my - k * mx
        left = float(np.sum((y - k * x - c) ** 2))
        out["affine"] = {
            "factor": k,
            "value": c,
            **shares(energy, left, a2),
            "significant": significant(energy, left, n, 2, 2),
        }
    return out


def fit_channels(a: np.ndarray, b: np.ndarray, mask: np.ndarray, energy: float, a2: float) -> dict[str, Fit]:
    """The best per-index offset and per-index scale along one axis (a bias or gain per channel).

    ``a``/``b`` are the full arrays with non-finite positions zeroed and
    ``mask`` marking the finite ones. Returns ``{"channel_offset": Fit,
    "channel_scale": Fit}`` for the axis where each explains most.
    """
    best: dict[str, Fit] = {}
    n = int(mask.sum())
    if energy <= 0 or a.ndim == 0:
        return best
    e = b - a
    for axis in range(a.ndim):
        length = a.shape[axis]
        if length < 2 or length * 2 > a.size:
            continue
        other = tuple(k for k in range(a.ndim) if k != axis)
        count = mask.sum(axis=other).astype(np.float64)
        se = e.sum(axis=other)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(count > 0, se / np.maximum(count, 1), 0.0)
        left = energy - float(np.sum(count * values * values))
        keep_best(best, "channel_offset", axis, values, energy, left, a2, n, length, count > 0)
        saa = (a * a).sum(axis=other)
        sab = (a * b).sum(axis=other)
        sbb = (b * b).sum(axis=other)
        with np.errstate(invalid="ignore", divide="ignore"):
            factors = np.where(saa > 0, sab / np.where(saa > 0, saa, 1.0), 0.0)
        left = float(np.sum(sbb - factors * sab))
        keep_best(best, "channel_scale", axis, factors, energy, left, a2, n, length, saa > 0)
    return best


def keep_best(best: dict[str, Fit], kind, axis, values, energy, left, a2, n, length, defined) -> None:
    """Keep the fit along ``axis`` if it explains more than the best so far (significant or not: the
    caller weighs the best); min/max over ``defined`` indices, every value of an axis up to 16 long."""
    shown = values[defined] if defined.any() else values
    listed: dict[str, Any] = {"values": [float(v) for v in values]} if length <= 16 else {}
    finding = Finding.of(
        kind, axis=axis, **shares(energy, left, a2), min=float(shown.min()), max=float(shown.max()), **listed
    )
    if kind not in best or finding["explained"] > best[kind].finding["explained"]:
        best[kind] = Fit(finding, significant(energy, left, n, length, length))


def fit_elementwise(
    x: np.ndarray, e: np.ndarray, a2: float, max_elements: int = ELEMENTWISE_MAX, of: str | None = None
) -> Fit | None:
    """How much of the error is a function of the reference value (a different formula).

    The values are sorted by reference value and cut into equal-count groups;
    the error's group means are the fitted function. Returns the fit with
    ``peak_at`` (reference value where the mean error is largest) and
    ``peak_error``, or None when there are too few values. Beyond
    ``max_elements`` values, a fixed random subsample of that many is used.
    ``of``: the stage whose reference values ``x`` are, when not the stage's own.
    """
    n = x.size
    if n < ELEMENTWISE_GROUP * 4:
        return None
    if n > max_elements:
        pick = np.random.default_rng(0).choice(n, max_elements, replace=False)
        x, e = x[pick], e[pick]
        a2 = a2 * max_elements / n
        n = max_elements
    energy = float(dot_sum(e, e))
    if energy <= 0:
        return None
    groups = min(ELEMENTWISE_GROUPS, n // ELEMENTWISE_GROUP)
    order = np.argsort(x, kind="stable")
    xs, es = x[order], e[order]
    bounds = np.linspace(0, n, groups + 1).astype(int)
    left, means, centers = 0.0, [], []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        chunk = es[lo:hi]
        mean = float(chunk.mean())
        left += float(np.sum((chunk - mean) ** 2))
        means.append(mean)
        centers.append(float(xs[(lo + hi) // 2]))  # xs is sorted: the group's median
    peak = int(np.argmax(np.abs(means)))
    source: dict[str, Any] = {"of": of} if of is not None else {}
    finding = Finding.of(
        "elementwise", **source, **shares(energy, left, a2), peak_at=centers[peak], peak_error=means[peak]
    )
    return Fit(finding, significant(energy, left, n, groups, groups))


def fit_proportional(e: np.ndarray, x: np.ndarray, a: np.ndarray, a2: float, stage: str | None = None) -> Fit | None:
    """``b - a ~ factor * x`` for another stage's reference values ``x`` (flat, finite; ``stage``: its name).

    None when ``x`` is all zeros. (When ``x`` is the reference itself again, this
    is the scale fit, and :func:`~numtrace.compare.diagnosis.diagnose.better` drops it.)
    """
    xx = float(dot_sum(x, x))
    energy = float(dot_sum(e, e))
    if xx <= 0 or energy <= 0:
        return None
    k = float(dot_sum(e, x)) / xx
    left = float(np.sum((e - k * x) ** 2))
    source: dict[str, Any] = {"stage": stage} if stage is not None else {}
    finding = Finding.of("proportional", **source, factor=k, **shares(energy, left, a2))
    return Fit(finding, significant(energy, left, e.size, 1, 1))
