"""Line up two stages whose shapes differ: singleton axes, permuted axes, one axis longer.

:func:`align_arrays` returns both sides as arrays of one shape, in the
reference's axis order, with the findings that say how they were lined up:

- Singleton axes: when the shapes cannot be lined up as they are, leading
  length-1 axes are dropped on both sides (then all length-1 axes);
  ``(1, 80, 312)`` meets ``(80, 312)``. The values keep their C order, so no
  finding is needed (a note says it).
- Layout: when the remaining shapes are permutations of each other, every
  shape-consistent permutation is a candidate; each is scored on a fixed
  random subsample of positions (:data:`SAMPLE`) and the best is used
  (``layout`` finding, ``perm`` such that ``np.transpose(a, perm)`` has the
  candidate's layout; over the squeezed axes when axes had to be squeezed). Ties go to the permutation that
  moves the fewest axes.
- Shape: when exactly one axis differs in length (possibly after a
  permutation), the overlap is compared. The overlap's start in the longer
  side is chosen like a permutation, by score, among offsets 0..d (d = the
  length difference, up to :data:`MAX_OFFSETS`; else start, middle and end);
  ties go to 0 (both start together). ``shape`` finding: ``axis`` (reference
  axis), ``a_len``, ``b_len``, ``a_start``, ``b_start``.

Stages aligned this way are read whole; :data:`ALIGN_MAX_ELEMENTS` bounds
their size (larger ones stay unaligned: LARGE, "shapes differ").

Example:
    >>> import numpy as np
    >>> a = np.arange(24.0).reshape(2, 3, 4)
    >>> av, bv, findings, note = align_arrays(a, a.transpose(0, 2, 1))
    >>> bv.shape, findings, bool((av == bv).all())
    ((2, 3, 4), [Finding(kind='layout', perm=[0, 2, 1])], True)
    >>> av, bv, findings, _ = align_arrays(np.ones((1, 80, 313)), np.ones((1, 80, 312)))
    >>> av.shape, findings[0]["axis"], findings[0]["a_len"], findings[0]["b_len"]
    ((1, 80, 312), 2, 313, 312)
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from ..findings import Finding

#: Stages larger than this (elements, either side) are not aligned by layout or
#: shape, because aligning reads both sides whole (64 Mi elements: 512 MiB in float64).
ALIGN_MAX_ELEMENTS = 1 << 26
#: Positions sampled to score a candidate permutation or offset: enough that a
#: wrong candidate's error shows (it disagrees almost everywhere), cheap at any size.
SAMPLE = 4096
#: Largest rank whose permutations are enumerated (8! = 40320 shape checks).
MAX_RANK = 8
#: At most this many candidates (permutation x offset) are scored.
MAX_CANDIDATES = 256
#: Length differences up to this are searched offset by offset.
MAX_OFFSETS = 16


def squeeze_shape(shape: tuple, leading_only: bool = True) -> tuple[tuple, list[int]]:
    """(squeezed shape, the original axis of each kept axis).

    Example:
        >>> squeeze_shape((1, 80, 1, 312)), squeeze_shape((1, 80, 1, 312), False)
        (((80, 1, 312), [1, 2, 3]), ((80, 312), [1, 3]))
    """
    keep = list(range(len(shape)))
    if leading_only:
        while keep and shape[keep[0]] == 1:
            keep.pop(0)
    else:
        keep = [k for k in keep if shape[k] != 1]
    return tuple(shape[k] for k in keep), keep


def candidate_perms(shape_a: tuple, shape_b: tuple) -> list[tuple[tuple[int, ...], int | None]]:
    """``(perm, mismatched B axis or None)`` with ``shape_b[i] == shape_a[perm[i]]`` but for
    at most one axis; exact ones only when any exist; fewest moved axes first.

    Example:
        >>> candidate_perms((80, 312), (313, 80))
        [((1, 0), 0)]
    """
    n = len(shape_a)
    if n != len(shape_b) or n > MAX_RANK:
        return []
    found = []
    for perm in itertools.permutations(range(n)):
        bad = [i for i in range(n) if shape_b[i] != shape_a[perm[i]]]
        if len(bad) <= 1:
            found.append((perm, bad[0] if bad else None))
    exact = [c for c in found if c[1] is None]
    chosen = exact or found
    chosen.sort(key=lambda c: sum(1 for i, p in enumerate(c[0]) if i != p))
    return chosen[:MAX_CANDIDATES]


def canonical_perm(perm, shape_a: tuple) -> tuple[int, ...]:
    """``perm`` with the reference's length-1 axes kept in their order (they carry no values,
    so every order of them is the same layout; the stable one is reported).

    Example:
        >>> canonical_perm((2, 1, 0), (4, 1, 1))
        (1, 2, 0)
    """
    slots = [i for i, p in enumerate(perm) if shape_a[p] == 1]
    ordered = sorted(perm[i] for i in slots)
    out = list(perm)
    for i, p in zip(slots, ordered):
        out[i] = p
    return tuple(out)


def _offsets(diff: int) -> list[int]:
    if diff <= MAX_OFFSETS:
        return list(range(diff + 1))
    return [0, diff // 2, diff]


def _view(a: np.ndarray, b: np.ndarray, perm, axis_b, offset) -> tuple[np.ndarray, np.ndarray, dict | None]:
    """Both in the reference's (squeezed) axis order, cropped to the overlap along the odd axis."""
    inverse = tuple(int(i) for i in np.argsort(perm))
    bt = np.transpose(b, inverse)
    if axis_b is None:
        return a, bt, None
    axis = perm[axis_b]
    la, lb = a.shape[axis], bt.shape[axis]
    n = min(la, lb)
    a_start, b_start = (offset, 0) if la > lb else (0, offset)
    av = np.take(a, np.arange(a_start, a_start + n), axis=axis)
    bv = np.take(bt, np.arange(b_start, b_start + n), axis=axis)
    return av, bv, {"axis": axis, "a_len": la, "b_len": lb, "a_start": a_start, "b_start": b_start}


