"""Diagnose a stage too large to read whole: a window around its worst element, plus exact sums.

A stage of more than ``budget`` elements (the engine's ``diagnose_max_elements``,
:data:`~numtrace.compare.diagnosis.diagnose.DIAGNOSE_MAX_ELEMENTS` by default) is not read
whole. Instead, in one streamed pass over both sides (:func:`~numtrace.compare.diagnosis.sums.scan`):

- a **window** of at most ``budget`` elements is kept (:func:`choose_box`): the
  leading axes are cut to the worst element's index, the first axis that does
  not fit whole to a range around it, and the axes after it stay whole (rows,
  columns, channels keep their structure). When that axis has the length of a
  later one (a square ``(T, T)`` map), both are cut to ranges of one length
  around the worst element (one common range when it fits both), and the
  reference's values in the mirrored window are read too, so that a
  transposition still shows;
- **whole-stage sums** (count, sums of a, e, e², a², a·e; ``e = b - a``),
  overall and per index of every cut axis up to :data:`PROFILE_MAX_LEN` long.

Exact, for the whole stage: ``nonfinite`` and ``precision`` (from the
comparison's statistics, before anything is read), ``offset``, ``scale``,
``sign``, ``affine``, ``constant``, and along the cut axes ``localized``,
``channel_offset`` and ``channel_scale``. From the window, marked
``"source": "sample"`` (``explained`` is then a share of the window's error):
``padding`` (along a cut axis only at the stage's own border), ``shift``,
``layout``, ``elementwise``, ``proportional`` and the bands and per-index fits
along the axes the window keeps whole. Indices are the stage's. The stage's
note names the window and the share of the error it holds.

Example:
    >>> choose_box((4, 1024, 1024), (2, 300, 5), 1 << 20)    # one of 4 leading slices, whole
    ((2, 3), (0, 1024), (0, 1024))
    >>> choose_box((2048, 2048), (700, 720), 1 << 20)         # square: one range on both axes
    ((198, 1222), (198, 1222))
    >>> box = choose_box((2048, 2048), (100, 2000), 1 << 20); box, mirror_box((2048, 2048), box)
    (((0, 1024), (1024, 2048)), ((1024, 2048), (0, 1024)))
    >>> box_text((4, 1024, 1024), ((2, 3), (0, 1024), (0, 1024)))
    '[2, :, :]'
"""

from __future__ import annotations

import math

import numpy as np

from ... import dtypes
from ...trace import Trace
from ..findings import Finding
from ..pairing.layout import candidate_perms, canonical_perm, misfit
from . import sums
from .diagnose import (
    EXACT,
    MIN_EXPLAINED_RICH,
    PRECISION_MAX,
    PRECISION_RMS,
    better,
    diagnose,
    global_findings,
    unscaled,
)
from .fits import Fit, significant
from .ordering import as_causes, ordered, pruned
from .regions import NOISE_EPS

#: Cut axes up to this long get per-index sums (exact bands and per-channel fits along them).
PROFILE_MAX_LEN = 1 << 16
#: Values the elementwise fit sorts in a window (a fixed random subsample beyond it).
SAMPLE_ELEMENTWISE_MAX = 1 << 16
#: Kinds the whole-stage sums give exactly; the window's own fits of them are replaced.
EXACT_KINDS = frozenset({"offset", "scale", "sign", "affine", "constant"})
_ALONG_AXIS = frozenset({"localized", "channel_offset", "channel_scale"})
SUMS_NOTE = "diagnosed from whole-stage sums, streamed (a whole-stage model explains the error: no sample needed)"


