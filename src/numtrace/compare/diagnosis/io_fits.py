"""Diagnosis from a stage's input and output: which simple module the reference and the candidate
each compute, when the output alone cannot tell (a replay: both were given the same input).

With ``x`` the reference's recorded input, ``a`` the reference's output and ``b`` the candidate's
module on ``x`` (:mod:`numtrace.compare.own`), each side is fitted to a few models, over at most
:data:`ROWS` rows or :data:`SAMPLE` values:

- **linear** (``x`` (..., n) -> (..., m), n at most :data:`MAX_FEATURES`, at least n + 1 +
  :data:`SPARE` rows that span every input direction): ``y = x Wᵀ + b`` by least squares, both
  sides within :data:`FIT` (relative residual); with the reference's recorded weight and bias
  (``trace run --inputs --weights``), each hypothesis is tested against them instead, which also
  works when the inputs span a subspace (after a LayerNorm). Then ``transposed_weight`` (the candidate's
  W is the reference's transposed, a square W that is not symmetric), ``bias`` (same W, the bias
  dropped or different), ``weight_scale`` (W scaled by one factor) or ``weight`` (another W).
- **elementwise function** (same shapes): each side against :data:`FUNCTIONS` (exact and tanh
  GELU, SiLU, ReLU, sigmoid, tanh, identity); ``function`` when both are identified and differ.
- **normalisation over the last axis** (same shapes): LayerNorm or RMSNorm, each with an eps of
  :data:`EPS_GRID` and a per-channel gain and bias fitted; ``norm`` when both fit and the kind,
  eps, gain or bias differ.

Each finding's ``explained`` is 1 minus the candidate fit's residual (how well the named model
accounts for the candidate's output).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((64, 6)), rng.standard_normal((6, 6))
    >>> [f.kind for f in io_findings(x, x @ w.T + 1.0, x @ w + 1.0)]
    ['transposed_weight']
    >>> gelu = lambda v: 0.5 * v * (1 + np.tanh(0.7978845608 * (v + 0.044715 * v ** 3)))
    >>> io_findings(x, x * (x > 0), gelu(x))[0]["candidate"]
    'gelu_tanh'
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..findings import Finding

#: rows (leading positions) and values a fit uses at most
ROWS = 4096
SAMPLE = 1 << 16
#: a model fits a side when its relative residual (rms over rms) is at most this
FIT = 1e-4
#: inputs wider than this are not fitted to a linear stage (the least squares would be the cost)
MAX_FEATURES = 1024
#: singular values below this (relative to the largest) count as a direction the inputs lack
RCOND = 1e-5
#: rows beyond the n + 1 unknowns of a linear fit, so that its residual can tell it fits
SPARE = 8
#: weights (or gains) agree when they differ by at most this, relative
SAME = 1e-3
#: the finding kinds fitted here
IO_KINDS = frozenset({"transposed_weight", "bias", "weight_scale", "weight", "function", "norm"})
#: the eps a normalisation is fitted with
EPS_GRID = (1e-12, 1e-8, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
_ERF = np.frompyfunc(math.erf, 1, 1)


def _gelu(v):
    return 0.5 * v * (1.0 + _ERF(v / math.sqrt(2.0)).astype(np.float64))


FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda v: v,
    "relu": lambda v: np.maximum(v, 0.0),
    "gelu": _gelu,
    "gelu_tanh": lambda v: 0.5 * v * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v**3))),
    "silu": lambda v: v / (1.0 + np.exp(-v)),
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    "tanh": np.tanh,
}


def io_findings(x, a, b, weight=None, bias=None) -> list[Finding]:
    """The findings of the module docstring, [] when no model fits both sides; ``weight`` and
    ``bias``: the reference module's own (``trace run --weights``), when recorded."""
    x, a, b = (np.asarray(v, dtype=np.float64) for v in (x, a, b))
    if a.shape != b.shape or not (np.isfinite(x).all() and np.isfinite(a).all() and np.isfinite(b).all()):
        return []
    found = _function(x, a, b) if x.shape == a.shape else []
    if not found and x.ndim >= 1 and x.shape[:-1] == a.shape[:-1]:
        found = _linear(x, a, b, weight, bias)
    if not found and x.shape == a.shape:
        found = _norm(x, a, b)
    return found


