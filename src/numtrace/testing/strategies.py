"""Hypothesis strategies: arrays, and array or trace pairs with planted, known errors.

Every planted strategy draws a :class:`~numtrace.testing.planted.Planted`:
the reference, the candidate, the planted parameters (``p.params``) and the
finding the diagnosis should report (``p.finding``). Property-test your
tolerances with them ("an offset of 0.01 dB passes, 0.1 dB fails"), or
numtrace's own diagnosis ("a planted offset is diagnosed as that offset").

Defaults: reference arrays are float64 or float32 with 1 to 3 axes of 1 to 8
elements, every element drawn (no fill), values within a magnitude of 1, 1e-3
or 1e3. Planted errors are sized relative to the reference's peak ``max|a|``
and kept only when they move some element by at least ``min_error * max|a|``
(1% by default: LARGE under numtrace's default float32/float64 tolerances);
pass ``min_error=0`` and your own parameter strategies to plant small errors.
``roundings`` plants the rounding to a coarser dtype (MATCH under defaults).

Example:
    >>> from hypothesis import given
    >>> from numtrace.testing import assert_close_diagnosed
    >>> @given(roundings(dtypes=["float32"]))
    ... def test_float32_rounding_passes(p):
    ...     assert_close_diagnosed(p.reference, (p.candidate, p.candidate_dtype))
    >>> test_float32_rounding_passes()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .. import dtypes
from ..trace import MemoryTrace
from .planted import (
    KINDS,
    Planted,
    max_abs_error,
    peak,
    plant_band,
    plant_offset,
    plant_padding,
    plant_permutation,
    plant_rounding,
    plant_scale,
    plant_shift,
)

__all__ = [
    "arrays",
    "offsets",
    "scales",
    "shifts",
    "paddings",
    "bands",
    "permutations",
    "roundings",
    "planted",
    "trace_pairs",
    "PlantedTraces",
    "KINDS",
]

MAGNITUDES = (1.0, 1e-3, 1e3)
_WIDTH: dict[str, Literal[16, 32, 64]] = {"float64": 64, "float32": 32, "float16": 16}
_SIGN = st.sampled_from([1.0, -1.0])
_RELATIVE = st.floats(0.01, 10.0)


def _strategy(value, name: str) -> st.SearchStrategy:
    """A strategy as it is; a list or tuple as sampled_from; anything else as just()."""
    if isinstance(value, st.SearchStrategy):
        return value
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{name}: give at least one value")
        return st.sampled_from(list(value))
    return st.just(value)


@st.composite
def arrays(
    draw,
    dtype=("float64", "float32"),
    shape=None,
    *,
    min_dims=1,
    max_dims=3,
    min_side=1,
    max_side=8,
    magnitudes=MAGNITUDES,
    finite=True,
) -> np.ndarray:
    """Floating arrays: ``dtype`` (a name, a list of names or a strategy; float64/32/16),
    ``shape`` (a tuple or strategy; default from ``min_dims``..``max_side``), values within
    ``±magnitude`` (drawn from ``magnitudes``), every element drawn; ``finite=False`` adds NaN and ±inf.

    Example:
        >>> from hypothesis import given
        >>> @given(arrays("float32", (2, 3), magnitudes=[1e3]))
        ... def test(a):
        ...     assert a.dtype == np.float32 and a.shape == (2, 3) and np.abs(a).max() <= 1e3
        >>> test()
    """
    name = np.dtype(draw(_strategy(dtype, "dtype"))).name
    if name not in _WIDTH:
        raise ValueError(f"arrays() draws float64, float32 or float16, not {name!r} (plant a rounding for bfloat16)")
    if shape is None:
        shape = hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)
    shape = draw(_strategy(shape, "shape")) if isinstance(shape, st.SearchStrategy) else tuple(shape)
    kind = np.dtype(name).type
    magnitude = float(kind(min(float(draw(_strategy(magnitudes, "magnitudes"))), float(np.finfo(kind).max) / 4)))
    elements = st.floats(-magnitude, magnitude, width=_WIDTH[name], allow_subnormal=False)
    if not finite:
        elements = st.one_of(elements, st.sampled_from([float("nan"), float("inf"), float("-inf")]))
    return draw(hnp.arrays(name, shape, elements=elements, fill=st.nothing()))


def _references(array_strategy, **defaults) -> st.SearchStrategy:
    return array_strategy if array_strategy is not None else arrays(**defaults)


#: a planted error must also clear the absolute floor every default tolerance keeps
#: (the smallest normal number of the coarser dtype), by this factor
_ABOVE_TINY = 1e3


def _keep(p: Planted, min_error: float) -> Planted:
    """Reject draws whose planted error does not move any element by ``min_error * max|a|``,
    or only moves values at the dtype's subnormal floor (which default tolerances absorb)."""
    error = max_abs_error(p)
    floor = _ABOVE_TINY * dtypes.tiny(dtypes.coarser(dtypes.name_of(p.reference), p.candidate_dtype))
    assume(error > floor and error >= min_error * peak(p.reference))
    return p


