"""Diagnose a divergence: which kind of error is it, with which parameters?

:func:`diagnose` takes two aligned arrays of one shape (the reference ``a``,
the candidate ``b``) and their recorded dtypes, tests every kind of the report's vocabulary
against the data, and returns the findings that hold, most explaining first.
Pure NumPy, no I/O. Thresholds are the named constants here and in
:mod:`~numtrace.compare.diagnosis.fits` and :mod:`~numtrace.compare.diagnosis.regions`.

Order of the work:

1. ``nonfinite``: NaN/Inf on one side not matched by an equal value on the other.
2. ``precision``: when the finite error is at the rounding level of the coarser
   dtype (rms error <= :data:`PRECISION_RMS` eps x rms reference, and max error
   <= :data:`PRECISION_MAX` eps x peak), that is the whole story: no other
   fit runs, so rounding noise never earns a structured finding.
3. Fits of the whole stage (``offset``, ``scale``/``sign``, ``affine``,
   ``constant``), per index along an axis (``channel_offset``,
   ``channel_scale``), of the error as a function of the reference value
   (``elementwise``), of a permutation of equal-length axes (``layout``), and
   regions (``padding``, ``localized``, ``shift``). Each needs its explained
   share and its significance (:func:`~numtrace.compare.diagnosis.fits.significant`);
   a fit with more parameters must earn them (:func:`better`).
4. With ``related`` stages (earlier stages of the same shape, which the engine
   passes where the error is born): ``proportional`` and ``elementwise`` of
   another stage.
5. ``dtype`` when the recorded dtypes differ.

A stage of more than :data:`DIAGNOSE_MAX_ELEMENTS` elements is diagnosed by
:mod:`~numtrace.compare.diagnosis.sample` from a window of it and exact whole-stage sums:
it passes the window here with ``window=``, which keeps the window's findings
that the sums cannot give (marked ``"source": "sample"``) and adds the exact ones.

Every fitted finding has ``explained`` (share of the error energy it accounts
for, 0..1) and ``residual`` (relative error left after it, as ``diff.rel_rms``).
Findings are ordered by ``explained``, exact ties by specificity
(:data:`PRIORITY`); after one that explains all (:data:`COMPLETE`), the
models that are only other words for it are dropped.

Example:
    >>> import numpy as np
    >>> a = np.linspace(-10.38, 0.0, 400).reshape(20, 20)
    >>> f = diagnose(a, a - 1.46)
    >>> f[0]["kind"], round(f[0]["value"], 6), round(f[0]["explained"], 3)
    ('offset', -1.46, 1.0)
    >>> round(diagnose(a, (a * 0.01).astype(np.float32), "float64", "float32")[0]["db"], 6)
    -40.0
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ... import dtypes
from ..findings import Finding
from ..pairing.layout import candidate_perms, canonical_perm, misfit
from . import sums
from .fits import (
    ELEMENTWISE_MAX,
    SIGN_TOLERANCE,
    dot_sum,
    fit_channels,
    fit_elementwise,
    fit_global,
    fit_proportional,
    significant,
)
from .ordering import COMPLETE, PRIORITY, RICH_KINDS, SIMPLE_KINDS, TIE, as_causes  # noqa: F401 (documented here too)
from .ordering import ordered as _ordered
from .ordering import pruned as _pruned
from .regions import find_localized, find_padding, find_shift

#: The error is rounding when its rms is at most this many eps of the reference's rms
#: (accumulated float32 rounding of FFTs and long sums stays well below 64 eps) ...
PRECISION_RMS = 64.0
#: ... and no element is off by more than this many eps of the larger peak.
PRECISION_MAX = 1024.0
#: A whole-stage fit (offset, scale, sign) must explain at least this share of the error.
MIN_EXPLAINED = 0.5
#: A scale factor outside this range (beyond +-240 dB) says "one side is ~0", not "a gain".
SCALE_RANGE = (1e-12, 1e12)
#: A fit with more parameters (affine, per-channel, elementwise, layout, proportional) must
#: explain this much ...
MIN_EXPLAINED_RICH = 0.9
#: ... and leave at most this share of what the simpler fits leave unexplained ...
RICH_LEFT = 0.5
#: ... which must itself be more than rounding (an exact simple fit needs no richer one).
EXACT = 1e-6
#: The elementwise fit (error = g(reference)) is looser: where the function is not one-to-one
#: (GELU below zero) two inputs share a reference value and the group means blur.
MIN_EXPLAINED_ELEMENTWISE = 0.8
#: Stages up to this many elements are diagnosed whole; larger ones from a window of at most
#: this many elements and exact whole-stage sums (:mod:`~numtrace.compare.diagnosis.sample`).
DIAGNOSE_MAX_ELEMENTS = 1 << 20


def _real(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind == "c":
        return np.ascontiguousarray(x, dtype=np.complex128).view(np.float64).reshape(x.shape + (2,))
    return x.astype(np.float64, copy=False)


def diagnose(
    a, b, dtype_a: str = "float64", dtype_b: str = "float64", related: dict | None = None, window=None
) -> list[Finding]:
    """Findings for two aligned arrays of one shape (see the module docstring).

    ``related``: ``{stage name: reference values}`` of earlier stages of the
    same shape. The ``proportional`` finding says when the error is a multiple
    of one of them (``b - a ~ factor * that stage``: a step, residual or skip
    connection applied differently); ``elementwise`` with ``of`` when it is a
    function of one (another activation of the same input).

    ``window``: a :class:`~numtrace.compare.diagnosis.sample.Window` when ``a``/``b`` are a
    window of a larger stage (see the module docstring).
    """
    a, b = _real(a), _real(b)
    if a.shape != b.shape:
        raise ValueError(f"diagnose needs one shape, got {a.shape} and {b.shape}")
    if a.ndim == 0:
        a, b = a.reshape(1), b.reshape(1)
    findings: list[Finding] = []
    fin_a, fin_b = np.isfinite(a), np.isfinite(b)
    mask = fin_a & fin_b
    if not mask.all():
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        for side, fin in (("a", fin_a), ("b", fin_b)):
            count = int(np.count_nonzero(~mask & ~same & ~fin))
            if count:
                findings.append(Finding.of("nonfinite", side=side, count=count))
        a, b = np.where(mask, a, 0.0), np.where(mask, b, 0.0)
    coarse = dtypes.coarser(dtype_a, dtype_b)
    unit = _unit(a, b)  # fit in units where the peak is about 1: no squares under- or overflow
    limit = ELEMENTWISE_MAX if window is None else window.elementwise_max
    raw = window is not None  # a window's findings are merged with the exact ones before ordering
    layout = None if window is None else functools.partial(window.layout, unit=unit)
    fitted = _numeric(a * unit, b * unit, mask, dtypes.eps(coarse), coarse, bool(findings), raw, limit, layout)
    if related and not any(f["kind"] == "precision" for f in fitted):
        extra = _related_fits(
            a * unit, b * unit, mask, related, unit, _pruned(_ordered(fitted)) if raw else fitted, limit
        )
        if raw:
            fitted = fitted + extra
        elif extra:
            fitted = _pruned(_ordered(fitted + extra))
    has_error = bool(np.any(a != b))
    if raw:
        causes = _pruned(_ordered(window.adjust([unscaled(f, unit) for f in fitted])))
        findings = list(window.nonfinite) + as_causes(causes, has_error)
    else:
        findings += as_causes([unscaled(f, unit) for f in fitted], has_error)
    if dtype_a != dtype_b:
        findings.append(Finding.of("dtype", a=dtype_a, b=dtype_b))
    return findings


def _unit(a: np.ndarray, b: np.ndarray) -> float:
    """A power of two that brings the larger peak near 1 (exact, unless it reaches subnormals)."""
    peak = float(max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0)))
    return math.ldexp(1.0, -math.frexp(peak)[1]) if peak > 0 and math.isfinite(peak) else 1.0


#: Fields that carry the stages' units (undone after fitting in scaled units).
_VALUE_FIELDS = ("value", "value_a", "offset", "peak_at", "peak_error")


def unscaled(finding: Finding, unit: float) -> Finding:
    """A finding fitted in units scaled by ``unit``, in the stage's units."""
    if unit == 1.0:
        return finding
    fields = {key: finding[key] / unit for key in _VALUE_FIELDS if isinstance(finding.get(key), float)}
    if finding.kind == "channel_offset":
        fields.update({key: finding[key] / unit for key in ("min", "max")})
        if "values" in finding:
            fields["values"] = [v / unit for v in finding["values"]]
    return finding.replace(**fields) if fields else finding


