"""``trace diff A B --html PAGE``: the page of a diff, with the figures of its divergent stages.

:func:`write_html` gives :func:`numtrace.report.html.render_html` the report and, for each stage it
shows in detail, the stage lined up (:func:`numtrace.compare.views.stage_view`, read from the open
traces one stage at a time), then writes the page.

Example:
    >>> import numpy as np, os, tempfile
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare import diff
    >>> a = MemoryTrace({"mel": np.linspace(-80, 0, 400).reshape(20, 20)})
    >>> b = MemoryTrace({"mel": np.linspace(-80, 0, 400).reshape(20, 20) - 1.5})
    >>> path = write_html(diff(a, b), a, b, os.path.join(tempfile.mkdtemp(), "r.html"))
    >>> page = open(path, encoding="utf-8").read()
    >>> page.count('<tr data-verdict='), page.count("data:image/png;base64,"), page.count("mean |Δ| along axis")
    (1, 3, 2)
"""

from __future__ import annotations

from ..compare.pairing.align import stage_pair
from ..compare.views import StageView, stage_view
from ..formats.writer import write_text
from ..report.html import render_html


def write_html(report, reference, candidate, path, map=None) -> str:  # noqa: A002
    """Write the page for ``report`` (whose traces are ``reference`` and ``candidate``, paired with
    the name map ``map``); returns ``path``."""

    def view_of(stage) -> StageView | None:
        pair = stage_pair(reference, candidate, stage.name, map)
        if pair is None or pair.name_a is None or pair.name_b is None:
            return None
        d = stage.diff
        return stage_view(reference, candidate, pair, (d.rtol, d.atol) if d is not None else None)

    return write_text(path, render_html(report, view_of), "HTML report")