def _rel(residual, y) -> float:
    scale = float(np.sqrt(np.mean(y * y)))
    err = float(np.sqrt(np.mean(residual * residual)))
    return err / scale if scale > 0 else (0.0 if err == 0 else math.inf)


def _rows(*arrays):
    flat = [v.reshape(-1, v.shape[-1]) for v in arrays]
    n = flat[0].shape[0]
    take = np.linspace(0, n - 1, ROWS).astype(int) if n > ROWS else slice(None)
    return [v[take] for v in flat]


def _linear(x, a, b, weight=None, bias=None) -> list[Finding]:
    x2, a2, b2 = _rows(x, a, b)
    n = x2.shape[1]
    if weight is not None:
        weight = np.asarray(weight, dtype=np.float64)
        if weight.shape == (a2.shape[1], n):
            return _linear_known(x2, a2, b2, weight, None if bias is None else np.asarray(bias, dtype=np.float64))
    if x2.shape[0] < n + 1 + SPARE or n > MAX_FEATURES:
        return []
    design = np.hstack([x2, np.ones((x2.shape[0], 1))])
    fits = []
    for y in (a2, b2):
        coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=RCOND)
        if rank < n + 1 or _rel(design @ coef - y, y) > FIT:
            return []  # inputs in a subspace (a LayerNorm's rows sum to 0) leave the weight undetermined
        fits.append((coef[:n].T, coef[n]))
    (w_a, bias_a), (w_b, bias_b) = fits
    size = float(np.linalg.norm(w_a)) or 1.0
    explained = 1.0
    if float(np.linalg.norm(w_b - w_a)) <= SAME * size:
        scale = float(np.linalg.norm(bias_a)) + float(np.linalg.norm(bias_b))
        if float(np.linalg.norm(bias_b - bias_a)) <= SAME * max(scale, size * 1e-3):
            return []
        dropped = float(np.linalg.norm(bias_b)) <= SAME * max(float(np.linalg.norm(bias_a)), 1e-30)
        return [Finding.of("bias", dropped=dropped, max_diff=float(np.abs(bias_b - bias_a).max()), explained=explained)]
    if w_a.shape[0] == w_a.shape[1] and float(np.linalg.norm(w_b - w_a.T)) <= SAME * size:
        if float(np.linalg.norm(w_a - w_a.T)) > 0.05 * size:
            return [Finding.of("transposed_weight", shape=list(w_a.shape), explained=explained)]
    factor = float(np.sum(w_a * w_b) / np.sum(w_a * w_a))
    if float(np.linalg.norm(w_b - factor * w_a)) <= SAME * size:
        return [Finding.of("weight_scale", factor=factor, explained=explained)]
    diff = float(np.linalg.norm(w_b - w_a)) / size
    return [Finding.of("weight", rel_diff=diff, explained=explained)]


