"""The ``trace diff`` table: one row per stage in execution order, and a one-line summary.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare import diff
    >>> a = MemoryTrace({"mel": np.linspace(-10, 0, 80)})
    >>> b = MemoryTrace({"mel": np.linspace(-10, 0, 80) - 1.46})
    >>> summary_line(diff(a, b))  # doctest: +NORMALIZE_WHITESPACE
    '1 stage: 0 MATCH, 0 SMALL, 1 LARGE, 0 MISSING. First divergence: mel (LARGE: max |Δ| 1.46,
    100% of elements out of tolerance). Root cause: mel, where the error is born (rel err 0.2521):
    candidate = reference - 1.46 (constant offset, explains 100%).'

Markers in the first column: ``▶`` the first divergence, ``★`` the root cause,
``↑`` a MATCH stage where an error is born under the tolerance (its relative
error jumps x100 over everything before it; see :mod:`numtrace.compare.rootcause`).
"""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..compare.rootcause import JUMP_RATIO
from .words import describe_findings, fmt, fmt_percent, fmt_shape, fmt_side

VERDICT_STYLES = {"MATCH": "green", "SMALL": "yellow", "LARGE": "bold red", "MISSING": "magenta"}


def make_console(width: int | None = None, stderr: bool = False) -> Console:
    """A console that keeps tables readable when stdout is a file or a pipe."""
    stream = sys.stderr if stderr else sys.stdout
    if width is None and not stream.isatty() and "COLUMNS" not in os.environ:
        width = 160
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def fmt_growth(stage) -> str:
    """``×340`` (growth over the previous compared stage), '—' when there is none."""
    growth = getattr(stage, "growth", None)
    if growth is None:
        return "—"
    return "×inf" if growth == float("inf") else f"×{fmt(growth, 2)}"


def stage_diagnosis(stage, hide_dtype: bool = False, limit: int | None = 3, pairing: bool = True) -> str:
    """The diagnosis in words: pairing and alignment notes (the pairing note left out with
    ``pairing=False``: a table shows it as ``a ↔ b``), then the findings."""
    findings = [f for f in stage.diagnosis if not (hide_dtype and f.get("kind") == "dtype")]
    words = describe_findings(findings, tuple(stage.a.shape) if stage.a is not None else None, limit)
    notes = getattr(stage, "alignment_note", "") if words else stage.note
    if not pairing:
        notes = "; ".join(n for n in notes.split("; ") if n and not n.startswith("paired by"))
    return "; ".join(x for x in (notes, words, born_note(stage), precision_note(stage)) if x)


def born_note(stage) -> str:
    """``error born here, under the tolerance (rel err ×1.5e+03 the largest before it)`` for a
    MATCH stage marked ``born_here`` (:mod:`numtrace.compare.rootcause`), else ''."""
    if not getattr(stage, "born_here", False):
        return ""
    return f"error born here, under the tolerance (rel err ×{fmt(stage.jump, 2)} the largest before it)"


def precision_note(stage) -> str:
    """``tolerance float32, inherited from frontend.mel`` when the stage's tolerance follows a
    coarser precision recorded upstream (:mod:`numtrace.compare.precision`), else ''."""
    inherited = getattr(stage, "precision", None)
    if inherited is None:
        return ""
    return f"tolerance {inherited.dtype}, inherited from {inherited.stage}"


def diff_table(report) -> Table:
    table = Table(header_style="bold", pad_edge=False, expand=False)
    table.add_column("", no_wrap=True)
    table.add_column("#", justify="right", no_wrap=True)
    longest = max((max(len(s.name), len(s.name_b or "") + 2) for s in report.stages), default=5)
    table.add_column("stage", overflow="fold", min_width=min(longest, 22), max_width=26)
    table.add_column("shape", overflow="fold", max_width=14)
    table.add_column(Text("reference\n[min, max] mean±std"), overflow="fold", max_width=18)
    table.add_column(Text("candidate\n[min, max] mean±std"), overflow="fold", max_width=18)
    table.add_column(Text("max |Δ|\nmean |Δ|"), justify="right", no_wrap=True)
    table.add_column(Text("rel err\ngrowth"), justify="right", no_wrap=True)
    table.add_column(Text("verdict\nout of tol"), no_wrap=True)
    table.add_column("diagnosis", overflow="fold", min_width=24)
    first, root = report.first_divergence, report.root_cause
    hide_dtype = report.uniform_dtype_change is not None
    for index, stage in enumerate(report.stages, 1):
        verdict = stage.verdict.value
        name = stage.name if not stage.name_b else f"{stage.name}\n↔ {stage.name_b}"
        if stage.only_in:
            name += f" (only in {'reference' if stage.only_in == 'a' else 'candidate'})"
        diff = stage.diff
        is_first = stage.name == first and verdict in ("SMALL", "LARGE")
        is_root = stage.name == root and verdict in ("SMALL", "LARGE")
        marker = Text("▶" if is_first else "", style="bold red") + Text("★" if is_root else "", style="bold magenta")
        if getattr(stage, "born_here", False):
            marker += Text("↑", style="bold yellow")
        table.add_row(
            marker,
            Text(str(index)),
            Text(name, style="bold" if is_first or is_root else ""),
            Text(fmt_shape(stage.a, stage.b)),
            Text(fmt_side(stage.a, two_lines=True)),
            Text(fmt_side(stage.b, two_lines=True)),
            Text(f"{fmt(diff.abs_max)}\n{fmt(diff.abs_mean)}" if diff else "—"),
            Text(f"{fmt(diff.rel_rms, 2)}\n{fmt_growth(stage)}" if diff else "—"),
            Text(verdict, style=VERDICT_STYLES[verdict])
            + Text(f"\n{fmt_percent(diff.mismatched, diff.total)}" if diff else ""),
            Text(stage_diagnosis(stage, hide_dtype, pairing=False)),
        )
    return table