def _relative(draw, a: np.ndarray) -> float:
    scale = peak(a) or 1.0
    return draw(_SIGN) * draw(_RELATIVE) * scale


def _axis(draw, a: np.ndarray, min_len: int = 2) -> int:
    axes = [k for k, n in enumerate(a.shape) if n >= min_len]
    assume(axes)
    return draw(st.sampled_from(axes))


@st.composite
def offsets(draw, arrays=None, values=None, min_error=0.01) -> Planted:
    """``b = a + value``; default ``value`` ±1%..1000% of ``max|a|``. Finding ``offset``."""
    a = draw(_references(arrays))
    value = draw(values) if values is not None else _relative(draw, a)
    return _keep(plant_offset(a, value), min_error)


@st.composite
def scales(draw, arrays=None, factors=None, min_error=0.01) -> Planted:
    """``b = factor * a``; default factor in [0.01, 0.99] or [1.01, 100]. Finding ``scale``."""
    a = draw(_references(arrays))
    default = st.one_of(st.floats(0.01, 0.99), st.floats(1.01, 100.0))
    return _keep(plant_scale(a, draw(factors if factors is not None else default)), min_error)


@st.composite
def shifts(draw, arrays=None, lags=None, min_error=0.01) -> Planted:
    """``b = np.roll(a, lag, axis)`` along an axis of 2+ elements; default ``0 < |lag| <= len/2``."""
    a = draw(_references(arrays, min_side=2))
    axis = _axis(draw, a)
    n = a.shape[axis]
    lag = draw(lags) if lags is not None else draw(_SIGN) * draw(st.integers(1, max(1, n // 2)))
    return _keep(plant_shift(a, axis, int(lag)), min_error)


@st.composite
def paddings(draw, arrays=None, values=None, values_a=None, min_error=0.01) -> Planted:
    """A border region (1 to len-1 elements at the start or end of an axis) holds ``value``.

    Default ``value``: 0.0 (full scale in dB) or ±1%..1000% of ``max|a|``; default
    ``value_a``: None (the reference keeps its values) or the reference's minimum
    (a reference that pads with silence).
    """
    a = draw(_references(arrays, min_side=2))
    axis = _axis(draw, a)
    n = a.shape[axis]
    width = draw(st.integers(1, n - 1))
    start, stop = (n - width, n) if draw(st.booleans()) else (0, width)
    value = draw(values) if values is not None else draw(st.one_of(st.just(0.0), st.none()))
    if value is None:
        value = _relative(draw, a)
    if values_a is not None:
        value_a = draw(values_a)
    else:
        value_a = float(np.nanmin(a)) if draw(st.booleans()) and np.isfinite(a).any() else None
    return _keep(plant_padding(a, axis, start, stop, value, value_a), min_error)


@st.composite
def bands(draw, arrays=None, deltas=None, min_error=0.01) -> Planted:
    """``b = a + delta`` on ``[start, stop)`` of an axis (1 to len-1 elements). Finding ``localized``."""
    a = draw(_references(arrays, min_side=2))
    axis = _axis(draw, a)
    n = a.shape[axis]
    width = draw(st.integers(1, n - 1))
    start = draw(st.integers(0, n - width))
    delta = draw(deltas) if deltas is not None else _relative(draw, a)
    return _keep(plant_band(a, axis, start, start + width, delta), min_error)


@st.composite
def permutations(draw, arrays=None, min_error=0.01) -> Planted:
    """``b = np.transpose(a, perm)`` with a perm other than the identity (2+ axes). Finding ``layout``."""
    a = draw(_references(arrays, min_dims=2))
    assume(a.ndim >= 2)
    perm = draw(st.permutations(range(a.ndim)))
    assume(list(perm) != list(range(a.ndim)))
    return _keep(plant_permutation(a, perm), min_error)


@st.composite
def roundings(draw, arrays=None, dtypes=("float32", "float16", "bfloat16")) -> Planted:
    """The candidate is the reference rounded to a dtype of ``dtypes`` and recorded as it.

    Default references: float64 (float32 too when rounding to float16 or bfloat16),
    magnitudes 1, 1e-3 and 1e3 (within float16's range). Finding ``precision``.
    """
    dtype = draw(_strategy(dtypes, "dtypes"))
    default = ("float64",) if dtype == "float32" else ("float64", "float32")
    a = draw(_references(arrays, dtype=default))
    return plant_rounding(a, dtype)


_BY_KIND: dict[str, Callable[..., st.SearchStrategy[Planted]]] = {
    "offset": offsets,
    "scale": scales,
    "shift": shifts,
    "padding": paddings,
    "band": bands,
    "permutation": permutations,
}


def planted(kinds=KINDS, arrays=None, min_error=0.01) -> st.SearchStrategy:
    """One planted error of any of ``kinds`` (default: all seven)."""
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds must be among {', '.join(KINDS)}, got {list(kinds)!r}")
    options = [
        roundings(arrays) if kind == "rounding" else _BY_KIND[kind](arrays, min_error=min_error) for kind in kinds
    ]
    return st.one_of(*options)


@dataclass
class PlantedTraces:
    """Two traces that agree on every stage except ``stage``, which holds ``planted``."""

    reference: MemoryTrace
    candidate: MemoryTrace
    stage: str
    planted: Planted

    @property
    def finding(self) -> dict:
        return self.planted.finding

    def __repr__(self) -> str:
        return f"PlantedTraces({len(self.reference.order)} stages, {self.planted!r} at {self.stage!r})"

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))


@st.composite
def trace_pairs(draw, kinds=KINDS, stages=st.integers(1, 5), arrays=None, min_error=0.01, names=None) -> PlantedTraces:
    """A reference and a candidate trace of 1..5 stages (``stage.0``...), one with a planted error.

    The other stages are identical on both sides (the error does not propagate).
    ``names``: a list of stage names to use instead (its length sets the count).

    Example:
        >>> from hypothesis import given
        >>> from numtrace.compare import diff
        >>> @given(trace_pairs(kinds=["offset"]))
        ... def test_first_divergence(t):
        ...     assert diff(t.reference, t.candidate).first_divergence == t.stage
        >>> test_first_divergence()
    """
    count = len(names) if names is not None else draw(_strategy(stages, "stages"))
    names = list(names) if names is not None else [f"stage.{i}" for i in range(count)]
    where = draw(st.integers(0, count - 1))
    p = draw(planted(kinds, arrays, min_error))
    reference, candidate = {}, {}
    for index, name in enumerate(names):
        if index == where:
            reference[name], candidate[name] = p.reference, (p.candidate, p.candidate_dtype)
        else:
            values = draw(_references(arrays))
            reference[name], candidate[name] = values, values.copy()
    return PlantedTraces(
        MemoryTrace(reference, label="<planted reference>"),
        MemoryTrace(candidate, label="<planted candidate>"),
        names[where],
        p,
    )