def _linear_known(x, a, b, weight, bias) -> list[Finding]:
    """The hypotheses of the linear fit, tested against the reference's own weight: the only way
    when the inputs span a subspace (after a LayerNorm every row sums to 0)."""
    plain = x @ weight.T
    given = bias if bias is not None and bias.shape == (weight.shape[0],) else np.zeros(weight.shape[0])
    if _rel(plain + given - a, a) > FIT:
        return []  # the reference is not this linear map: nothing to test against

    def fits(prediction) -> bool:
        return _rel(prediction - b, b) <= FIT

    def offset(prediction):  # the best bias for a prediction, and the prediction with it
        c = (b - prediction).mean(axis=0)
        return c, prediction + c

    if fits(plain + given):
        return []  # the candidate computes the reference's map: nothing to name
    square = weight.shape[0] == weight.shape[1]
    size = float(np.linalg.norm(weight)) or 1.0
    if square and float(np.linalg.norm(weight - weight.T)) > 0.05 * size and fits(offset(x @ weight)[1]):
        return [Finding.of("transposed_weight", shape=list(weight.shape), explained=1.0)]
    if np.any(given) and fits(plain):
        return [Finding.of("bias", dropped=True, max_diff=float(np.abs(given).max()), explained=1.0)]
    c, shifted = offset(plain)
    if fits(shifted):
        return [Finding.of("bias", dropped=False, max_diff=float(np.abs(c - given).max()), explained=1.0)]
    centred, target = plain - plain.mean(axis=0), b - b.mean(axis=0)
    factor = float(np.sum(centred * target) / max(float(np.sum(centred * centred)), 1e-300))
    if fits(offset(factor * plain)[1]):
        return [Finding.of("weight_scale", factor=factor, explained=1.0)]
    return []


def _sample(*arrays):
    flat = [v.reshape(-1) for v in arrays]
    n = flat[0].size
    take = np.linspace(0, n - 1, SAMPLE).astype(int) if n > SAMPLE else slice(None)
    return [v[take] for v in flat]


def _function(x, a, b) -> list[Finding]:
    xs, as_, bs = _sample(x, a, b)
    found = []
    for y in (as_, bs):
        errors = {name: _rel(f(xs) - y, y) for name, f in FUNCTIONS.items()}
        name = min(errors, key=lambda k: errors[k])
        if errors[name] > FIT:
            return []
        found.append((name, errors[name]))
    (name_a, _), (name_b, residual) = found
    if name_a == name_b:
        return []
    return [Finding.of("function", reference=name_a, candidate=name_b, explained=max(0.0, 1.0 - residual))]


def _normalized(x, kind: str, eps: float):
    if kind == "layer":
        centred = x - x.mean(axis=-1, keepdims=True)
        return centred / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + eps)
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)


def _norm_fit(x, y):
    """The best (residual, kind, eps, gain, bias) of a normalisation over the last axis."""
    best = None
    for kind in ("layer", "rms"):
        for eps in EPS_GRID:
            z = _normalized(x, kind, eps)
            zm, ym = z.mean(axis=0), y.mean(axis=0)
            var = ((z - zm) ** 2).mean(axis=0)
            gain = np.where(var > 0, ((z - zm) * (y - ym)).mean(axis=0) / np.where(var > 0, var, 1.0), 0.0)
            bias = ym - gain * zm
            residual = _rel(z * gain + bias - y, y)
            if best is None or residual < best[0]:
                best = (residual, kind, eps, gain, bias)
    return best


def _norm(x, a, b) -> list[Finding]:
    if x.ndim < 2 or x.shape[-1] < 2:
        return []
    x2, a2, b2 = _rows(x, a, b)
    fit_a, fit_b = _norm_fit(x2, a2), _norm_fit(x2, b2)
    if fit_a is None or fit_b is None or fit_a[0] > FIT or fit_b[0] > FIT:
        return []
    fields: dict = {}
    if fit_a[1] != fit_b[1]:
        fields.update(reference_kind=fit_a[1], candidate_kind=fit_b[1])
    if fit_a[2] != fit_b[2]:
        fields.update(reference_eps=fit_a[2], candidate_eps=fit_b[2])
    size = float(np.linalg.norm(fit_a[3])) or 1.0
    if float(np.linalg.norm(fit_b[3] - fit_a[3])) > SAME * size:
        fields["gain_rel_diff"] = float(np.linalg.norm(fit_b[3] - fit_a[3])) / size
    if float(np.linalg.norm(fit_b[4] - fit_a[4])) > SAME * max(size, float(np.linalg.norm(fit_a[4]))):
        fields["bias_max_diff"] = float(np.abs(fit_b[4] - fit_a[4]).max())
    if not fields:
        return []
    return [Finding.of("norm", **fields, explained=max(0.0, 1.0 - fit_b[0]))]