def _numeric(
    a,
    b,
    mask,
    eps: float,
    coarse: str,
    nonfinite: bool,
    raw: bool = False,
    limit: int = ELEMENTWISE_MAX,
    layout_fit=None,
) -> list[Finding]:
    e = b - a
    e2 = e * e
    energy = float(e2.sum())
    n = int(mask.sum())
    if energy <= 0 or n == 0:
        return []
    a2 = float((a * a).sum())
    peak = float(max(np.abs(a).max(), np.abs(b).max()))
    rms_e, rms_a = math.sqrt(energy / n), math.sqrt(a2 / n)
    if (
        eps > 0
        and not nonfinite
        and rms_e <= PRECISION_RMS * eps * rms_a
        and float(np.abs(e).max()) <= PRECISION_MAX * eps * peak
    ):
        return [Finding.of("precision", dtype=coarse, residual=rms_e / rms_a if rms_a else math.inf)]
    x, y = a[mask], b[mask]
    found = _window_global(x, y) if raw else _global(x, y)
    if n > 1 and float(y.max()) == float(y.min()) and float(x.max()) != float(x.min()):
        found.append(Finding.of("constant", value=float(y[0]), explained=1.0, residual=0.0))
    simple = max((f["explained"] for f in found), default=0.0)
    rich = []
    channels = fit_channels(a, b, mask, energy, a2)
    for fit in channels.values():
        if fit.significant and better(fit.finding["explained"], simple):
            rich.append(fit.finding)
    best_so_far = max([simple] + [f["explained"] for f in rich])
    elementwise = fit_elementwise(x, y - x, float(dot_sum(x, x)), limit)
    if (
        elementwise
        and elementwise.significant
        and better(elementwise.finding["explained"], best_so_far, MIN_EXPLAINED_ELEMENTWISE)
    ):
        rich.append(elementwise.finding)
    layout = (layout_fit or _equal_shape_layout)(a, b, energy, a2)
    if layout:
        rich.append(layout)
    found += rich
    found += find_padding(a, b, mask, energy, a2, eps)
    found += find_localized(a, b, e2, energy, a2, eps)
    found += find_shift(a, b, mask, energy, a2)
    return found if raw else _pruned(_ordered(found))


