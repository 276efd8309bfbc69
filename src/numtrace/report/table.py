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

from ..compare.diagnosis.io_fits import IO_KINDS
from ..compare.own import below_tolerance as own_below_tolerance
from ..compare.pairing.align import HOW_NOTES
from ..compare.rootcause import JUMP_RATIO
from .layouts import (
    VERDICT_STYLES,
    Rows,
    choose_layout,
    fmt_growth,
    medium_table,
    narrow_view,
    needed_width,
    wide_table,
)
from .words import describe_findings, fmt, fmt_percent

__all__ = ["VERDICT_STYLES", "fmt_growth", "make_console", "print_diff", "stage_diagnosis", "summary_line"]


def make_console(width: int | None = None, stderr: bool = False) -> Console:
    """A console that keeps tables readable when stdout is a file or a pipe."""
    stream = sys.stderr if stderr else sys.stdout
    if width is None and not stream.isatty() and "COLUMNS" not in os.environ:
        width = 160
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def stage_diagnosis(stage, hide_dtype: bool = False, limit: int | None = 3, pairing: bool = True) -> str:
    """The diagnosis in words: pairing and alignment notes (the pairing note left out with
    ``pairing=False``: a table shows it as ``a ↔ b``), then the findings."""
    findings = [f for f in stage.diagnosis if not (hide_dtype and f.get("kind") == "dtype")]
    own = getattr(stage, "own", None)
    mine = own is not None and (own.inherited or own.failing)  # the own error says more than the total's findings
    words = "" if mine else describe_findings(findings, tuple(stage.a.shape) if stage.a is not None else None, limit)
    notes = getattr(stage, "alignment_note", "") if words or mine else stage.note
    if not pairing:  # an alignment's pairing stays: its score says how sure it is
        notes = "; ".join(n for n in notes.split("; ") if n and n not in HOW_NOTES.values())
    parts = (own_note(stage), notes, words, born_note(stage), precision_note(stage), sharding_note(stage))
    return "; ".join(x for x in parts if x)


def sharding_note(stage) -> str:
    """``2 ranks, sharded along axis 1`` (``replicated``, ``partial sums``) for a stage of a sharded
    candidate (:mod:`numtrace.compare.sharding`), else ''."""
    sharding = getattr(stage, "sharding", None)
    if not sharding:
        return ""
    how = {"replicated": "replicated", "partial": "partial sums"}.get(sharding["kind"], "")
    if sharding["kind"] == "sharded":
        how = f"sharded along axis {sharding['axis']}"
    if sharding["kind"] == "not_combined":
        how = f"not combined (over {sharding['limit']} elements per rank): rank 0's values"
    return f"{sharding['ranks']} ranks, {how}"


def own_note(stage) -> str:
    """The stage's own error with a replay (:mod:`numtrace.compare.own`): ``own error LARGE (rel
    err 0.3): <what it is>``, ``own error LARGE, from its submodule X``, or ``inherited: its own
    error is MATCH (...)``; '' without a replay or when both are MATCH."""
    own = getattr(stage, "own", None)
    if own is None:
        return ""
    if own.inherited:
        return f"inherited: its own error is MATCH (rel err {fmt(own.rel_err, 2)})"
    if not own.flagged:
        return ""
    verdict = "under the tolerance" if own.below_tolerance else own.verdict.value
    if own.within is not None:
        return f"own error {verdict}, from its submodule {own.within}"
    if own.below_tolerance:
        return f"own error under the tolerance (rel err {fmt(own.rel_err, 2)}): {own_words(stage)}"
    words = own_words(stage)
    return f"own error {own.verdict.value} (rel err {fmt(own.rel_err, 2)})" + (f": {words}" if words else "")


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


def own_words(stage) -> str:
    """The own error's findings in words; those fitted from input and output (a transposed weight,
    a dropped bias) alone when there are some: they say more than the output's shape of error."""
    findings = [f for f in stage.own.diagnosis if f.get("kind") not in ("dtype", "precision")]
    fitted = [f for f in findings if f.get("kind") in IO_KINDS]
    return describe_findings(fitted or findings, tuple(stage.a.shape) if stage.a is not None else None, 2)


