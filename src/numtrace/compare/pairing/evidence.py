"""The evidence that two stages of different names are the same stage: names, shapes, values.

Three measures, each in [0, 1], used to pair the stages that names alone left unpaired
(:mod:`numtrace.compare.pairing.sequence`):

- :func:`name_similarity`: the names as token sequences (split at ``.``, ``/``, ``:``, ``_``,
  ``-``, ``@``, camelCase and between letters and digits: ``mlp1`` is ``mlp``, ``1``; MLX's
  ``layers.N`` read as torch's ``N``), compared by an edit distance where numbers meet only
  when equal (``mod3`` is not ``mod4``), equal words cost nothing and a word that abbreviates
  the other costs a quarter (``out`` / ``output``, ``attn`` / ``attention``).
- :func:`shape_similarity`: 1 for equal shapes, 0.9 equal once length-1 axes are dropped, 0.8 a
  permutation of the axes, 0.5 one axis of another length (a cropped frame axis); None when the
  two cannot be lined up at all.
- :func:`value_similarity` of two :class:`Signature` s: the distributions of the values (mean,
  spread and quantiles of a strided sample, so a permuted layout has the same signature), 1 when
  they agree to rounding, near 0 when they differ by more than a few percent of the spread.

Example:
    >>> round(name_similarity("mod3.out", "Mod3.output"), 3), round(name_similarity("mod3.out", "Mod4.output"), 3)
    (0.917, 0.583)
    >>> shape_similarity((1, 80, 312), (80, 312)), shape_similarity((2, 3), (3, 2)), shape_similarity((2,), (5, 5))
    (0.9, 0.8, None)
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 1000)
    >>> value_similarity(signature(x), signature(x + 1e-7)) > 0.99
    True
    >>> value_similarity(signature(x), signature(x + 0.5)) < 0.01
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .layout import candidate_perms, squeeze_shape

_SPLIT = re.compile(r"[./:_\-\s]+|(?=@)")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_DIGITS = re.compile(r"\d+")
#: quantiles of a signature
QUANTILES = (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)
#: values a signature is computed from (a strided sample of larger stages)
SAMPLE = 4096
#: relative distance (in units of the spread) at which value similarity falls to one half
HALF_DISTANCE = 0.02


@lru_cache(maxsize=1 << 16)
def tokens(name: str) -> tuple[str, ...]:
    """``"encoder.layers.0.selfAttn@2"`` -> ``("encoder", "0", "self", "attn", "@2")``; ``mlp1`` -> ``mlp``, ``1``"""
    parts = [p for chunk in _SPLIT.split(name) if chunk for p in _CAMEL.split(chunk) if p]
    out = [p.lower() for p in parts]
    return tuple(t for i, t in enumerate(out) if not (t == "layers" and i + 1 < len(out) and out[i + 1].isdigit()))


@lru_cache(maxsize=1 << 16)
def _token_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    call_a, call_b = a.startswith("@"), b.startswith("@")
    if call_a != call_b:  # a tuple element `x.1` against a call index `x@1`: maybe the same, not surely
        return 0.5 if a.lstrip("@") == b.lstrip("@") else 1.0
    if a.lstrip("@").isdigit() or b.lstrip("@").isdigit():
        return 1.0  # numbers meet only when equal
    short, long_ = sorted((a, b), key=len)
    if len(short) >= 2 and (long_.startswith(short) or _subsequence(short, long_)):
        return 0.25
    return 1.0


def _subsequence(short: str, long_: str) -> bool:
    """``attn`` in ``attention``: an abbreviation keeps the letters in order, the first one first."""
    if short[0] != long_[0]:
        return False
    it = iter(long_)
    return all(c in it for c in short)


@lru_cache(maxsize=1 << 16)
def name_similarity(a: str, b: str) -> float:
    """1 - (token edit distance / the longer name's token count); 1 for equal token sequences."""
    ta, tb = tokens(a), tokens(b)
    if not ta or not tb:
        return 1.0 if ta == tb else 0.0
    previous = [float(j) for j in range(len(tb) + 1)]
    for i, x in enumerate(ta, 1):
        row = [float(i)] + [0.0] * len(tb)
        for j, y in enumerate(tb, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + _token_cost(x, y))
        previous = row
    return max(0.0, 1.0 - previous[-1] / max(len(ta), len(tb)))


def scope_similarity(a: str, b: str) -> float:
    """How much of the shorter name's scope (all but its last token, at least two tokens) the two
    names share from the start: 1 for ``m.layers.1.attn.Func.0`` and ``m.layers.1.attn.rope``."""
    ta, tb = tokens(a), tokens(b)
    scope = min(len(ta), len(tb)) - 1
    if scope < 2:  # a one-word scope (`only_a`, `only_b`) places nothing
        return 0.0
    common = 0
    for x, y in zip(ta, tb):
        if x != y:
            break
        common += 1
    return min(common, scope) / scope


@lru_cache(maxsize=1 << 12)
def shape_similarity(a: tuple, b: tuple) -> float | None:
    """How well two shapes line up (module docstring); None when they cannot."""
    a, b = tuple(a), tuple(b)
    if a == b:
        return 1.0
    sa, _ = squeeze_shape(a, leading_only=False)
    sb, _ = squeeze_shape(b, leading_only=False)
    if sa == sb:
        return 0.9
    if len(sa) == len(sb) and sorted(sa) == sorted(sb):
        return 0.8
    if sa and candidate_perms(sa, sb):  # one axis of another length, in some order of the axes
        return 0.5
    return None


@dataclass(frozen=True)
class Signature:
    """A stage's values in a few numbers: mean, standard deviation and :data:`QUANTILES`."""

    mean: float
    std: float
    quantiles: tuple[float, ...] | None  # None when only statistics are known (a sketch trace)
    minimum: float
    maximum: float


def signature(values: np.ndarray) -> Signature | None:
    """The signature of an array's finite values (a strided sample of at most :data:`SAMPLE`)."""
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind == "c":
        flat = np.abs(flat)
    if flat.dtype.kind not in "fiub" or flat.size == 0:
        return None
    if flat.size > SAMPLE:
        flat = flat[np.linspace(0, flat.size - 1, SAMPLE).astype(np.int64)]
    sample = np.sort(flat.astype(np.float64))
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return None
    at = np.rint(np.asarray(QUANTILES) * (sample.size - 1)).astype(np.int64)  # nearest rank: no interpolation
    q = tuple(sample[at].tolist())
    return Signature(float(sample.mean()), float(sample.std()), q, q[0], q[-1])


def value_similarity(a: Signature | None, b: Signature | None) -> float | None:
    """1 when two signatures agree to rounding, falling towards 0 as they part; None if unknown
    or if either side is constant."""
    if a is None or b is None or a.minimum == a.maximum or b.minimum == b.maximum:
        return None  # a constant (zeros, a mask) looks like any constant: no evidence
    spread = max(a.maximum - a.minimum, b.maximum - b.minimum, abs(a.mean), abs(b.mean), 1e-30)
    parts = [abs(a.mean - b.mean), abs(a.std - b.std), abs(a.minimum - b.minimum), abs(a.maximum - b.maximum)]
    if a.quantiles is not None and b.quantiles is not None:
        parts += [abs(x - y) for x, y in zip(a.quantiles, b.quantiles)]
    distance = sum(parts) / len(parts) / spread
    return 1.0 / (1.0 + (distance / HALF_DISTANCE) ** 2)


def evidence_words(name: float, shape: float, value: float | None) -> str:
    """``"same shape, values agree, names alike"``: what a pairing rests on, in words."""
    words = {1.0: "same shape", 0.9: "same shape but length-1 axes", 0.8: "permuted axes"}.get(
        shape, "one axis differs"
    )
    if value is not None:
        words += ", values agree" if value >= 0.9 else ", values alike" if value >= 0.5 else ", values differ"
    words += ", names alike" if name >= 0.6 else ", names differ" if name < 0.4 else ", names partly alike"
    return words