def better(rich: float, simple: float, floor: float = MIN_EXPLAINED_RICH) -> bool:
    """Whether a richer fit earns its parameters over the simpler fits' best (``simple``)."""
    left = 1.0 - simple
    return rich >= floor and left > EXACT and 1.0 - rich <= RICH_LEFT * left


def _global(x: np.ndarray, y: np.ndarray) -> list[Finding]:
    return global_findings(fit_global(x, y))


def _window_global(x: np.ndarray, y: np.ndarray) -> list[Finding]:
    """:func:`_global` of a window, from its sums (one pass each, no temporaries but ``e``): in a
    window these fits only decide which richer fits earn their parameters (the whole stage's
    come from its own sums)."""
    e = y - x
    moments = {
        "n": float(x.size),
        "a": float(x.sum()),
        "e": float(e.sum()),
        "ee": float(np.einsum("i,i->", e, e)),
        "aa": float(np.einsum("i,i->", x, x)),
        "ae": float(np.einsum("i,i->", x, e)),
    }
    return global_findings(sums.global_fits(moments))


def global_findings(fits: dict[str, dict]) -> list[Finding]:
    """The ``offset``, ``scale``/``sign`` and ``affine`` findings that ``fit_global``'s fits earn."""
    out = []
    offset, scale, affine = fits.get("offset"), fits.get("scale"), fits.get("affine")
    if offset and offset["significant"] and offset["explained"] >= MIN_EXPLAINED:
        out.append(
            Finding.of("offset", value=offset["value"], explained=offset["explained"], residual=offset["residual"])
        )
    if (
        scale
        and scale["significant"]
        and scale["explained"] >= MIN_EXPLAINED
        and SCALE_RANGE[0] <= abs(scale["factor"]) <= SCALE_RANGE[1]
    ):
        k = scale["factor"]
        if abs(k + 1.0) <= SIGN_TOLERANCE:
            out.append(Finding.of("sign", explained=scale["explained"], residual=scale["residual"]))
        else:
            db = 20.0 * math.log10(abs(k)) if k != 0 else None
            out.append(Finding.of("scale", factor=k, db=db, explained=scale["explained"], residual=scale["residual"]))
    simple = max((f["explained"] for f in out), default=0.0)
    if affine and affine["significant"] and better(affine["explained"], simple):
        out.append(
            Finding.of(
                "affine",
                factor=affine["factor"],
                value=affine["value"],
                explained=affine["explained"],
                residual=affine["residual"],
            )
        )
    return out


