"""The precision a stage's data went through: its own dtypes, or a coarser one upstream.

A stage recorded in float64 on both sides may still carry float32 rounding:
the candidate computed its front end in float32 and then upcast (NumPy 2's
type promotion, a deliberate ``.double()``), or a bfloat16 body fed float32
logits. Judged by float64's tolerance, that inherited rounding reads as
LARGE at a stage that is not wrong. So the default tolerance of a stage
follows its **precision**: the coarsest floating dtype (largest epsilon)
recorded at or before the stage, in each side's own execution order, on
either side. Integer and bool stages carry no rounding and are skipped; a
trace with no stored order (natural sort is not execution order) adds only
the stage's own dtypes. An explicit tolerance (``--tol``, a tolerance file)
always wins over the inherited one.

The rule reads dtypes only (no values), so the table, ``--stage`` and
``trace plot`` give one stage the same tolerance.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare.pairing.align import Pair
    >>> a = MemoryTrace({"mel": np.zeros(2), "conv": np.zeros(2)})
    >>> b = MemoryTrace({"mel": np.zeros(2, np.float32), "conv": np.zeros(2)})
    >>> inherited = Precisions(a, b)
    >>> inherited.at(Pair("mel", "mel")) is None, inherited.at(Pair("conv", "conv"))
    (True, Inherited(dtype='float32', stage='mel', side='b'))
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from .. import dtypes
from .sketches.format import is_sketch_trace, read_sketch


class Inherited(NamedTuple):
    """A coarser precision than a stage's own dtypes: ``dtype``, first recorded at ``stage`` on ``side``."""

    dtype: str
    stage: str
    side: str  # "a" (reference) or "b" (candidate)


def recorded_dtype(trace, name: str) -> str:
    """The dtype a stage was recorded in (a sketch trace keeps it in the stage's sketch)."""
    if is_sketch_trace(trace):
        return read_sketch(trace, name)[1]["dtype"]
    return trace.info(name).dtype


def coarsest_so_far(order: list[str], dtype_of: Callable[[str], str | None], side: str) -> dict[str, Inherited | None]:
    """For each stage, the coarsest floating dtype at or before it in ``order`` (None before any).

    Example:
        >>> kinds = {"ids": "int64", "emb": "bfloat16", "h": "float32", "out": "float32"}
        >>> [v and v.dtype for v in coarsest_so_far(list(kinds), kinds.get, "b").values()]
        [None, 'bfloat16', 'bfloat16', 'bfloat16']
    """
    out: dict[str, Inherited | None] = {}
    current: Inherited | None = None
    for name in order:
        dtype = dtype_of(name)
        if (
            dtype is not None
            and dtypes.is_floating(dtype)
            and (current is None or dtypes.eps(dtype) > dtypes.eps(current.dtype))
        ):
            current = Inherited(dtype, name, side)
        out[name] = current
    return out


class Precisions:
    """The inherited precision of every stage of a reference/candidate pair of traces."""

    def __init__(self, reference, candidate) -> None:
        """Read both traces' dtypes (headers only) in their execution order."""
        self._dtypes = {
            "a": {n: recorded_dtype(reference, n) for n in reference.order},
            "b": {n: recorded_dtype(candidate, n) for n in candidate.order},
        }
        self._upstream = {
            side: coarsest_so_far(list(trace.order), self._dtypes[side].get, side) if trace.has_order else {}
            for side, trace in (("a", reference), ("b", candidate))
        }

    def at(self, pair) -> Inherited | None:
        """The precision ``pair``'s data went through, when coarser than both its own dtypes."""
        own_eps, coarsest, floating = 0.0, None, False
        for side, name in (("a", pair.name_a), ("b", pair.name_b)):
            if name is None:
                continue
            dtype = self._dtypes[side][name]
            floating = floating or dtypes.is_floating(dtype)
            own_eps = max(own_eps, dtypes.eps(dtype))
            upstream = self._upstream[side].get(name)
            if upstream is not None and (coarsest is None or dtypes.eps(upstream.dtype) > dtypes.eps(coarsest.dtype)):
                coarsest = upstream
        if not floating:
            return None  # integer and bool stages must be equal, whatever came before
        return coarsest if coarsest is not None and dtypes.eps(coarsest.dtype) > own_eps else None


def tolerance_for(table, name: str, dtype_a: str, dtype_b: str, inherited: Inherited | None):
    """``(Tolerance, the precision it follows)`` of stage ``name`` from a ``ToleranceTable``: a rule
    or default override wins, and then no precision is inherited.

    Example:
        >>> from numtrace.compare.verdict import ToleranceTable
        >>> up = Inherited("float32", "mel", "b")
        >>> tolerance_for(ToleranceTable(), "conv", "float64", "float64", up)[1] == up
        True
        >>> tolerance_for(ToleranceTable.from_options(["conv=1e-9"]), "conv", "float64", "float64", up)
        (Tolerance(rtol=1e-09, atol=None), None)
    """
    if inherited is not None and table.override(name, dtype_a, dtype_b) is not None:
        inherited = None
    return table.lookup(name, dtype_a, dtype_b, inherited.dtype if inherited else None), inherited