def choose_box(shape: tuple, worst: tuple | None, budget: int) -> tuple[tuple[int, int], ...]:
    """The window (one half-open ``(start, stop)`` per axis) of at most ``budget`` elements
    around ``worst`` (the module docstring); the whole stage if it fits."""
    shape = tuple(int(s) for s in shape)
    if math.prod(shape) <= budget or budget < 1:
        return tuple((0, s) for s in shape)
    worst = tuple(worst) if worst is not None and len(worst) == len(shape) else (0,) * len(shape)
    worst = tuple(min(max(int(w), 0), s - 1) for w, s in zip(worst, shape))
    c = next(i for i in range(len(shape)) if math.prod(shape[i + 1 :]) <= budget)
    inner = math.prod(shape[c + 1 :])
    length = min(shape[c], budget // inner)
    box = [(w, w + 1) for w in worst[:c]] + [_around(worst[c], length, shape[c])] + [(0, s) for s in shape[c + 1 :]]
    for j in range(c + 1, len(shape)):
        if shape[j] == shape[c] and length < shape[c]:
            side = min(shape[c], math.isqrt(budget * shape[j] // inner))
            common = _around((worst[c] + worst[j]) // 2, side, shape[c])
            if side >= 2 and all(common[0] <= worst[k] < common[1] for k in (c, j)):
                box[c] = box[j] = common
            elif side >= 2:
                box[c], box[j] = _around(worst[c], side, shape[c]), _around(worst[j], side, shape[j])
            break
    return tuple(box)


def mirror_box(shape: tuple, box: tuple) -> tuple | None:
    """The box with the ranges of two cut axes of one length swapped, when they differ (the
    reference's values there are the candidate's window transposed); None when none do."""
    cut = [i for i, (lo, hi) in enumerate(box) if hi - lo < shape[i]]
    for c in cut:
        for j in cut:
            if j > c and shape[j] == shape[c] and box[j] != box[c] and box[j][1] - box[j][0] == box[c][1] - box[c][0]:
                swapped = list(box)
                swapped[c], swapped[j] = box[j], box[c]
                return tuple(swapped)
    return None


def _around(at: int, length: int, size: int) -> tuple[int, int]:
    start = min(max(at - length // 2, 0), size - length)
    return start, start + length


def box_text(shape: tuple, box: tuple) -> str:
    """``[2, 172:428, :]``: the window in NumPy's index notation."""
    parts = [
        ":" if (lo, hi) == (0, s) else str(lo) if hi - lo == 1 else f"{lo}:{hi}" for (lo, hi), s in zip(box, shape)
    ]
    return "[" + ", ".join(parts) + "]"


def precision_finding(stats_a, stats_b, d, coarse: str) -> Finding | None:
    """The ``precision`` finding of the whole stage from the comparison's statistics (the test
    of :func:`~numtrace.compare.diagnosis.diagnose.diagnose`), None when the error is more than rounding."""
    eps = dtypes.eps(coarse)
    if eps <= 0 or d.rms is None or not d.rms or stats_a.mean is None or d.nonfinite_a or d.nonfinite_b:
        return None
    rms_a = math.hypot(stats_a.mean, stats_a.std)
    peak = max(stats_a.abs_max or 0.0, stats_b.abs_max or 0.0)
    if d.rms <= PRECISION_RMS * eps * rms_a and d.abs_max <= PRECISION_MAX * eps * peak:
        return Finding.of("precision", dtype=coarse, residual=d.rms / rms_a if rms_a else math.inf)
    return None


class Window:
    """A window of a large stage with the stage's sums: what :func:`diagnose` needs to
    diagnose it (``window=``). ``a``/``b`` hold the window's values as read (float32 stays float32)."""

    elementwise_max = SAMPLE_ELEMENTWISE_MAX

    def __init__(
        self,
        shape,
        box,
        a,
        b,
        stage_sums: sums.Sums,
        unit: float,
        stats_a,
        stats_b,
        d,
        dtype_a: str,
        dtype_b: str,
        mirror: tuple | None = None,
    ) -> None:
        self.shape, self.box, self.a, self.b, self.sums, self.unit = tuple(shape), tuple(box), a, b, stage_sums, unit
        self.mirror = mirror  # (box, the reference's values there), see mirror_box
        self.stats_a, self.stats_b, self.dtype_a, self.dtype_b = stats_a, stats_b, dtype_a, dtype_b
        self.cut = {i for i, (lo, hi) in enumerate(self.box) if hi - lo < self.shape[i]}
        self.nonfinite = [
            Finding.of("nonfinite", side=side, count=int(count))
            for side, count in (("a", d.nonfinite_a), ("b", d.nonfinite_b))
            if count
        ]
        self.exact = [unscaled(f, unit) for f in self._exact()]  # before ordering (private keys kept)

    def complete(self) -> bool:
        """Whether a whole-stage model from the sums explains all of the error (up to rounding):
        then a window has nothing to add, and is not diagnosed."""
        return any(f["kind"] in EXACT_KINDS and f["explained"] >= 1.0 - EXACT for f in self.exact)

    def diagnose(self, related: dict | None = None) -> list[Finding]:
        """The stage's findings (``related``: earlier stages' reference values in this window)."""
        return diagnose(self.a, self.b, self.dtype_a, self.dtype_b, related, window=self)

    def layout(self, a, b, energy: float, a2: float, unit: float) -> Finding | None:
        """The ``layout`` finding of the window (``a``, ``b`` as diagnose fits them, in units scaled
        by ``unit``): a permutation of the stage's equal-length axes, tested on the window."""
        identity = tuple(range(a.ndim))
        perms = [p for p, odd in candidate_perms(a.shape, b.shape) if odd is None and p != identity]
        if not perms or a.size < 4:
            return None
        base = misfit(a, b, identity, None, 0)
        best = None
        for perm in perms:
            moved = self._permuted(a, perm, unit)
            if moved is not None:
                score = misfit(moved, b, identity, None, 0)
                if best is None or score < best[0]:
                    best = (score, perm, moved)
        if best is None or best[0] >= 0.1 * base:
            return None
        left = float(np.sum((b - best[2]) ** 2))
        explained = 1.0 - left / energy
        if explained < MIN_EXPLAINED_RICH or not significant(energy, left, a.size, 1, 1):
            return None
        return Finding.of(
            "layout",
            perm=[int(p) for p in canonical_perm(best[1], self.shape)],
            explained=explained,
            residual=math.sqrt(left / a2) if a2 > 0 else math.inf,
        )

    def _permuted(self, a, perm, unit: float):
        """The reference's values that ``transpose(reference, perm)`` puts in the window, or None."""
        n = len(self.shape)
        if len(perm) != n or any(self.shape[perm[i]] != self.shape[i] for i in range(n)):
            return None  # complex parts, or axes of other lengths in the stage
        if all(self.box[perm[i]] == self.box[i] for i in range(n)):
            return np.transpose(a, perm)
        if self.mirror is not None and all(self.mirror[0][perm[i]] == self.box[i] for i in range(n)):
            values = self.mirror[1].astype(np.float64) * unit
            return np.transpose(np.where(np.isfinite(values), values, 0.0), perm)
        return None

    def note(self) -> str:
        size, total = math.prod(self.a.shape), math.prod(self.shape)
        energy = self.sums.total["ee"]
        share = f", {100.0 * self.sums.window_ee / energy:.3g}% of the error" if energy > 0 else ""
        return (
            f"diagnosed from a sample {box_text(self.shape, self.box)} ({size} of {total} elements{share}): "
            f'findings with "source": "sample" describe the sample, the others the whole stage'
        )

    def adjust(self, found: list[Finding]) -> list[Finding]:
        """The window's findings (in the stage's units, before ordering) in the stage's
        indices and marked as from the sample, the ones the sums give exactly replaced."""
        out = []
        for finding in found:
            kind, axis = finding["kind"], finding.get("axis")
            cut = axis in self.cut
            if kind in EXACT_KINDS or (cut and kind in _ALONG_AXIS and axis in self.sums.axes):
                continue
            moved = {}
            if kind in ("localized", "padding"):
                if kind == "padding" and cut and not self._at_border(finding):
                    continue  # the window's edge, not the stage's: no evidence of a padding
                assert axis is not None  # localized and padding findings name their axis
                start = self.box[axis][0] if axis < len(self.box) else 0  # complex: the parts axis
                moved = {"start": finding["start"] + start, "stop": finding["stop"] + start}
            drop = ("values",) if cut and kind in _ALONG_AXIS else ()  # they would be the window's indices
            out.append(finding.replace(drop=drop, **moved, source="sample"))
        return out + self.exact

    def _at_border(self, finding: Finding) -> bool:
        lo, hi = self.box[finding["axis"]]
        return (finding["start"] == 0 and lo == 0) or (finding["stop"] == hi - lo and hi == self.shape[finding["axis"]])

    def _exact(self) -> list[Finding]:
        """Whole-stage findings from the sums, in scaled units."""
        total = self.sums.total
        energy, a2, n = total["ee"], total["aa"], total["n"]
        if energy <= 0:
            return []
        found = global_findings(sums.global_fits(total))
        sa, sb = self.stats_a, self.stats_b
        if n > 1 and sb.min is not None and sb.min == sb.max and sa.min != sa.max:
            found.append(Finding.of("constant", value=sb.min * self.unit, explained=1.0, residual=0.0))
        simple = max((f["explained"] for f in found), default=0.0)
        channels: dict[str, Fit] = {}
        values = math.prod(self.shape) * (2 if np.iscomplexobj(self.a) else 1)
        for axis, along in self.sums.axes.items():
            sums.channel_fits(channels, axis, along, energy, a2, n, values)
        for fit in channels.values():
            if fit.significant and better(fit.finding["explained"], simple):
                found.append(fit.finding)
        eps = dtypes.eps(dtypes.coarser(self.dtype_a, self.dtype_b))
        peak = max(sa.abs_max or 0.0, sb.abs_max or 0.0) * self.unit
        for axis, along in self.sums.axes.items():
            quiet = (NOISE_EPS * eps * peak) ** 2 * (values // self.shape[axis])
            found += sums.localized(axis, along, energy, a2, quiet)
        return found


def scale_unit(stats_a, stats_b) -> float:
    """A power of two that brings the larger peak near 1 (as diagnose's own units)."""
    peak = max(stats_a.abs_max or 0.0, stats_b.abs_max or 0.0)
    return math.ldexp(1.0, -math.frexp(peak)[1]) if peak > 0 and math.isfinite(peak) else 1.0


def diagnose_stage(
    reference: Trace, name_a: str, candidate: Trace, name_b: str, stats_a, stats_b, d, budget: int
) -> tuple[list[Finding], str, Window | None]:
    """Findings of a stage of equal shapes on both sides, larger than ``budget``, its note, and
    its :class:`Window` (None when the comparison's statistics settle it: rounding, or no
    finite difference). ``stats_*``/``d``: the stage's comparison (``compare_stage``)."""
    dtype_a, dtype_b = reference.info(name_a).dtype, candidate.info(name_b).dtype
    shape = tuple(reference.info(name_a).shape)
    dtype = [Finding.of("dtype", a=dtype_a, b=dtype_b)] if dtype_a != dtype_b else []
    nonfinite = [
        Finding.of("nonfinite", side=side, count=int(count))
        for side, count in (("a", d.nonfinite_a), ("b", d.nonfinite_b))
        if count
    ]
    rounding = precision_finding(stats_a, stats_b, d, dtypes.coarser(dtype_a, dtype_b))
    if rounding is not None or not d.rms:
        return nonfinite + ([rounding] if rounding else []) + dtype, "", None
    box = choose_box(shape, d.worst_index, budget)
    unit = scale_unit(stats_a, stats_b)
    finite = not (stats_a.nonfinite or stats_b.nonfinite)
    axes = [i for i, (lo, hi) in enumerate(box) if hi - lo < shape[i] and 2 <= shape[i] <= PROFILE_MAX_LEN]
    a, b, stage_sums = sums.scan(reference, name_a, candidate, name_b, shape, box, unit, finite, axes)
    window = Window(shape, box, a, b, stage_sums, unit, stats_a, stats_b, d, dtype_a, dtype_b)
    if window.complete():
        return nonfinite + as_causes(pruned(ordered(window.exact)), True) + dtype, SUMS_NOTE, None
    mirrored = mirror_box(shape, box)
    if mirrored is not None:
        window.mirror = (mirrored, sums.gather(reference, name_a, shape, mirrored))
    return window.diagnose(), window.note(), window


def related_values(reference: Trace, names, window: Window) -> dict[str, np.ndarray]:
    """Earlier stages' reference values in ``window`` (each read only up to the window's end)."""
    return {name: sums.gather(reference, name, window.shape, window.box) for name in names}
