"""Findings about *where* along an axis two aligned stages differ: padding, localized, shift.

Pure NumPy on in-memory arrays; used by :func:`numtrace.compare.diagnosis.diagnose.diagnose`,
which prepares ``a``/``b`` (non-finite positions zeroed and masked out) and the
total error energy ``E = sum((b - a)^2)``. Each function returns findings with
``explained`` (share of ``E`` they account for) and ``residual`` (relative error
left: ``sqrt(E_left / sum(a^2))``).

Example:
    >>> import numpy as np
    >>> a = np.tile(np.linspace(-60.0, -20.0, 10), (4, 1))
    >>> b = a.copy(); b[:, 7:] = 0.0                      # 0.0 padding in the last 3 frames
    >>> mask = np.ones(a.shape, bool)
    >>> f = find_padding(a, b, mask, float(((b - a) ** 2).sum()), float((a ** 2).sum()), 0.0)
    >>> [(x["axis"], x["start"], x["stop"], x["value"]) for x in f]
    [(1, 7, 10, 0.0)]
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from ..findings import Finding
from .fits import dot_sum

#: A padding region must hold at least this many elements. One value is "constant" by
#: definition, so a one-element region is reported as padding only after (below) the
#: localized error that describes it as well.
PAD_MIN_ELEMENTS = 1
#: ... and at least this share of the error energy (it may share the stage with other errors;
#: a constant border region that disagrees is strong evidence by itself) ...
PAD_MIN_EXPLAINED = 0.05
#: ... or this share for a region of fewer than PAD_FEW elements (a few equal values at the
#: border are weak evidence: an offset of one integer index is no padding).
PAD_FEW, PAD_FEW_EXPLAINED = 4, 0.5
#: An index whose error energy is at most (NOISE_EPS * eps * peak)^2 per element counts as
#: error-free when finding the support of the error (rounding, not the bug).
NOISE_EPS = 64.0
#: When every index has some error, the loud bands (indices whose error energy is at least
#: LOCALIZED_CONTRAST x the median index's, and a tenth of the loudest; their error relative to
#: the reference LOCALIZED_CONTRAST x the rest's, so that a scale error on data loud in one
#: band is no band) must together hold at least this share of the error energy ...
LOCALIZED_ENERGY = 0.5
#: ... in at most this share of the axis (a "band" over most of the axis is no band) ...
LOCALIZED_MAX_SHARE = 0.5
#: ... in at most this many runs (more is scattered error, not a band); each run reported
#: holds at least 5% of the error.
MAX_BANDS = 3
LOCALIZED_CONTRAST = 4.0
#: Axes shorter than this are not searched for a band.
LOCALIZED_MIN_LEN = 2
#: Inside a band, an offset or scale that explains this share is reported with the band.
BAND_FIT = 0.9
#: Lags tried for a shift: 1..min(SHIFT_MAX_LAG, length // 2), both signs, linear and circular.
SHIFT_MAX_LAG = 8
#: A shift must explain at least this share of the error (a linear shift leaves its
#: shifted-in edge unexplained).
SHIFT_MIN_EXPLAINED = 0.7
#: ... and the shifted reference must match the candidate where they overlap: the error
#: left there is at most this share of the candidate's energy (else shifting a lone
#: spike out of the window would "explain" it).
SHIFT_MAX_MISFIT = 0.1
#: Axes shorter than this are not searched for a shift.
SHIFT_MIN_LEN = 2
#: Elements used for the shift search (a fixed random subset of columns beyond it: a shift
#: is a structure of the whole stage, and a quarter million values show it).
SHIFT_MAX_ELEMENTS = 1 << 18


def _rows(x: np.ndarray, axis: int) -> np.ndarray:
    """``x`` as (length along axis, everything else)."""
    return np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)


def _columns(x: np.ndarray, axis: int, keep: np.ndarray) -> np.ndarray:
    """``_rows(x, axis)[:, keep]``, gathering only those columns."""
    if x.ndim == 1:
        return x.reshape(-1, 1)[:, keep]
    moved = np.moveaxis(x, axis, 0)
    return moved[(slice(None),) + np.unravel_index(keep, moved.shape[1:])]


def residual(left: float, a2: float) -> float:
    return math.sqrt(max(left, 0.0) / a2) if a2 > 0 else math.inf


def find_padding(a, b, mask, energy: float, a2: float, eps: float) -> list[Finding]:
    """Border regions where the candidate is one constant and disagrees with the reference.

    The run of constant candidate slices is taken from the border inwards, then
    trimmed of inner slices without error (reference equal to the pad value).
    """
    found: list[Finding] = []
    if energy <= 0:
        return found
    noise2 = _noise2(a, b, eps)
    for axis in range(a.ndim):
        length = a.shape[axis]
        if length < 2:
            continue
        ra, rb, rm = _rows(a, axis), _rows(b, axis), _rows(mask, axis)
        row_err = np.sum((rb - ra) ** 2, axis=1)
        quiet = row_err <= noise2 * rb.shape[1]
        for at_end in (False, True):
            border = length - 1 if at_end else 0
            value = float(rb[border, 0])
            const = np.all((np.abs(rb - value) <= 4 * eps * abs(value)) & rm, axis=1)
            steps = range(length - 1, -1, -1) if at_end else range(length)
            run = [i for i in itertools.takewhile(lambda i: const[i], steps)]
            while run and quiet[run[-1]]:
                run.pop()
            if not run or len(run) == length or len(run) * rb.shape[1] < PAD_MIN_ELEMENTS:
                continue
            start, stop = min(run), max(run) + 1
            region_e = float(row_err[start:stop].sum())
            few = len(run) * rb.shape[1] < PAD_FEW
            if region_e / energy < (PAD_FEW_EXPLAINED if few else PAD_MIN_EXPLAINED):
                continue
            region_a = ra[start:stop]
            lo, hi = float(region_a.min()), float(region_a.max())
            value_a = lo if hi - lo <= 4 * eps * max(abs(lo), abs(hi)) else None
            found.append(
                Finding.of(
                    "padding",
                    axis=axis,
                    start=start,
                    stop=stop,
                    value=value,
                    value_a=value_a,
                    explained=region_e / energy,
                    residual=residual(energy - region_e, a2),
                    single=len(run) * rb.shape[1] == 1,  # ordered after the localized finding (ordering)
                )
            )
    return found


def _noise2(a, b, eps: float) -> float:
    peak = float(max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0)))
    return (NOISE_EPS * eps * peak) ** 2


def shortest_band(profile: np.ndarray, share: float) -> tuple[int, int]:
    """The shortest half-open window ``[start, stop)`` holding ``share`` of ``profile``'s sum.

    Example:
        >>> shortest_band(np.array([0, 1, 0, 9, 8, 0, 0.5]), 0.8)
        (3, 5)
    """
    total = float(profile.sum())
    need = share * total
    best = (0, len(profile))
    lo, acc = 0, 0.0
    for hi in range(len(profile)):
        acc += float(profile[hi])
        while lo <= hi and acc - float(profile[lo]) >= need:
            acc -= float(profile[lo])
            lo += 1
        if acc >= need and hi + 1 - lo < best[1] - best[0]:
            best = (lo, hi + 1)
    return best


def find_localized(a, b, e2, energy: float, a2: float, eps: float = 0.0) -> list[Finding]:
    """Per axis, the bands of indices that hold the error (``e2`` = squared error).

    Exact case: when some indices are error-free (up to rounding), the bands
    are the runs of indices with error (one span, whatever its width short of
    the whole axis; up to :data:`MAX_BANDS` runs, else their overall span).
    Otherwise the bands are the runs of indices at least :data:`LOCALIZED_CONTRAST`
    times the median index (and a tenth of the loudest); together they must
    hold :data:`LOCALIZED_ENERGY` of the error in at most :data:`LOCALIZED_MAX_SHARE`
    of the axis. A band carries ``offset`` (or ``factor``) when one explains the
    error inside it.
    """
    found: list[Finding] = []
    if energy <= 0:
        return found
    noise2 = _noise2(a, b, eps)
    for axis in range(a.ndim):
        length = a.shape[axis]
        if length < LOCALIZED_MIN_LEN:
            continue
        other = tuple(k for k in range(a.ndim) if k != axis)
        profile = e2.sum(axis=other) if other else e2
        bands = exact_bands(profile, noise2 * (a.size // length))
        if bands is None:
            ref = (a * a).sum(axis=other) if other else a * a
            bands = loud_bands(profile, ref) if length >= 3 else []
        for start, stop in bands:
            fit = _band_fit(np.take(a, range(start, stop), axis), np.take(b, range(start, stop), axis))
            found.append(band_finding(axis, start, stop, length, float(profile[start:stop].sum()), energy, a2, fit))
    return found


def band_finding(axis: int, start: int, stop: int, length: int, inside: float, energy: float, a2: float, fit: dict):
    """The ``localized`` finding of band ``[start, stop)`` of an axis of ``length``: the error
    energy ``inside`` it out of ``energy`` (``a2``: the reference's energy), and ``fit``."""
    return Finding.of(
        "localized",
        axis=axis,
        start=int(start),
        stop=int(stop),
        explained=inside / energy,
        residual=residual(energy - inside, a2),
        **fit,
        wide=stop - start > LOCALIZED_MAX_SHARE * length,  # most of the axis: after the models
    )


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Half-open runs of True."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def exact_bands(profile: np.ndarray, quiet: float) -> list[tuple[int, int]] | None:
    """Runs of indices with error when some index has none; None when every index has error."""
    loud = profile > quiet
    if loud.all() or not loud.any():
        return None
    runs = _runs(loud)
    if len(runs) > MAX_BANDS:
        runs = [(runs[0][0], runs[-1][1])]
    return [r for r in runs if r[1] - r[0] < len(profile)]


def loud_bands(profile: np.ndarray, ref: np.ndarray) -> list[tuple[int, int]]:
    """Runs of indices much louder than the typical one, if they hold most of the error and
    are wrong relative to the reference there, not merely where the reference is loud."""
    level = max(LOCALIZED_CONTRAST * float(np.median(profile)), 0.1 * float(profile.max()))
    loud = profile >= level
    runs = _runs(loud)
    total = float(profile.sum())
    width = int(loud.sum())
    share = float(profile[loud].sum()) / total if total else 0.0
    if not runs or len(runs) > MAX_BANDS or share < LOCALIZED_ENERGY or width > LOCALIZED_MAX_SHARE * len(profile):
        return []
    out_err, out_ref = float(profile[~loud].sum()), float(ref[~loud].sum())
    kept = []
    for start, stop in runs:
        err, base = float(profile[start:stop].sum()), float(ref[start:stop].sum())
        contrasted = out_err <= 0 or out_ref <= 0 or base <= 0 or err / base >= LOCALIZED_CONTRAST * out_err / out_ref
        if err >= 0.05 * total and contrasted:
            kept.append((start, stop))
    return kept


def _band_fit(a, b) -> dict:
    """``{"offset": c}`` or ``{"factor": k}`` when one explains the error inside a band."""
    e = (b - a).ravel()
    energy = float(dot_sum(e, e))
    if energy <= 0:
        return {}
    c = float(e.mean())
    if 1.0 - float(np.sum((e - c) ** 2)) / energy >= BAND_FIT:
        return {"offset": c}
    x, y = a.ravel(), b.ravel()
    xx = float(dot_sum(x, x))
    if xx > 0:
        k = float(dot_sum(x, y)) / xx
        if 1.0 - float(np.sum((y - k * x) ** 2)) / energy >= BAND_FIT:
            return {"factor": k}
    return {}


def find_shift(a, b, mask, energy: float, a2: float) -> list[Finding]:
    """The best small lag along one axis: ``b[i] ~ a[i - lag]`` (positive lag: b is later).

    Both a linear shift and a circular one (``np.roll``) are tried; a circular
    lag is reported in (-length/2, length/2]. A linear shift is judged inside
    the overlap: the ``lag`` indices shifted in at the edge are data the
    candidate cannot match, so it must explain :data:`SHIFT_MIN_EXPLAINED` of
    the overlap's error (``overlap_explained``), whatever the edge holds;
    ``explained`` and ``residual`` are still over the whole stage.
    """
    if energy <= 0:
        return []
    best: tuple[tuple[float, float, bool], int, int] | None = None
    rng = np.random.default_rng(0)
    for axis in range(a.ndim):
        length = a.shape[axis]
        if length < SHIFT_MIN_LEN:
            continue
        if a.size > SHIFT_MAX_ELEMENTS:  # the columns of _rows(x, axis) picked without building it
            keep = np.sort(rng.choice(a.size // length, max(1, SHIFT_MAX_ELEMENTS // length), replace=False))
            ra, rb, rm = (_columns(x, axis, keep) for x in (a, b, mask))
        else:
            ra, rb, rm = _rows(a, axis), _rows(b, axis), _rows(mask, axis)
        err2 = (rb - ra) ** 2 * rm
        total = float(err2.sum())
        if total <= 0:
            continue
        b2 = rb * rb * rm
        for lag in range(1, min(SHIFT_MAX_LAG, length // 2) + 1):
            for signed in (lag, -lag):
                rolled = np.roll(ra, signed, axis=0)
                misfit = (rb - rolled) ** 2 * (rm & np.roll(rm, signed, axis=0))
                inner = slice(signed, None) if signed > 0 else slice(None, signed)
                edge = slice(None, signed) if signed > 0 else slice(signed, None)
                options: list[tuple[float, float, bool]] = []  # (share judged, share of the whole stage, linear?)
                if float(misfit.sum()) <= SHIFT_MAX_MISFIT * float(b2.sum()):
                    share = 1.0 - float(misfit.sum()) / total
                    options.append((share, share, False))  # circular
                inner_misfit, inner_error = float(misfit[inner].sum()), float(err2[inner].sum())
                if inner_error > 0 and inner_misfit <= SHIFT_MAX_MISFIT * float(b2[inner].sum()):
                    whole = 1.0 - (inner_misfit + float(err2[edge].sum())) / total
                    options.append((1.0 - inner_misfit / inner_error, whole, True))  # linear: in the overlap
                if not options:
                    continue
                option = max(options)
                if best is None or option[:2] > best[0][:2]:
                    best = (option, axis, signed)
    if best is None or best[0][0] < SHIFT_MIN_EXPLAINED:
        return []
    (judged, explained, linear), axis, lag = best
    overlap: dict[str, Any] = {"overlap_explained": judged} if linear and judged > explained else {}
    return [
        Finding.of(
            "shift",
            axis=axis,
            lag=lag,
            explained=explained,
            residual=residual((1.0 - explained) * energy, a2),
            **overlap,
        )
    ]