def misfit(a: np.ndarray, b: np.ndarray, perm, axis_b, offset, rng_seed: int = 0) -> float:
    """Relative squared error of the candidate on a subsample of overlap positions."""
    inverse = np.argsort(perm)
    shape_b_in_a = [b.shape[i] for i in inverse]
    overlap = list(shape_b_in_a)
    a_starts = [0] * a.ndim
    b_starts = [0] * a.ndim
    if axis_b is not None:
        axis = perm[axis_b]
        la, lb = a.shape[axis], shape_b_in_a[axis]
        overlap[axis] = min(la, lb)
        if la > lb:
            a_starts[axis] = offset
        else:
            b_starts[axis] = offset
    size = math.prod(overlap)
    if size == 0:
        return 0.0
    rng = np.random.default_rng(rng_seed)
    flat = rng.integers(0, size, min(SAMPLE, size)) if size > SAMPLE else np.arange(size)
    idx = np.unravel_index(flat, overlap)  # positions in the reference's axis order
    ia = tuple(i + s for i, s in zip(idx, a_starts))
    ib_in_a = [i + s for i, s in zip(idx, b_starts)]
    ib = tuple(ib_in_a[p] for p in perm)  # B's axis j is the reference's axis perm[j]
    va, vb = _real_parts(np.asarray(a[ia]), np.asarray(b[ib]))
    both = np.isfinite(va) & np.isfinite(vb)
    va, vb = va[both], vb[both]
    den = float(np.sum(va * va) + np.sum(vb * vb))
    num = float(np.sum((vb - va) ** 2))
    return 0.0 if num == 0 else (num / den if den > 0 else math.inf)


