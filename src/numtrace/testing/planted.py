"""Plant known errors in arrays: the ground truth for tolerance and diagnosis tests.

Each ``plant_*`` function takes a reference array and returns a
:class:`Planted`: the reference, the candidate (reference plus the error),
the planted parameters, and ``finding``, the diagnosis finding (docs/report.md) that
describes the error. No hypothesis needed (``numtrace.testing.strategies``
draws these with hypothesis).

Conventions: ``shift`` is circular, ``b = np.roll(a, lag, axis)`` (so
``b[i] = a[i - lag]``); ``permutation`` is ``b = np.transpose(a, perm)``;
``padding`` sets a border region ``[start, stop)`` of an axis to ``value`` in
the candidate (and to ``value_a`` in the reference when given, as a
reference that pads with silence); ``band`` adds ``delta`` to ``[start, stop)``
of an axis (a ``localized`` error); ``rounding`` rounds to a coarser dtype
(``float32``, ``float16``, ``bfloat16``, float8), the candidate keeping it
as its recorded dtype.

Example:
    >>> import numpy as np
    >>> p = plant_padding(np.full((2, 5), -77.0), axis=1, start=3, stop=5, value=0.0)
    >>> p.candidate.tolist()
    [[-77.0, -77.0, -77.0, 0.0, 0.0], [-77.0, -77.0, -77.0, 0.0, 0.0]]
    >>> p.finding
    {'kind': 'padding', 'axis': 1, 'start': 3, 'stop': 5, 'value': 0.0}
    >>> ref, cand = p.traces("mel")
    >>> float(cand.read("mel")[0, 4])
    0.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import dtypes
from ..trace import MemoryTrace

KINDS = ("offset", "scale", "shift", "padding", "band", "permutation", "rounding")
#: the finding kind (docs/report.md) that names each planted error
FINDING_KIND = {
    "offset": "offset",
    "scale": "scale",
    "shift": "shift",
    "padding": "padding",
    "band": "localized",
    "permutation": "layout",
    "rounding": "precision",
}
ROUNDING_DTYPES = ("float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2")
#: a Planted's repr lists the reference's values up to this many
SHOWN_VALUES = 12


@dataclass
class Planted:
    """A reference array and a candidate that differs from it by a known, planted error.

    ``candidate`` is a value array; ``candidate_dtype`` its recorded dtype
    (``"bfloat16"`` for a bfloat16 rounding, whose values are held as float32).
    """

    kind: str
    params: dict
    reference: np.ndarray
    candidate: np.ndarray
    candidate_dtype: str = field(default="")

    def __post_init__(self) -> None:
        if not self.candidate_dtype:
            self.candidate_dtype = dtypes.name_of(self.candidate)

    @property
    def finding(self) -> dict:
        """The finding this error should be diagnosed as (kind and its fields)."""
        return {"kind": FINDING_KIND[self.kind], **self.params}

    def traces(self, name: str = "x") -> tuple[MemoryTrace, MemoryTrace]:
        """``(reference, candidate)`` one-stage traces holding the pair under ``name``."""
        return (
            MemoryTrace({name: self.reference}, label="<planted reference>"),
            MemoryTrace({name: (self.candidate, self.candidate_dtype)}, label=f"<planted {self.kind}>"),
        )

    def __repr__(self) -> str:  # a falsifying example prints this: the values only when they are few
        fields = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        dtypes = f"{self.reference.dtype} -> {self.candidate_dtype}"
        text = f"Planted({self.kind}: {fields}; shape {self.reference.shape}, {dtypes}"
        if self.reference.size <= SHOWN_VALUES:
            text += f"; reference {self.reference.tolist()}"
        return text + ")"

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis' and IPython's pretty printer
        printer.text(repr(self))


def plant_offset(a: np.ndarray, value: float) -> Planted:
    """``b = a + value``."""
    a = np.asarray(a)
    held = np.asarray(value, a.dtype)  # the offset as the array's dtype holds it
    return Planted("offset", {"value": float(held)}, a, (a + held).astype(a.dtype))


def plant_scale(a: np.ndarray, factor: float) -> Planted:
    """``b = factor * a``."""
    a = np.asarray(a)
    held = np.asarray(factor, a.dtype)
    return Planted("scale", {"factor": float(held)}, a, (a * held).astype(a.dtype))


def plant_shift(a: np.ndarray, axis: int, lag: int) -> Planted:
    """``b = np.roll(a, lag, axis)``: ``b[i] = a[i - lag]`` along ``axis``, circularly."""
    a = np.asarray(a)
    return Planted("shift", {"axis": int(axis), "lag": int(lag)}, a, np.roll(a, lag, axis))


def plant_padding(
    a: np.ndarray, axis: int, start: int, stop: int, value: float, value_a: float | None = None
) -> Planted:
    """The border region ``[start, stop)`` of ``axis`` holds ``value`` in the candidate.

    With ``value_a`` the reference holds that constant there (it pads too, with another value).
    """
    a = np.array(a, copy=True)
    region = _region(a.ndim, axis, start, stop)
    params = {"axis": int(axis), "start": int(start), "stop": int(stop), "value": float(value)}
    if value_a is not None:
        a[region] = value_a
        params["value_a"] = float(value_a)
    b = a.copy()
    b[region] = value
    return Planted("padding", params, a, b)


def plant_band(a: np.ndarray, axis: int, start: int, stop: int, delta: float) -> Planted:
    """``b = a`` except ``[start, stop)`` along ``axis``, where ``b = a + delta``."""
    a = np.asarray(a)
    b = a.copy()
    region = _region(a.ndim, axis, start, stop)
    b[region] = (a[region] + np.asarray(delta, a.dtype)).astype(a.dtype)
    return Planted("band", {"axis": int(axis), "start": int(start), "stop": int(stop)}, a, b)


def plant_permutation(a: np.ndarray, perm) -> Planted:
    """``b = np.transpose(a, perm)`` (a layout change: NCHW vs NHWC, (C, T) vs (T, C))."""
    a = np.asarray(a)
    perm = [int(k) for k in perm]
    return Planted("permutation", {"perm": perm}, a, np.ascontiguousarray(np.transpose(a, perm)))


def plant_rounding(a: np.ndarray, dtype: str) -> Planted:
    """The candidate is ``a`` rounded to ``dtype`` (to nearest, as a framework's cast)."""
    a = np.asarray(a)
    if dtype not in ROUNDING_DTYPES:
        raise ValueError(f"cannot round to {dtype!r}; choose one of {', '.join(ROUNDING_DTYPES)}")
    if dtype in ("float32", "float16"):
        b = a.astype(dtype)
    else:
        b = dtypes.decode(dtypes.encode(a, dtype), dtype)
    return Planted("rounding", {"dtype": dtype}, a, b, dtype)


def plant(kind: str, a: np.ndarray, **params) -> Planted:
    """``plant("offset", a, value=1.5)``: the ``plant_<kind>`` function by name."""
    try:
        function = _PLANTERS[kind]
    except KeyError:
        raise ValueError(f"unknown planted error {kind!r}; choose one of {', '.join(KINDS)}") from None
    return function(a, **params)


def find_finding(findings: list[dict], kind: str, **fields) -> dict:
    """The first finding of ``kind`` whose ``fields`` equal the given ones; AssertionError if none.

    Example:
        >>> found = [{"kind": "offset", "value": -1.5}, {"kind": "padding", "axis": 1, "start": 3}]
        >>> find_finding(found, "padding", axis=1)["start"]
        3
        >>> find_finding(found, "padding", axis=0)
        Traceback (most recent call last):
        ...
        AssertionError: no padding finding with {'axis': 0} among: offset, padding
    """
    for finding in findings:
        if finding.get("kind") == kind and all(finding.get(k) == v for k, v in fields.items()):
            return finding
    kinds = ", ".join(str(f.get("kind")) for f in findings) or "(none)"
    raise AssertionError(f"no {kind} finding with {fields} among: {kinds}")


def max_abs_error(p: Planted) -> float:
    """``max |b - a|`` over elements finite on both sides (inf when the shapes differ)."""
    if p.reference.shape != p.candidate.shape:
        return float("inf")
    with np.errstate(all="ignore"):
        delta = np.abs(p.candidate.astype(np.float64) - p.reference.astype(np.float64))
    delta = delta[np.isfinite(delta)]
    return float(delta.max()) if delta.size else 0.0


def peak(a: np.ndarray) -> float:
    """``max |a|`` over the finite values (0.0 when there are none)."""
    finite = np.abs(np.asarray(a, dtype=np.float64))
    finite = finite[np.isfinite(finite)]
    return float(finite.max()) if finite.size else 0.0


def _region(ndim: int, axis: int, start: int, stop: int) -> tuple:
    index = [slice(None)] * ndim
    index[axis] = slice(start, stop)
    return tuple(index)


_PLANTERS: dict[str, Callable[..., Planted]] = {
    "offset": plant_offset,
    "scale": plant_scale,
    "shift": plant_shift,
    "padding": plant_padding,
    "band": plant_band,
    "permutation": plant_permutation,
    "rounding": plant_rounding,
}