def root_cause_text(report) -> str:
    """The sentence that names the root cause and what kind of error it is ('' when none)."""
    root = report.root_cause
    if root is None:
        return ""
    stage = report[root]
    jump = getattr(stage, "jump", None)
    born = jump is not None and jump >= JUMP_RATIO
    where = (
        f"{root}, where the error is born"
        if born
        else f"most likely {root}, the largest jump (×{fmt(jump, 2)} the largest relative error before it)"
        if jump is not None
        else root
    )
    if born and stage.rel_err is not None and jump is not None and jump != float("inf"):
        earlier = stage.rel_err / jump if jump else 0.0
        where += f" (rel err {fmt(stage.rel_err)}" + (
            f", up from {fmt(earlier, 2)} before it)"
            if earlier > 1e-300 and stage.name != report.stages[0].name
            else ")"
        )
    elif born and stage.rel_err == float("inf"):
        where += " (a non-finite value appears)"
    findings = [f for f in stage.diagnosis if f.get("kind") not in ("dtype", "precision")]
    words = describe_findings(findings, tuple(stage.a.shape) if stage.a is not None else None, 3)
    notes = [n for n in getattr(stage, "alignment_note", "").split("; ") if n and not n.startswith("paired by")]
    words = "; ".join(notes + ([words] if words else [])) or stage.note
    return f"Root cause: {where}" + (f": {words}." if words else ".")


def summary_line(report) -> str:
    counts = report.counts
    total = len(report.stages)
    parts = ", ".join(f"{counts[v]} {v}" for v in ("MATCH", "SMALL", "LARGE", "MISSING"))
    line = f"{total} stage{'s' if total != 1 else ''}: {parts}."
    incomplete = getattr(report, "incomplete", [])
    unverified = f" Not verified: {'; '.join(incomplete)}." if incomplete else ""
    first = report.first_divergence
    if first is None:
        if not getattr(report, "compared", total):
            return line + unverified
        jump = getattr(report, "largest_jump", None)
        if jump is not None:
            stage = report[jump]
            return (
                f"{line} No divergence beyond tolerance; the largest error jump is at {jump} (rel err "
                f"{fmt(stage.rel_err, 2)}, ×{fmt(stage.jump, 2)} the largest before it).{unverified}"
            )
        return line + " No divergence: every stage present on both sides matches." + unverified
    stage = next(s for s in report.stages if s.name == first)
    detail = stage.verdict.value
    if stage.diff is not None and stage.diff.total == 0 and "by sketch" in stage.note:  # no element compared
        detail += f": max |Δ| >= {fmt(stage.diff.abs_max)}, compared by sketch"
    elif stage.diff is not None:
        out_of_tol = fmt_percent(stage.diff.mismatched, stage.diff.total)
        detail += f": max |Δ| {fmt(stage.diff.abs_max)}, {out_of_tol} of elements out of tolerance"
    elif stage.note:
        detail += f": {stage.note}"
    line += f" First divergence: {first} ({detail})."
    cause = root_cause_text(report)
    return (f"{line} {cause}" if cause else line) + unverified


def print_diff(report, width: int | None = None) -> None:
    console = make_console(width)
    for side, label in (("a", report.a_label), ("b", report.b_label)):
        status = getattr(report, "status", {}).get(side)
        line = Text(f"{'reference' if side == 'a' else 'candidate'}: {label}")
        if status not in (None, "complete"):
            line += Text(f"  (recording did not complete: {status})", style="bold red")
        console.print(line)
    change = report.uniform_dtype_change
    if change:
        console.print(
            Text(
                f"dtypes: reference {change[0]}, candidate {change[1]} at every stage "
                "(tolerances follow the coarser one)"
            )
        )
    console.print(diff_table(report))
    first = report.first_divergence
    style = "bold red" if report.failed("large") else ("yellow" if first or report.largest_jump else "green")
    console.print(Text(summary_line(report), style=style))
