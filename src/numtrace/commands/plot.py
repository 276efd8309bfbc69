"""``trace plot``: open both traces, compare them and draw the overview or one stage.

:func:`run_plot` is the command; :func:`plot_stage` picks the picture of one
stage: the channel means of a comparison by sketch when either trace is
stats-only (:func:`numtrace.report.sketch_plot.plot_sketch_stage`), else the
reference, candidate and difference (:func:`numtrace.report.plot.plot_stage`).

Example:
    >>> import numpy as np, os, tempfile
    >>> from numtrace.trace import MemoryTrace
    >>> a = MemoryTrace({"mel": np.linspace(-80, 0, 400).reshape(20, 20)})
    >>> b = MemoryTrace({"mel": np.linspace(-80, 0, 400).reshape(20, 20) - 1.5})
    >>> out = plot_stage(a, b, "mel", os.path.join(tempfile.mkdtemp(), "mel.png"))
    >>> os.path.getsize(out) > 1000
    True
    >>> plot_stage(a, MemoryTrace({"x": np.zeros(2)}), "mel", "x.png")
    Traceback (most recent call last):
    ...
    numtrace.errors.UsageError: stage 'mel' is only in the reference: nothing to plot
"""

from __future__ import annotations

from ..compare import ToleranceTable, compare_pair, diff
from ..compare.pairing.align import paired_stage
from ..compare.pairing.names import as_name_map
from ..compare.pairing.options import check_options
from ..compare.sketches.format import is_sketch_trace
from ..compare.views import stage_view
from ..errors import UsageError
from ..formats import load


def run_plot(reference, candidate, out, *, stage: str | None = None, only=None, tolerances=None, map=None) -> str:  # noqa: A002
    """``trace plot``: open both traces and write the overview or the stage plot; returns ``out``."""
    from ..report.plot import plot_overview

    map = as_name_map(map)  # noqa: A001
    with load(reference, role="reference trace") as ref, load(candidate, role="candidate trace") as cand:
        check_options(ref, cand, tolerances, map)
        if stage is not None:
            return plot_stage(ref, cand, stage, out, tolerances=tolerances, map=map)
        report = diff(ref, cand, tolerances=tolerances, only=only, map=map)
        if only and not report.stages:
            raise UsageError(f"no stage matches --only {' '.join(only)}")
        report.a_label, report.b_label = str(reference), str(candidate)
        stats_only = tuple(label for label, t in (("reference", ref), ("candidate", cand)) if is_sketch_trace(t))
        return plot_overview(report, out, stats_only)


def plot_stage(reference, candidate, name: str, out, *, tolerances: ToleranceTable | None = None, map=None) -> str:  # noqa: A002
    """Draw stage ``name`` of two open traces to ``out`` (module docstring); returns ``out``."""
    if is_sketch_trace(reference) or is_sketch_trace(candidate):
        from ..compare.sketches.detail import sketch_stage_detail
        from ..report.sketch_plot import plot_sketch_stage

        detail = sketch_stage_detail(reference, candidate, name, tolerances=tolerances, map=map)
        return plot_sketch_stage(detail, out, name)
    from ..report.plot import plot_stage as draw

    pair = paired_stage(reference, candidate, name, map, what="plot")
    view = stage_view(reference, candidate, pair)
    if view is None:
        raise UsageError(f"stage {name!r}: the shapes cannot be lined up, nothing to plot side by side")
    return draw(view, compare_pair(reference, candidate, pair, tolerances or ToleranceTable()), out)
