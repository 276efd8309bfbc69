"""One stage in detail (``trace diff A B --stage NAME``): the data; :mod:`numtrace.report.stage` renders it.

:func:`stage_detail` is the one place that chooses between a full comparison
(both stages read whole: the per-index error profile along each axis and the
worst locations, :mod:`numtrace.compare.diagnosis.profile`) and a comparison
by sketch, when either trace is stats-only
(:func:`numtrace.compare.sketches.detail.sketch_stage_detail`), as
:func:`numtrace.compare.diff` does for a whole trace. For a sharded candidate
(:class:`numtrace.sharded.ShardedTrace`, bound to the reference) the stage is
the ranks' combination, with ``sharding`` and its findings as in the whole diff.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> a = MemoryTrace({"mel": np.linspace(-80.0, 0.0, 40).reshape(4, 10)})
    >>> b = MemoryTrace({"mel": np.linspace(-80.0, 0.0, 40).reshape(4, 10) - 1.5})
    >>> detail = stage_detail(a, b, "mel")
    >>> data = detail.to_dict()
    >>> data["verdict"], data["diagnosis"][0]["kind"], data["profiles"][1]["length"]
    ('LARGE', 'offset', 10)
"""

from __future__ import annotations

from .diagnosis.profile import axis_profiles, worst_locations
from .engine import add_sharding, aligned_arrays, compare_pair
from .pairing.align import paired_stage
from .result import StageDetail
from .rootcause import relative_error
from .sketches.detail import sketch_stage_detail
from .sketches.format import is_sketch_trace
from .verdict import ToleranceTable


def stage_detail(
    reference,
    candidate,
    name: str,
    *,
    tolerances: ToleranceTable | None = None,
    map=None,  # noqa: A002
    worst: int = 10,
) -> StageDetail:
    """Everything the drill-down of stage ``name`` shows; UsageError when no stage is called ``name``."""
    if is_sketch_trace(reference) or is_sketch_trace(candidate):
        return sketch_stage_detail(reference, candidate, name, tolerances=tolerances, map=map)
    pair = paired_stage(reference, candidate, name, map)
    result = compare_pair(reference, candidate, pair, tolerances if tolerances is not None else ToleranceTable())
    if callable(getattr(candidate, "sharding", None)):  # the rank traces of a sharded run, bound to the reference
        add_sharding(candidate, [pair], [result])
    result.rel_err = relative_error(result)
    extra: dict = {"profiles": [], "worst": []}
    aligned = aligned_arrays(reference, candidate, pair)
    if aligned is not None:
        av, bv, _, _ = aligned
        d = result.diff
        tolerance = (d.rtol, d.atol) if d is not None else (None, None)
        extra["profiles"] = axis_profiles(av, bv, *tolerance)
        extra["worst"] = worst_locations(av, bv, worst)
    return StageDetail(result, extra)
