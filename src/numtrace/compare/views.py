"""What ``trace plot``, ``trace diff --html`` and ``trace show`` draw or print, computed.

Pure functions, like the rest of :mod:`numtrace.compare`: stages are read only
through the :class:`~numtrace.trace.Trace` objects handed in. The report
modules (:mod:`numtrace.report.plot`, :mod:`numtrace.report.html`,
:mod:`numtrace.report.show`) only format what these return.

- :func:`stage_view`: one paired stage lined up and cut to what a picture can
  show (at most 2-D: length-1 axes dropped, leading axes fixed at the worst
  location), the reference, the candidate, their difference, and the error
  profile along each axis of the whole stage.
- :func:`show_dict` and :func:`stage_dict`: a trace's stages with their
  statistics, and one stage's statistics, hash and channel means (the JSON of
  ``trace show --json`` and ``trace show TRACE STAGE --json``).

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare import stage_pair
    >>> x = np.zeros((3, 1, 4, 5))
    >>> y = x.copy()
    >>> y[2, 0, 1, 3] = 0.5
    >>> a, b = MemoryTrace({"x": x}), MemoryTrace({"x": y})
    >>> view = stage_view(a, b, stage_pair(a, b, "x"), tolerance=(1e-5, 1e-8))
    >>> view.reference.shape, view.axes, view.fixed, float(view.difference[1, 3])
    ((4, 5), (2, 3), ((0, 2),), 0.5)
    >>> [(p["axis"], p["verdict"]) for p in view.profiles][0]
    (0, ['MATCH', 'MATCH', 'LARGE'])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError
from ..probes import StageFilter
from .diagnosis.profile import axis_profiles, worst_locations
from .engine import aligned_arrays
from .pairing.align import Pair
from .result import json_safe, side_dict
from .sketches.format import is_sketch_trace, read_sketch
from .statistics.stats import summarize

#: elements ``trace show`` reads of a stage at a time for its statistics
CHUNK_ELEMENTS = 1 << 20


@dataclass(frozen=True)
class StageView:
    """One paired stage as a picture draws it (:func:`stage_view`).

    ``reference``, ``candidate`` and ``difference`` (candidate − reference) are
    float64 arrays of one or two axes (magnitudes of complex values); ``axes``
    are the axes of the lined-up stage they run along, ``fixed`` the
    ``(axis, index)`` of the leading axes the slice is taken at (the worst
    location), ``shape`` the lined-up stage's shape and ``profiles`` its error
    profile along each axis (:func:`~numtrace.compare.diagnosis.profile.axis_profiles`;
    empty unless a tolerance was given).
    """

    name: str
    name_b: str
    shape: tuple[int, ...]
    reference: np.ndarray
    candidate: np.ndarray
    difference: np.ndarray
    axes: tuple[int, ...]
    fixed: tuple[tuple[int, int], ...] = ()
    profiles: list[dict] = field(default_factory=list)


def stage_view(reference, candidate, pair: Pair, tolerance: tuple | None = None) -> StageView | None:
    """The :class:`StageView` of a paired stage (both names set), or None when the two sides cannot
    be lined up; ``tolerance``, ``(rtol, atol)``, asks for the per-axis profiles with their verdicts."""
    assert pair.name_a is not None and pair.name_b is not None  # a paired stage: callers check
    aligned = aligned_arrays(reference, candidate, pair)
    if aligned is None:
        return None
    av, bv = np.asarray(aligned[0]), np.asarray(aligned[1])
    a2, b2, axes, fixed = two_d_slice(av, bv)
    with np.errstate(invalid="ignore", over="ignore"):
        delta = b2 - a2
    profiles = axis_profiles(av, bv, *tolerance) if tolerance is not None else []
    return StageView(pair.name_a, pair.name_b, tuple(av.shape), a2, b2, delta, axes, fixed, profiles)


def two_d_slice(a: np.ndarray, b: np.ndarray):
    """At most 2-D, as float64 (complex: magnitudes): length-1 axes dropped, leading axes fixed at
    the worst location. Returns ``(a, b, axes drawn, ((fixed axis, index), ...))``.

    Example:
        >>> a2, b2, axes, fixed = two_d_slice(np.zeros((1, 3)), np.ones((1, 3)))
        >>> a2.shape, axes, fixed
        ((3,), (1,), ())
    """
    if np.iscomplexobj(a) or np.iscomplexobj(b):
        a, b = np.abs(a), np.abs(b)
    a, b = a.astype(np.float64), b.astype(np.float64)
    axes = [k for k, n in enumerate(a.shape) if n > 1]
    if a.ndim == 0 or not axes:
        return a.reshape(-1), b.reshape(-1), (0,), ()
    worst = worst_locations(a, b, 1)
    spot = worst[0]["index"] if worst else [0] * a.ndim
    index = [slice(None) if k in axes[-2:] else spot[k] for k in range(a.ndim)]
    fixed = tuple((k, int(spot[k])) for k in axes[:-2])
    return a[tuple(index)], b[tuple(index)], tuple(axes[-2:]), fixed


def _selected(trace, only: list[str] | None) -> list[str]:
    keep = StageFilter(only)
    return [name for name in trace.order if keep(name)]


def show_entry(trace, name: str) -> dict:
    """A stage's line of ``trace show --json``: its statistics (from the sketch in a sketch trace).

    Example:
        >>> from numtrace.trace import MemoryTrace
        >>> entry = show_entry(MemoryTrace({"x": np.arange(4.0)}), "x")
        >>> entry["name"], entry["shape"], entry["mean"]
        ('x', [4], 1.5)
    """
    if not is_sketch_trace(trace):
        return {"name": name, **side_dict(summarize(trace, name, CHUNK_ELEMENTS))}
    from .sketches.diff import side_stats

    means, info = read_sketch(trace, name)
    return {
        "name": name,
        **side_dict(side_stats(info)),
        "axis": info["axis"],
        "channels": int(means.size),
        "hash": info["hash"],
    }


def show_dict(trace, only: list[str] | None = None) -> dict:
    """The JSON form of ``trace show``: path, metadata, order source and per-stage statistics
    (``stats_only`` true for a sketch trace, whose stages also carry ``axis``, ``channels`` and ``hash``).

    Example:
        >>> from numtrace.trace import MemoryTrace
        >>> show_dict(MemoryTrace({"x": np.arange(4.0)}))["stages"][0]["mean"]
        1.5
    """
    return {
        "path": trace.label,
        "order": "recorded" if trace.has_order else "natural",
        "stats_only": is_sketch_trace(trace),
        "metadata": dict(trace.metadata),
        "stages": [show_entry(trace, name) for name in _selected(trace, only)],
    }


def stage_dict(trace, name: str) -> dict:
    """One stage's sketch (read from a sketch trace, computed for a full one), JSON-safe: its
    statistics, ``axis``, ``hash`` and ``channel_means`` (None where a channel has no finite value).

    Example:
        >>> from numtrace.trace import MemoryTrace
        >>> stage = stage_dict(MemoryTrace({"x": np.arange(6.0).reshape(2, 3)}), "x")
        >>> stage["axis"], stage["channel_means"], stage["hash"][:8]
        (1, [1.5, 2.5, 3.5], 'blake2b:')
    """
    if name not in trace:
        raise UsageError(f"no stage {name!r} in {trace.label}; `trace show {trace.label}` lists the stages")
    from .sketches.diff import side_stats, stage_sketch

    means, info = stage_sketch(trace, name)
    return json_safe(
        {
            "name": name,
            "index": trace.order.index(name) + 1,
            "of": len(trace.order),
            "stats_only": is_sketch_trace(trace),
            **side_dict(side_stats(info)),
            "axis": info["axis"],
            "hash": info["hash"],
            "channel_means": means.tolist(),
        }
    )
