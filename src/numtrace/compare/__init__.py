"""Compare two traces stage by stage: alignment, verdicts, diagnosis and the root cause.

Pure functions: stages are read only through the :class:`~numtrace.trace.Trace`
objects handed in; nothing here opens a file.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> mel = np.linspace(-10.38, 0.0, 24).reshape(1, 2, 12)
    >>> a = MemoryTrace({"enc": np.ones(4), "mel": mel}, label="py")
    >>> b = MemoryTrace({"enc": np.ones(4), "mel": mel - 1.46}, label="swift")
    >>> report = diff(a, b)
    >>> report.first_divergence, report.counts["LARGE"], bool(report)
    ('mel', 1, False)
    >>> round(report.stages[1].diff.abs_mean, 6)
    1.46
    >>> f = report.stages[1].diagnosis[0]
    >>> f["kind"], round(f["value"], 6), report.root_cause
    ('offset', -1.46, 'mel')

Modules: ``align`` and ``names`` (pairing stage names, the map file),
``layout`` (lining up shapes), ``stats`` (streaming metrics), ``verdict``,
``diagnose`` with ``fits`` and ``regions`` (what kind of error),
``rootcause`` (where it is born), ``profile`` (per-index error profiles),
``engine`` (the diff itself) and ``result`` (the report and its JSON).
"""

from __future__ import annotations

from .align import Pair, align
from .diagnose import diagnose
from .engine import aligned_arrays, compare_pair, diff, stage_pair
from .names import NameMap
from .result import FAIL_ON, DiffReport, StageResult
from .stats import DiffStats, SideStats, compare_stage, summarize
from .verdict import (
    SMALL_FACTOR,
    VERDICT_HELP,
    Tolerance,
    ToleranceTable,
    Verdict,
    classify,
    default_tolerance,
    load_tolerance_toml,
    parse_tol_option,
)

# --- issue 7, stats-only traces: a diff involving a sketch trace is a diff by sketch ---------------
_full_diff = diff


def diff(reference, candidate, **options):
    """:func:`numtrace.compare.engine.diff`, or :func:`numtrace.compare.sketch.diff` when either trace
    was recorded in stats-only mode (``trace run --stats``); same arguments, same report."""
    if any("numtrace.sketch" in getattr(t, "metadata", {}) for t in (reference, candidate)):  # sketch.SKETCH_KEY
        from . import sketch

        return sketch.diff(reference, candidate, **options)
    return _full_diff(reference, candidate, **options)
# --- end of issue 7 ----------------------------------------------------------------------------------


__all__ = [
    "DiffReport", "DiffStats", "FAIL_ON", "NameMap", "Pair", "SideStats", "StageResult", "Tolerance",
    "ToleranceTable", "Verdict", "SMALL_FACTOR", "VERDICT_HELP", "align", "aligned_arrays", "classify",
    "compare_pair", "compare_stage", "default_tolerance", "diagnose", "diff", "load_tolerance_toml",
    "parse_tol_option", "stage_pair", "summarize",
]
