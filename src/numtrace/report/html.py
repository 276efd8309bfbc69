"""``trace diff A B --html report.html``: the diff as one self-contained page to attach to a pull request.

Everything is inline (CSS, a little JavaScript, SVG charts, PNG heatmaps as ``data:`` URIs):
the file opens offline, in any browser, with no CDN. It holds the summary, the stage table
(sortable by any column, filterable by verdict and by name), the relative error by stage with the
first divergence and root cause marked, and for each divergent stage its findings, its error
profile along each axis and the reference, candidate and difference heatmaps (a 2-D slice through
the worst location; a 1-D stage as lines).

A page address can carry its view: ``report.html#sort=rel_err:desc&verdict=LARGE,SMALL&q=layers``.

:func:`render_html` formats what it is given: the report, and for each stage shown in detail what
its figures draw, a :class:`~numtrace.compare.views.StageView` computed on demand, one stage at a
time (:func:`numtrace.commands.html.write_html` opens nothing itself either: it pairs the traces it
is handed with :func:`numtrace.compare.views.stage_view` and writes the page).

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare import diff, stage_pair
    >>> from numtrace.compare.views import stage_view
    >>> a = MemoryTrace({"mel": np.linspace(-80, 0, 400).reshape(20, 20)})
    >>> b = MemoryTrace({"mel": np.linspace(-80, 0, 400).reshape(20, 20) - 1.5})
    >>> def view_of(stage):
    ...     return stage_view(a, b, stage_pair(a, b, stage.name), (stage.diff.rtol, stage.diff.atol))
    >>> page = render_html(diff(a, b), view_of)
    >>> page.count('<tr data-verdict='), "data:image/png;base64," in page, "http" in page
    (1, True, False)
"""

from __future__ import annotations

import math
from html import escape
from typing import Any, Callable

import numpy as np

from .._version import __version__
from . import svg
from .html_page import PAGE, SCRIPT, STYLE
from .layouts import fmt_growth
from .png import data_uri, encode_png, heatmap
from .table import stage_diagnosis, summary_line
from .words import describe_finding, fmt, fmt_percent, fmt_shape, fmt_side

#: divergent stages shown in detail (the first divergence and the root cause always are)
MAX_DETAILS = 12
#: stages larger than this are shown without heatmaps (reading them whole would be the cost)
MAX_IMAGE_ELEMENTS = 1 << 24
#: the ``data-`` attribute of each table column (what the page sorts on), in column order
COLUMN_KEYS = "index stage shape verdict rel_err growth max_abs out_of_tol ref cand diag".split()


#: a stage (a StageResult) -> what its figures draw, a numtrace.compare.views.StageView with its axis
#: profiles, or None when the two sides cannot be lined up
ViewOf = Callable[[Any], Any]


def render_html(report, view_of: ViewOf) -> str:
    """The page for ``report``; ``view_of(stage)`` gives the :class:`~numtrace.compare.views.StageView`
    of a stage shown in detail (module docstring)."""
    return PAGE.format(
        title=escape(f"numtrace: {report.a_label} vs {report.b_label}"), style=STYLE, script=SCRIPT,
        header=_header(report), chart=_chart(report), table=_table(report),
        details=_details(report, view_of), version=escape(__version__),
    )  # fmt: skip


def _header(report) -> str:
    failed, incomplete = report.failed("large"), report.incomplete
    outcome = "not verified" if incomplete else "fails" if failed else "passes"
    badges = "".join(f'<span class="badge v-{v}">{n} {v}</span>' for v, n in report.counts.items())
    notes = "".join(f'<p class="warn">Not verified: {escape(reason)}</p>' for reason in incomplete)
    return (f'<p class="outcome o-{outcome.replace(" ", "-")}">{outcome}</p><p>{badges}</p>'
            f'<p class="summary">{escape(summary_line(report))}</p>{notes}')  # fmt: skip


def _chart(report) -> str:
    points = [(s.name, s.rel_err, s.verdict.value) for s in report.stages]
    if all(verdict == "MISSING" for _, _, verdict in points):
        return "<p>No stage is on both sides: nothing to chart.</p>"
    first, root = report.first_divergence, report.root_cause
    marks = {}
    if first:
        marks[first] = "▶ first divergence"
    if root:
        marks[root] = "▶★ first divergence = root cause" if root == first else "★ root cause"
    return svg.error_chart(points, marks)


def _number(value) -> str:
    """A sort key the page's ``parseFloat`` reads: ``Infinity`` for inf, empty (sorted last) for none or NaN."""
    if value is None or value != value:
        return ""
    if isinstance(value, int):
        return str(value)
    return repr(float(value)).replace("inf", "Infinity")


