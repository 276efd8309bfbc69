"""``trace diff A B --stage NAME``: one stage in detail, rendered.

The data comes from :func:`numtrace.compare.detail.stage_detail` (a
:class:`~numtrace.compare.result.StageDetail`): both sides' statistics, the
findings, the per-index error profile along each axis (the "channel-by-channel
mean difference": a sparkline of mean |Δ| and a table with each index's
verdict, summarized on long axes as :mod:`numtrace.report.rows` says) and the
worst locations. :func:`detail_json` adds the findings in words;
:func:`print_detail` prints it for a person (a comparison by sketch through
:mod:`numtrace.report.sketch`).

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare.detail import stage_detail
    >>> a = MemoryTrace({"mel": np.linspace(-80.0, 0.0, 40).reshape(4, 10)})
    >>> b = MemoryTrace({"mel": np.linspace(-80.0, 0.0, 40).reshape(4, 10) - 1.5})
    >>> detail_json(stage_detail(a, b, "mel"))["words"]
    'candidate = reference - 1.5 (constant offset, explains 100%)'
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from rich.table import Table
from rich.text import Text

from ..compare.result import StageDetail
from .rows import Hidden, index_text, runs, sparkline, summarize_rows
from .table import VERDICT_STYLES, make_console, stage_diagnosis
from .words import fmt, fmt_side


def detail_json(detail: StageDetail) -> dict:
    """The drill-down as ``trace diff --stage NAME --json`` prints it: the detail and its words."""
    data = detail.to_dict()
    data["words"] = stage_diagnosis(detail.result, limit=None)
    return data


def print_detail(data: dict, width: int | None = None) -> None:
    """Print a :func:`detail_json` for a person: a full comparison, or one by sketch."""
    if data.get("compared_by") == "sketch":
        from .sketch import print_sketch_stage

        print_sketch_stage(data, width=width)
    else:
        print_stage(data, width=width)


def _mean(values: list):
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _max(values: list):
    kept = [v for v in values if v is not None]
    return max(kept) if kept else None


def _profile_table(profile: dict) -> Table:
    """The per-index table of one axis: a row per index on a short axis; on a long one, runs of
    indices with the same verdict (and, unless MATCH, a mean |Δ| within a factor 2) share a row, and when there
    are still many, only the first, last and worst rows are kept (:mod:`numtrace.report.rows`)."""
    table = Table(header_style="bold")
    for header in ("index", "verdict", "mean Δ", "mean |Δ|", "max |Δ|", "at", "reference rms"):
        table.add_column(header, justify="left" if header == "verdict" else "right", no_wrap=True)
    verdicts = profile.get("verdict") or [""] * profile["length"]
    # within tolerance the size of the error says nothing: MATCH indices share a run whatever it is
    labels = [(v, None if v == "MATCH" else o) for v, o in zip(verdicts, _octaves(profile["mean_abs"]))]
    peak = _max(profile["mean_abs"]) or 0.0
    rows = summarize_rows(labels, profile["max_abs"])
    for row in rows:
        if isinstance(row, Hidden):
            table.add_row(
                index_text((row.start, row.stop)),
                "…",
                f"{row.rows} row{'s' * (row.rows > 1)} hidden",
                "",
                "",
                "",
                "",
                style="dim",
            )
            continue
        lo, hi = row
        mean_abs, max_abs = _mean(profile["mean_abs"][lo:hi]), profile["max_abs"][lo:hi]
        top = _max(max_abs)
        at = str(lo + max_abs.index(top)) if hi - lo > 1 and top else ""
        rms = _mean([None if r is None else r * r for r in profile["ref_rms"][lo:hi]])
        loud = peak and mean_abs is not None and mean_abs >= 0.5 * peak
        table.add_row(
            index_text(row),
            Text(verdicts[lo], style=VERDICT_STYLES.get(verdicts[lo], "")),
            fmt(_mean(profile["mean_diff"][lo:hi])),
            fmt(mean_abs),
            fmt(top),
            at,
            fmt(None if rms is None else math.sqrt(rms)),
            style="bold" if loud else "",
        )
    if len(rows) < profile["length"]:
        hidden = sum(row.rows for row in rows if isinstance(row, Hidden))
        count = len(runs(labels))
        table.caption = (
            f"{profile['length']} indices in {count} run{'s' * (count > 1)} (same verdict; mean |Δ| "
            f"within 2x unless MATCH)" + (f"; {hidden} runs hidden" if hidden else "")
        )
    return table


def _octaves(mean_abs: list) -> list:
    """How many factors of 2 each mean |Δ| is below the loudest (None for no finite value, -1 for 0)."""
    peak = _max(mean_abs) or 0.0
    return [None if v is None else -1 if not v or not peak else int(math.log2(peak / v)) for v in mean_abs]


def print_stage(detail: dict, width: int | None = None) -> None:
    """Print a full comparison's :func:`detail_json` for a person."""
    console = make_console(width)
    name = detail["name"] + (f" ↔ {detail['name_b']}" if detail.get("name_b") else "")
    verdict = detail["verdict"]
    console.print(Text(f"stage {name}: ") + Text(verdict, style=VERDICT_STYLES[verdict]))
    for side, label in (("a", "reference"), ("b", "candidate")):
        stats = detail[side]
        if stats:
            console.print(
                Text(
                    f"  {label}: shape {tuple(stats['shape'])} {stats['dtype']}, "
                    f"{fmt_side(SimpleNamespace(**stats))}, |max| {fmt(stats['abs_max'])}"
                )
            )
    d = detail.get("diff")
    if d:
        console.print(
            Text(
                f"  difference: max |Δ| {fmt(d['abs_max'])}, mean |Δ| {fmt(d['abs_mean'])}, "
                f"rel err {fmt(d['rel_rms'])}, cosine {fmt(d['cosine'], 6)}, SNR {fmt(d['snr_db'])} dB, "
                f"{d['mismatched']} of {d['total']} out of tolerance (rtol {fmt(d['rtol'])}, atol {fmt(d['atol'])})"
            )
        )
    console.print(Text("  diagnosis: " + (detail.get("words") or "none"), style="bold"))
    for profile in detail["profiles"]:
        console.print(
            Text(
                f"\nerror profile along axis {profile['axis']} ({profile['length']} indices), mean |Δ| per index:",
                style="bold",
            )
        )
        console.print(Text(f"  {sparkline(profile['mean_abs'], max(8, min(100, console.width - 4)))}"))
        console.print(_profile_table(profile))
    if detail["worst"]:
        console.print(Text("\nworst locations:", style="bold"))
        table = Table(header_style="bold")
        for header in ("index", "reference", "candidate", "Δ"):
            table.add_column(header, justify="right", no_wrap=True)
        for spot in detail["worst"]:
            table.add_row(str(tuple(spot["index"])), fmt(spot["a"], 6), fmt(spot["b"], 6), fmt(spot["diff"]))
        console.print(table)
