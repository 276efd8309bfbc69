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
``sample`` and ``sums`` (diagnosing a large stage from a window and exact
sums), ``sketch`` (diffs of stats-only traces), ``engine`` (the diff itself,
which hands sketch traces to ``sketch``) and ``result`` (the report and its JSON).
"""

from __future__ import annotations

from .diagnosis.diagnose import diagnose
from .engine import aligned_arrays, compare_pair, diff
from .pairing.align import Pair, align, stage_pair
from .pairing.names import NameMap
from .result import FAIL_ON, DiffReport, StageResult
from .statistics.stats import DiffStats, SideStats, compare_stage, summarize
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

__all__ = [
    "DiffReport",
    "DiffStats",
    "FAIL_ON",
    "NameMap",
    "Pair",
    "SideStats",
    "StageResult",
    "Tolerance",
    "ToleranceTable",
    "Verdict",
    "SMALL_FACTOR",
    "VERDICT_HELP",
    "align",
    "aligned_arrays",
    "classify",
    "compare_pair",
    "compare_stage",
    "default_tolerance",
    "diagnose",
    "diff",
    "load_tolerance_toml",
    "parse_tol_option",
    "stage_pair",
    "summarize",
]
