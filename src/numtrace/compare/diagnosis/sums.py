"""Whole-stage sums in one streamed pass, and the fits they give exactly (for sampled stages).

For a stage too large to diagnose whole (:mod:`numtrace.compare.diagnosis.sample`),
:func:`scan` reads both sides once, in chunks of whole *slabs* (the trailing
axes that the window keeps whole), and accumulates, over the values finite on
both sides, the count ``n`` and the sums of ``a``, ``e``, ``e²``, ``a²`` and
``a·e`` (``e = b - a``), overall and per index of chosen axes, in float64, in
units scaled by a power of two (exact); it gathers the window's values on the
way. Memory: a few chunk-sized buffers (a slab or :data:`CHUNK` elements) and
the window. :func:`gather` reads only the window of one stage.

From these sums, exactly as from the whole arrays (up to summation order):
:func:`global_fits` (offset, scale, affine, as :func:`~numtrace.compare.diagnosis.fits.fit_global`),
:func:`channel_fits` (per-index offset and scale along an axis, as
:func:`~numtrace.compare.diagnosis.fits.fit_channels`) and :func:`localized` (bands along
an axis, as :func:`~numtrace.compare.diagnosis.regions.find_localized`).

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> a = np.arange(24.0).reshape(2, 3, 4)
    >>> b = a.copy(); b[1] += 0.5
    >>> box = ((1, 2), (0, 3), (0, 4))                    # the second index of axis 0, whole
    >>> wa, wb, s = scan(MemoryTrace({"x": a}), "x", MemoryTrace({"x": b}), "x", a.shape, box, 1.0, axes=[0])
    >>> wb.shape, float(s.total["e"]), s.axes[0]["e"].tolist(), s.window_ee == s.total["ee"]
    ((1, 3, 4), 6.0, [0.0, 6.0], True)
    >>> bands = localized(0, s.axes[0], s.total["ee"], s.total["aa"], 0.0)
    >>> [(f["axis"], f["start"], f["stop"], f["offset"]) for f in bands]
    [(0, 1, 2, 0.5)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ...trace import Trace
from ..findings import Finding
from .fits import keep_best, shares, significant
from .regions import BAND_FIT, LOCALIZED_MIN_LEN, band_finding, exact_bands, loud_bands

#: Elements read per chunk: whole slabs, at least one (a slab is at most the window's size) ...
CHUNK = 1 << 18
#: Slabs smaller than this are handled a row at a time (all the slabs along the last cut axis):
#: per-index sums along that axis are then a reduction, not a bincount per slab ...
ROW_SLAB = 64
#: ... in chunks this much smaller (their per-slab sums are as long as the chunk).
SMALL_SLAB_CHUNK_DIVISOR = 4
QUANTITIES = ("n", "a", "e", "ee", "aa", "ae")


@dataclass
class Sums:
    """``total[q]`` over the stage, ``axes[i][q]`` per index along axis ``i`` (q in
    :data:`QUANTITIES`), and ``window_ee``, the error energy inside the window."""

    total: dict
    axes: dict
    window_ee: float


class _Plan:
    """How a stage is walked: ``last``, the last axis the box cuts; ``slab``, the elements
    after it (whole in the box); per axis up to ``last`` its index stride in slabs; and
    whether slabs go by rows (``rows``: the ``shape[last]`` slabs of one index before it)."""

    def __init__(self, shape: tuple, box: tuple) -> None:
        self.shape, self.box = tuple(shape), tuple(box)
        self.last = max((i for i, (lo, hi) in enumerate(box) if hi - lo < shape[i]), default=-1)
        self.slab = math.prod(self.shape[self.last + 1 :])
        self.strides = [math.prod(self.shape[i + 1 : self.last + 1]) for i in range(self.last + 1)]
        self.width = self.shape[self.last] if self.last >= 0 else 1
        self.rows = self.last >= 0 and self.slab < ROW_SLAB and self.slab * self.width <= CHUNK
        unit = self.slab * (self.width if self.rows else 1)
        target = CHUNK if self.slab >= ROW_SLAB else max(1, CHUNK // SMALL_SLAB_CHUNK_DIVISOR)
        self.chunk = unit * max(1, target // unit)
        self.end = sum((hi - 1) * stride for (lo, hi), stride in zip(self.box, self.strides)) + 1  # slabs to read

    def where(self, first: int, k: int, axes=()) -> tuple[np.ndarray, dict]:
        """Which of the slabs ``first .. first+k-1`` lie in the box, and for each of ``axes``
        (but the rows' own axis) the index along it of each slab, or of each row."""
        if self.rows:
            first, k, upto, strides = first // self.width, k // self.width, self.last - 1, self.strides
            strides = [s // self.width for s in strides]
        else:
            upto, strides = self.last, self.strides
        g = np.arange(first, first + k)
        inside = np.ones(k, bool)
        index = {}
        for i in range(upto + 1):
            lo, hi = self.box[i]
            cut = hi - lo < self.shape[i]
            if cut or i in axes:
                at = (g // strides[i]) % self.shape[i]
                if cut:
                    inside &= (at >= lo) & (at < hi)
                if i in axes:
                    index[i] = at
        if self.rows:
            columns = np.zeros(self.width, bool)
            columns[slice(*self.box[self.last])] = True
            inside = (inside[:, None] & columns).reshape(-1)
        return inside, index


def _fixed(chunks: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """A stream of flat arrays re-cut into arrays of exactly ``size`` (the last may be shorter)."""
    pending: list[np.ndarray] = []
    have = 0
    for chunk in chunks:
        chunk = chunk.reshape(-1)
        if not pending and chunk.size == size:
            yield chunk
            continue
        pending.append(chunk)
        have += chunk.size
        while have >= size:
            flat = np.concatenate(pending) if len(pending) > 1 else pending[0]
            yield flat[:size]
            pending, have = ([flat[size:]] if flat.size > size else []), flat.size - size
    if have:
        yield np.concatenate(pending) if len(pending) > 1 else pending[0]


def _chunks(trace: Trace, name: str, plan: _Plan) -> Iterator[np.ndarray]:
    return _fixed(trace.iter_chunks(name, plan.chunk), plan.chunk)


def _lengths(box: tuple) -> tuple[int, ...]:
    return tuple(hi - lo for lo, hi in box)


def gather(trace: Trace, name: str, shape: tuple, box: tuple) -> np.ndarray:
    """The values of one stage inside ``box`` (one ``(start, stop)`` per axis), read up to its end."""
    plan = _Plan(shape, box)
    parts, first = [], 0
    for chunk in _chunks(trace, name, plan):
        k = chunk.size // plan.slab
        inside, _ = plan.where(first, k)
        if inside.any():
            parts.append(chunk.reshape(k, plan.slab)[inside])
        first += k
        if first >= plan.end:
            break
    return np.concatenate(parts).reshape(_lengths(box))


def _values(chunk: np.ndarray, m: int, unit: float) -> np.ndarray:
    """A chunk as float64 values scaled by ``unit``, one row per slab (complex: re, im parts)."""
    if chunk.dtype.kind == "c":
        values = np.array(chunk, dtype=np.complex128).view(np.float64)
    else:
        values = chunk.astype(np.float64)
    values *= unit
    return values.reshape(m, -1)


def _rowsum(x: np.ndarray) -> np.ndarray:
    return x[:, 0].copy() if x.shape[1] == 1 else x.sum(axis=1)


def _rowdot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sum of products per row (einsum: no temporary; a product and a sum for short rows)."""
    if x.shape[1] == 1:
        return x[:, 0] * y[:, 0]
    return np.einsum("ij,ij->i", x, y) if x.shape[1] >= 16 else (x * y).sum(axis=1)


def _slab_sums(ca: np.ndarray, cb: np.ndarray, m: int, unit: float, finite: bool) -> dict:
    va, vb = _values(ca, m, unit), _values(cb, m, unit)
    if finite:
        n = np.full(m, float(va.shape[1]))
    else:
        ok = np.isfinite(va) & np.isfinite(vb)
        n = ok.sum(axis=1).astype(np.float64)
        va, vb = np.where(ok, va, 0.0), np.where(ok, vb, 0.0)
    e = np.subtract(vb, va, out=vb)
    return {"n": n, "a": _rowsum(va), "e": _rowsum(e), "ee": _rowdot(e, e), "aa": _rowdot(va, va), "ae": _rowdot(va, e)}


def scan(
    reference: Trace,
    name_a: str,
    candidate: Trace,
    name_b: str,
    shape: tuple,
    box: tuple,
    unit: float,
    finite: bool = True,
    axes=(),
) -> tuple[np.ndarray, np.ndarray, Sums]:
    """Both stages' values inside ``box``, and the :class:`Sums` of the whole stage (per index
    along each of ``axes``, which must be axes the box cuts). ``finite``: no NaN/Inf on either side."""
    shape = tuple(shape)
    plan = _Plan(shape, box)
    axes = [i for i in axes if i <= plan.last]
    total = dict.fromkeys(QUANTITIES, 0.0)
    per_axis = {i: {q: np.zeros(shape[i]) for q in QUANTITIES} for i in axes}
    parts_a, parts_b, window_ee, first = [], [], 0.0, 0
    for ca, cb in zip(_chunks(reference, name_a, plan), _chunks(candidate, name_b, plan)):
        k = ca.size // plan.slab
        inside, index = plan.where(first, k, axes)
        first += k
        if inside.any():
            parts_a.append(ca.reshape(k, plan.slab)[inside])
            parts_b.append(cb.reshape(k, plan.slab)[inside])
        sums = _slab_sums(ca, cb, k, unit, finite)
        window_ee += float(sums["ee"][inside].sum())
        for q in QUANTITIES:
            values = sums[q]
            total[q] += float(values.sum())
            if plan.rows:  # the slabs of a row are the indices along the last cut axis
                grid = values.reshape(-1, plan.width)
                if plan.last in per_axis:
                    per_axis[plan.last][q] += grid.sum(axis=0)
                values = grid.sum(axis=1)
            for i, at in index.items():
                per_axis[i][q] += np.bincount(at, weights=values, minlength=shape[i])
    lengths = _lengths(box)
    window_a, window_b = np.concatenate(parts_a).reshape(lengths), np.concatenate(parts_b).reshape(lengths)
    return window_a, window_b, Sums(total, per_axis, window_ee)


def global_fits(total: dict) -> dict[str, dict]:
    """:func:`~numtrace.compare.diagnosis.fits.fit_global`'s offset, scale and affine fits from the sums."""
    n, sa, se, see, saa, sae = (total[q] for q in QUANTITIES)
    out: dict[str, dict] = {}
    if n <= 0 or see <= 0:
        return out
    left = see - se * se / n
    out["offset"] = {"value": se / n, **shares(see, left, saa), "significant": significant(see, left, n, 1, 1)}
    if saa > 0:  # b = k a: k - 1 = sum(a e) / sum(a^2), what is left is e's part orthogonal to a
        left = see - sae * sae / saa
        out["scale"] = {
            "factor": 1.0 + sae / saa,
            **shares(see, left, saa),
            "significant": significant(see, left, n, 1, 1),
        }
    sxx = saa - sa * sa / n
    if sxx > 0 and n > 2:
        sxe = sae - sa * se / n
        slope = sxe / sxx
        left = see - se * se / n - sxe * sxe / sxx
        out["affine"] = {
            "factor": 1.0 + slope,
            "value": (se - slope * sa) / n,
            **shares(see, left, saa),
            "significant": significant(see, left, n, 2, 2),
        }
    return out


def channel_fits(best: dict, axis: int, sums: dict, energy: float, a2: float, n: float, size: int) -> dict:
    """Add the per-index offset and scale fits along ``axis`` to ``best`` (kept if they explain
    more than the fit of that kind already there), as :func:`~numtrace.compare.diagnosis.fits.fit_channels`."""
    length = sums["n"].size
    if energy <= 0 or length < 2 or length * 2 > size:
        return best
    count, se, see, saa, sae = sums["n"], sums["e"], sums["ee"], sums["aa"], sums["ae"]
    values = np.where(count > 0, se / np.maximum(count, 1), 0.0)
    keep_best(
        best,
        "channel_offset",
        axis,
        values,
        energy,
        energy - float(np.sum(count * values * values)),
        a2,
        n,
        length,
        count > 0,
    )
    defined = saa > 0
    safe = np.where(defined, saa, 1.0)
    factors = np.where(defined, 1.0 + sae / safe, 0.0)
    left = float(np.sum(np.where(defined, see - sae * sae / safe, see)))
    keep_best(best, "channel_scale", axis, factors, energy, left, a2, n, length, defined)
    return best


def localized(axis: int, sums: dict, energy: float, a2: float, quiet: float) -> list[Finding]:
    """Bands of indices along ``axis`` that hold the error, as
    :func:`~numtrace.compare.diagnosis.regions.find_localized` (``quiet``: an index's error energy that
    counts as none)."""
    profile = sums["ee"]
    length = profile.size
    if energy <= 0 or length < LOCALIZED_MIN_LEN:
        return []
    bands = exact_bands(profile, quiet)
    if bands is None:
        bands = loud_bands(profile, sums["aa"]) if length >= 3 else []
    found = []
    for start, stop in bands:
        fit = _band_fit({q: float(sums[q][start:stop].sum()) for q in QUANTITIES})
        found.append(band_finding(axis, start, stop, length, float(profile[start:stop].sum()), energy, a2, fit))
    return found


def _band_fit(t: dict) -> dict:
    """``{"offset": c}`` or ``{"factor": k}`` when one explains the error inside a band."""
    n, se, see, saa, sae = t["n"], t["e"], t["ee"], t["aa"], t["ae"]
    if see <= 0 or n <= 0:
        return {}
    if 1.0 - (see - se * se / n) / see >= BAND_FIT:
        return {"offset": se / n}
    if saa > 0 and 1.0 - (see - sae * sae / saa) / see >= BAND_FIT:
        return {"factor": 1.0 + sae / saa}
    return {}