def own_text(report) -> str:
    """With a replay: the root cause as the first module with an own error, and every other
    module with one (there may be several bugs); '' when no replayed module has one."""
    found = report.own_errors
    below = own_below_tolerance(report.stages)
    under = (
        " Under the tolerance, an own error that a fit explains: "
        + "; ".join(f"{name} ({own_words(report[name])})" for name in below[:3])
        + ("" if len(below) <= 3 else f" and {len(below) - 3} more")
        + "."
        if below
        else ""
    )
    if not found:
        if below and report.first_divergence is None:
            return under.strip()
        skipped = len(report.replay.get("not_replayed", {}))
        return (
            "Replay: no replayed module has an own error"
            + (f" ({skipped} module calls not replayed: trace show the replay trace for why)." if skipped else ".")
            if report.first_divergence is not None
            else ""
        )
    stage = report[found[0]]
    own = stage.own
    words = own_words(stage)
    text = (
        f"Root cause: {found[0]}, the first module whose own error (run on the reference's inputs) is "
        f"{own.verdict.value} (rel err {fmt(own.rel_err, 2)})" + (f": {words}." if words else ".")
    )
    if len(found) > 1:
        others = ", ".join(f"{name} ({report[name].own.verdict.value})" for name in found[1:6])
        more = f" and {len(found) - 6} more" if len(found) > 6 else ""
        text += f" Other modules with an own error: {others}{more}."
    return text + under


def root_cause_text(report) -> str:
    """The sentence that names the root cause and what kind of error it is ('' when none)."""
    if getattr(report, "replay", None) is not None:
        text = own_text(report)
        if report.own_errors:
            return text
        plain = _plain_root_cause(report)
        return " ".join(t for t in (plain, text) if t)
    return _plain_root_cause(report)


def _plain_root_cause(report) -> str:
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


def ignored_line(report) -> str:
    """``"left out: 61 stages of the reference (...)"``: the stages no pairing looked at, so that a
    table never hides what it did not compare ('' when there are none).

    Example:
        >>> from types import SimpleNamespace
        >>> print(ignored_line(SimpleNamespace(ignored={"a": ["enc.input", "dec.input"], "b": ["x"]}))[:72])
        left out: 2 stages of the reference and 1 stage of the candidate (record
    """
    ignored = getattr(report, "ignored", {}) or {}
    counts = [(len(ignored.get(side, [])), label) for side, label in (("a", "reference"), ("b", "candidate"))]
    parts = [f"{n} stage{'s' if n != 1 else ''} of the {label}" for n, label in counts if n]
    if not parts:
        return ""
    why = "recorded inputs the other side lacks, or a map file's ignore list; --json lists them"
    return f"left out: {' and '.join(parts)} ({why})"


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


def _table_for(console: Console, rows: Rows, forced: str | None):
    """The table in the chosen layout, or, when its cells cannot all be shown whole at this width
    (long shapes, long statistics), in the next narrower one: a table is never cropped. A layout
    forced with --wide or --narrow is kept, printed as wide as its cells need."""
    chosen = choose_layout(console.width, forced)
    order = ("wide", "medium", "narrow")
    for layout in order[order.index(chosen) :]:
        if layout == "narrow":
            table = narrow_view(rows, console.width)
        else:
            table = medium_table(rows, console) if layout == "medium" else wide_table(rows)
        needed = needed_width(console, table) if isinstance(table, Table) else console.width
        if layout == "narrow" or needed <= console.width:
            return table
        if forced is not None:
            console.width = needed
            return table
    raise AssertionError("unreachable: the narrow layout always fits")


def print_diff(report, width: int | None = None, layout: str | None = None, expand: bool = False) -> None:
    """Print the table of ``report`` in the layout that fits the terminal (``layout`` forces one:
    ``narrow``, ``medium``, ``wide``; ``expand`` shows every stage of a long trace)."""
    console = make_console(width)
    for side, label in (("a", report.a_label), ("b", report.b_label)):
        status = getattr(report, "status", {}).get(side)
        line = Text(f"{'reference' if side == 'a' else 'candidate'}: {label}")
        if status not in (None, "complete"):
            line += Text(f"  (recording did not complete: {status})", style="bold red")
        console.print(line)
    left_out = ignored_line(report)
    if left_out:
        console.print(Text(left_out))
    change = report.uniform_dtype_change
    if change:
        console.print(
            Text(
                f"dtypes: reference {change[0]}, candidate {change[1]} at every stage "
                "(tolerances follow the coarser one)"
            )
        )
    hide_dtype = change is not None
    rows = Rows(report, lambda stage: stage_diagnosis(stage, hide_dtype, pairing=False), expand)
    console.print(_table_for(console, rows, layout))
    first = report.first_divergence
    style = "bold red" if report.failed("large") else ("yellow" if first or report.largest_jump else "green")
    console.print(Text(summary_line(report), style=style))