def _real_parts(va: np.ndarray, vb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sampled values as float64; complex ones (either side) as real parts then imaginary parts."""
    if va.dtype.kind == "c" or vb.dtype.kind == "c":
        va, vb = (np.concatenate([np.real(v), np.imag(v)]) for v in (va, vb))
    return va.astype(np.float64), vb.astype(np.float64)


def align_arrays(a: np.ndarray, b: np.ndarray):
    """``(a_view, b_view, findings, note)`` of one shape, or None when the shapes cannot be
    lined up (ranks differ beyond singleton axes, or more than one axis differs).

    The views are in the reference's axis order (its singleton axes kept when
    the candidate's squeezed shape is a permutation of the reference's).
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape == b.shape:
        return a, b, [], ""
    note = ""
    sa, keep_a, sb = a.shape, list(range(a.ndim)), b.shape
    candidates = candidate_perms(sa, sb)
    for leading_only in (True, False):
        if candidates:
            break
        sa, keep_a = squeeze_shape(a.shape, leading_only)
        sb, _ = squeeze_shape(b.shape, leading_only)
        candidates = candidate_perms(sa, sb)
        note = f"singleton axes squeezed: {a.shape} vs {b.shape}"
    if not candidates:
        return None
    a2, b2 = a.reshape(sa), b.reshape(sb)
    scored: list[tuple[float, int, tuple[int, ...], int | None, int]] = []
    for perm, axis_b in candidates:
        if axis_b is None:
            offsets = [0]
        else:
            offsets = _offsets(abs(sa[perm[axis_b]] - sb[axis_b]))
        for offset in offsets:
            scored.append((misfit(a2, b2, perm, axis_b, offset), len(scored), perm, axis_b, offset))
            if len(scored) >= MAX_CANDIDATES:
                break
    best = min(scored, key=lambda s: (s[0], s[1]))
    _, _, perm, axis_b, offset = best
    if axis_b is None:
        perm = canonical_perm(perm, sa)
    av, bv, shape = _view(a2, b2, perm, axis_b, offset)
    findings: list[Finding] = []
    if list(perm) != list(range(len(perm))):
        findings.append(Finding.of("layout", perm=[int(p) for p in perm]))
    if shape is not None:
        shape["axis"] = int(keep_a[shape["axis"]])
        fields: dict[str, Any] = {k: int(v) for k, v in shape.items()}
        findings.append(Finding.of("shape", **fields))
    # back to the reference's full shape (singletons included), the odd axis at its overlap length
    full = list(a.shape)
    for squeezed_axis, original in enumerate(keep_a):
        full[original] = av.shape[squeezed_axis]
    av, bv = av.reshape(full), bv.reshape(full)
    return av, bv, findings, note


def layouts(shape_a: tuple, shape_b: tuple) -> list[tuple[int, ...]] | None:
    """How values of ``shape_a`` can take ``shape_b`` (:func:`lay_out_as`), from the shapes alone:
    ``[]`` as they are (or with singleton axes dropped or added), the permutations of the squeezed
    axes that fit (fewest moved first), or None when none does.

    Example:
        >>> layouts((1, 2, 3), (2, 3)), layouts((2, 3), (3, 2)), layouts((2, 3), (4,))
        ([], [(1, 0)], None)
    """
    shape_a, shape_b = tuple(shape_a), tuple(shape_b)
    sa, _ = squeeze_shape(shape_a, leading_only=False)
    sb, _ = squeeze_shape(shape_b, leading_only=False)
    if shape_a == shape_b or sa == sb:
        return []
    return [perm for perm, axis in candidate_perms(sa, sb) if axis is None] or None


def lay_out_as(a: np.ndarray, shape_b: tuple, b: Any = None) -> tuple[np.ndarray | None, str]:
    """The reference's values ``a`` in the candidate's shape ``shape_b``: ``(values, how)``, or
    ``(None, why)`` when no layout fits. As they are; with singleton axes dropped or added; or
    transposed, by the permutation that fits the candidate's own values ``b`` best when several
    shape-consistent ones exist (the one that moves the fewest axes when ``b`` is not given;
    ``b`` may be a function that returns the values, called only then).

    Example:
        >>> a = np.arange(6.0).reshape(1, 2, 3)
        >>> values, how = lay_out_as(a, (1, 3, 2))
        >>> values.shape, how, bool((values[0] == a[0].T).all())
        ((1, 3, 2), 'transposed (1, 0)', True)
        >>> lay_out_as(a, (4, 2))[1]
        'shape (1, 2, 3) cannot be laid out as (4, 2)'
    """
    a = np.asarray(a)
    shape_b = tuple(int(n) for n in shape_b)
    perms = layouts(a.shape, shape_b)
    if perms is None:
        return None, f"shape {a.shape} cannot be laid out as {shape_b}"
    if not perms:
        return (a if a.shape == shape_b else a.reshape(shape_b)), ""
    sa, _ = squeeze_shape(a.shape, leading_only=False)
    sb, _ = squeeze_shape(shape_b, leading_only=False)
    a2 = a.reshape(sa)
    perm = perms[0]
    if len(perms) > 1 and callable(b):
        b = b()
    if len(perms) > 1 and b is not None and np.asarray(b).size == a.size:
        b2 = np.asarray(b).reshape(sb)
        perm = min(perms, key=lambda p: (misfit(a2, b2, p, None, 0), perms.index(p)))
    return np.transpose(a2, perm).reshape(shape_b), f"transposed {tuple(int(p) for p in perm)}"