def _related_fits(
    a, b, mask, related: dict, unit: float, fitted: list[Finding], limit: int = ELEMENTWISE_MAX
) -> list[Finding]:
    """Fits of the error against earlier stages' reference values: a multiple of one
    (``proportional``), or a function of one (``elementwise`` with ``of``: another
    activation applied to the same input)."""
    x, e = a[mask], (b - a)[mask]
    a2 = float(dot_sum(x, x))
    best: dict[str, Finding] = {}
    for name, values in related.items():  # scaled one at a time: one stage's float64 copy at a time
        values = _real(values)
        if values.shape != a.shape:
            continue
        values = values * unit
        values = np.where(mask & np.isfinite(values), values, 0.0)[mask]
        for fit in (fit_proportional(e, values, x, a2, stage=name), fit_elementwise(values, e, a2, limit, of=name)):
            if fit and fit.significant:
                kind = fit.finding.kind
                if kind not in best or fit.finding["explained"] > best[kind]["explained"]:
                    best[kind] = fit.finding
    simple = max((f.explained for f in fitted if f.explained is not None and not f.wide), default=0.0)
    out = []
    if "proportional" in best and better(best["proportional"]["explained"], simple):
        out.append(best["proportional"])
        simple = max(simple, best["proportional"]["explained"])
    if "elementwise" in best and better(best["elementwise"]["explained"], simple, MIN_EXPLAINED_ELEMENTWISE):
        out.append(best["elementwise"])
    return out


def _equal_shape_layout(a, b, energy: float, a2: float) -> Finding | None:
    """Equal shapes, but the candidate is the reference with equal-length axes swapped."""
    perms = [p for p, odd in candidate_perms(a.shape, b.shape) if odd is None and list(p) != list(range(a.ndim))]
    if not perms or a.size < 4:
        return None
    scored = sorted((misfit(a, b, p, None, 0), i, p) for i, p in enumerate(perms))
    if scored[0][0] >= 0.1 * misfit(a, b, tuple(range(a.ndim)), None, 0):
        return None  # on the sampled positions no permutation comes close: skip the full check
    perm = canonical_perm(scored[0][2], a.shape)
    left = float(np.sum((b - np.transpose(a, perm)) ** 2))
    explained = 1.0 - left / energy
    if explained < MIN_EXPLAINED_RICH or not significant(energy, left, a.size, 1, 1):
        return None
    return Finding.of(
        "layout",
        perm=[int(p) for p in perm],
        explained=explained,
        residual=math.sqrt(left / a2) if a2 > 0 else math.inf,
    )