def _table(report) -> str:
    first, root = report.first_divergence, report.root_cause
    hide_dtype = report.uniform_dtype_change is not None
    rows = []
    for i, stage in enumerate(report.stages, 1):
        d, verdict = stage.diff, stage.verdict.value
        marker = ("▶" if stage.name == first else "") + ("★" if stage.name == root else "")
        marker += "↑" if getattr(stage, "born_here", False) else ""
        name = escape(stage.name) + (f"<br><small>↔ {escape(stage.name_b)}</small>" if stage.name_b else "")
        detail = f' <a href="#stage-{i}">details</a>' if _detailed(stage) else ""
        cells = [
            (i, f"{escape(marker)} {i}"), (stage.name, name + detail), (None, escape(fmt_shape(stage.a, stage.b))),
            (verdict, f'<span class="badge v-{verdict}">{verdict}</span>'),
            (d and d.rel_rms, escape(fmt(d.rel_rms, 3)) if d else "—"),
            (getattr(stage, "growth", None), escape(fmt_growth(stage))),
            (d and d.abs_max, escape(fmt(d.abs_max)) if d else "—"),
            (d and d.mismatch_fraction, escape(fmt_percent(d.mismatched, d.total)) if d else "—"),
            (None, escape(fmt_side(stage.a, two_lines=True)).replace("\n", "<br>")),
            (None, escape(fmt_side(stage.b, two_lines=True)).replace("\n", "<br>")),
            (None, escape(stage_diagnosis(stage, hide_dtype, pairing=False))),
        ]  # fmt: skip
        attrs = "".join(f' data-{k}="{escape(_number(v) if k not in ("stage", "verdict") else str(v))}"'
                        for k, (v, _) in zip(COLUMN_KEYS, cells) if v is not None)  # fmt: skip
        tds = "".join(f"<td>{html}</td>" for _, html in cells)
        rows.append(f'<tr data-verdict="{verdict}"{attrs} class="v-{verdict}">{tds}</tr>')
    return "\n".join(rows)


def _detailed(stage) -> bool:
    return stage.verdict.value in ("SMALL", "LARGE")


def _details(report, view_of: ViewOf) -> str:
    divergent = [(i, s) for i, s in enumerate(report.stages, 1) if _detailed(s)]
    if not divergent:
        return "<p>Every stage present on both sides matches: nothing to show in detail.</p>"
    chosen = [(i, s) for i, s in divergent if s.name in (report.first_divergence, report.root_cause)]
    chosen += [(i, s) for i, s in divergent if (i, s) not in chosen][: max(0, MAX_DETAILS - len(chosen))]
    chosen.sort(key=lambda pair: pair[0])
    parts = [_stage_detail(i, stage, view_of) for i, stage in chosen]
    left = len(divergent) - len(chosen)
    if left:
        parts.append(f'<p class="more">{left} more divergent stage{"s" if left > 1 else ""}: '
                     f"<code>trace diff A B --stage NAME</code> shows any of them.</p>")  # fmt: skip
    return "\n".join(parts)


def _stage_detail(i: int, stage, view_of: ViewOf) -> str:
    head = (f'<h3><span class="badge v-{stage.verdict.value}">{stage.verdict.value}</span> {i}. '
            f"{escape(stage.name)}</h3>")  # fmt: skip
    shape = tuple(stage.a.shape) if stage.a is not None else None
    notes = [n for n in getattr(stage, "alignment_note", "").split("; ") if n] or ([stage.note] if stage.note else [])
    items = notes + [describe_finding(f, shape) for f in stage.diagnosis]
    findings = "".join(f"<li>{escape(item)}</li>" for item in items) or "<li>no finding</li>"
    figures = _figures(stage, view_of)
    return f'<article id="stage-{i}">{head}<ul class="findings">{findings}</ul>{figures}</article>'


def _figures(stage, view_of: ViewOf) -> str:
    if stage.a is None or stage.b is None or "by sketch" in stage.note:
        return '<p class="note">Compared by sketch (statistics only): no values to draw.</p>'
    if max(math.prod(stage.a.shape), math.prod(stage.b.shape)) > MAX_IMAGE_ELEMENTS:
        return '<p class="note">Too large to draw here: <code>trace plot A B --stage NAME</code> draws it.</p>'
    view = view_of(stage)
    if view is None:
        return '<p class="note">The two sides cannot be lined up: nothing to draw.</p>'
    from .plot import slice_note

    a2, b2, delta = view.reference, view.candidate, view.difference
    if a2.ndim < 2:
        pictures = svg.lines(a2.reshape(-1).tolist(), b2.reshape(-1).tolist())
        pictures = (
            f'<figure class="wide">{pictures}<figcaption>reference (solid), candidate (dashed)</figcaption></figure>'
        )
    else:
        both = np.concatenate([a2[np.isfinite(a2)], b2[np.isfinite(b2)]])
        bounds = (float(both.min()), float(both.max())) if both.size else None
        finite = delta[np.isfinite(delta)]
        reach = float(np.abs(finite).max()) if finite.size else 0.0
        scale = f"[{fmt(bounds[0])}, {fmt(bounds[1])}]" if bounds else "no finite value"
        images = [
            (heatmap(a2, bounds=bounds), f"reference {scale}"),
            (heatmap(b2, bounds=bounds), f"candidate {scale}"),
            (heatmap(delta, diverging=True), f"candidate − reference, ±{fmt(reach)}"),
        ]
        pictures = "".join(f'<figure><img src="{data_uri(encode_png(rgb))}" alt="{label}" width="{rgb.shape[1]}" '
                           f'height="{rgb.shape[0]}"><figcaption>{label}</figcaption></figure>'
                           for rgb, label in images)  # fmt: skip
    bars = "".join(f'<figure class="wide">{svg.bars(p["mean_abs"], p.get("verdict"), "mean |Δ|")}'
                   f'<figcaption>mean |Δ| along axis {p["axis"]} ({p["length"]} indices)</figcaption></figure>'
                   for p in view.profiles)  # fmt: skip
    axes = "rows: the first axis shown, columns: the second" if a2.ndim == 2 else ""
    grey = "grey: NaN or inf" if a2.ndim == 2 and not (np.isfinite(a2).all() and np.isfinite(b2).all()) else ""
    where = f"[{slice_note(view)}]" if view.fixed else ""
    caption = f'<p class="note">{escape("; ".join(x for x in (axes, grey, where) if x))}</p>'
    return f'<div class="figures">{pictures}</div>{caption}<div class="figures">{bars}</div>'
