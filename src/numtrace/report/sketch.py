"""One stage compared by sketch (``trace diff A B --stage NAME``, a stats-only side), rendered.

The data is :func:`numtrace.compare.sketches.detail.sketch_stage_detail`'s: both
sides' statistics and hashes, the tolerance ``T``, the lower bounds of the
difference, the findings, the channel means with each channel's verdict, and
the ``trace run --only`` command that records the stage in full.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare.sketches.format import SKETCH_KEY, STAGE_PREFIX, encode_info, make_sketch
    >>> from numtrace.compare.detail import stage_detail
    >>> from numtrace.report.stage import detail_json
    >>> means, info = make_sketch(np.linspace(-10.0, 0.0, 40).reshape(1, 8, 5))
    >>> t = MemoryTrace({"mel": means}, metadata={SKETCH_KEY: "1", STAGE_PREFIX + "mel": encode_info(info)},
    ...                 label="ref.st")
    >>> stats_only_words(detail_json(stage_detail(t, t, "mel")))
    'the reference ref.st and the candidate ref.st are stats-only traces'
"""

from __future__ import annotations

from types import SimpleNamespace

from rich.table import Table
from rich.text import Text

from ..compare.sketches.format import MAX_CHANNELS
from .rows import Hidden, index_text, sparkline, summarize_rows
from .table import VERDICT_STYLES, make_console
from .words import fmt, fmt_side

_SIDES = {"a": "reference", "b": "candidate"}


def stats_only_words(detail: dict) -> str:
    """``the reference ref.st is a stats-only trace`` (or both sides) for a detail by sketch."""
    sides = [f"the {_SIDES[s]} {detail['labels'][s]}" for s in detail["stats_only"]]
    return " and ".join(sides) + (" are stats-only traces" if len(sides) > 1 else " is a stats-only trace")


def channel_table(channels: dict) -> Table:
    """Channel means of both sides per channel (summarized on long axes, :mod:`numtrace.report.rows`)."""
    verdicts = channels["verdict"]
    size = [None if d is None else abs(d) for d in channels["delta"]]
    rows = summarize_rows(verdicts, size)
    runs = any(not isinstance(row, Hidden) and row[1] - row[0] > 1 for row in rows)
    table = Table(header_style="bold")
    headers = ("channel", "verdict", "reference mean", "candidate mean") + (("mean Δ", "max |Δ|") if runs else ("Δ",))
    for header in headers:
        table.add_column(header, justify="left" if header == "verdict" else "right", no_wrap=True)
    for row in rows:
        if isinstance(row, Hidden):
            table.add_row(
                index_text((row.start, row.stop)),
                "…",
                f"{row.rows} row{'s' * (row.rows > 1)} hidden",
                "",
                "",
                *([""] if runs else []),
                style="dim",
            )
            continue
        lo, hi = row
        cells = [fmt(_mean(channels[key][lo:hi])) for key in ("reference", "candidate", "delta")]
        if runs:
            cells.append(fmt(max((s for s in size[lo:hi] if s is not None), default=None)) if hi - lo > 1 else "")
        table.add_row(index_text(row), Text(verdicts[lo], style=VERDICT_STYLES[verdicts[lo]]), *cells)
    return table


def _mean(values: list):
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def print_sketch_stage(detail: dict, width: int | None = None) -> None:
    """Print a detail by sketch (:func:`numtrace.report.stage.detail_json`) for a person."""
    console = make_console(width)
    name = detail["name"] + (f" ↔ {detail['name_b']}" if detail.get("name_b") else "")
    verdict = detail["verdict"]
    console.print(
        Text(f"stage {name}: ")
        + Text(verdict, style=VERDICT_STYLES[verdict])
        + Text(f", compared by sketch ({stats_only_words(detail)})")
    )
    for side, label in _SIDES.items():
        stats = detail[side]
        console.print(
            Text(
                f"  {label}: shape {tuple(stats['shape'])} {stats['dtype']}, {fmt_side(SimpleNamespace(**stats))}, "
                f"|max| {fmt(stats['abs_max'])}"
            )
        )
    same = detail["hash"]["a"] == detail["hash"]["b"]
    console.print(
        Text(
            f"  hash: {'equal' if same else 'differ'} (reference {detail['hash']['a'][:24]}…, "
            f"candidate {detail['hash']['b'][:24]}…)"
        )
    )
    deltas = ", ".join(f"{k.replace('abs_max', '|max|')} {fmt(v)}" for k, v in detail["statistics"].items())
    console.print(Text(f"  statistics, candidate − reference: {deltas}"))
    d = detail["diff"]
    rule = f" (rtol {fmt(d['rtol'])}, atol {fmt(d['atol'])})" if d else ""
    worst = f"; the largest difference is {fmt(d['max_ratio'], 3)}× T" if d and d["max_ratio"] is not None else ""
    console.print(Text(f"  tolerance: T = {fmt(detail['limit'])}{rule}{worst}"))
    if d and d["total"] == 0:
        console.print(
            Text(
                f"  difference, lower bounds from the statistics: max |Δ| ≥ {fmt(d['abs_max'])}, "
                f"mean |Δ| ≥ {fmt(d['abs_mean'])}, rms ≥ {fmt(d['rms'])}, rel err ≥ {fmt(d['rel_rms'])}"
            )
        )
    console.print(Text("  diagnosis: " + (detail.get("words") or "none"), style="bold"))
    channels = detail["channels"]
    if channels:
        size = [None if v is None else abs(v) for v in channels["delta"]]
        console.print(
            Text(
                f"\nchannel means along axis {channels['axis']} ({channels['length']} channels), |Δ| per channel:",
                style="bold",
            )
        )
        console.print(Text(f"  {sparkline(size, max(8, min(100, console.width - 4)))}"))
        console.print(channel_table(channels))
    else:
        console.print(
            Text(
                f"\nno channel means to compare (a 0-d or 1-d stage, an axis longer than {MAX_CHANNELS:,}, "
                "or other shapes on the two sides)"
            )
        )
    if verdict != "MATCH":
        console.print(
            Text(
                f"\nno element-wise profile or worst locations: {stats_only_words(detail)} (recorded with --stats). "
                "To get them, record this stage in full, then diff the new traces with --stage:"
            )
        )
        for side, command in detail["rerecord"].items():
            console.print(Text(f"  {_SIDES[side]}: {command}"))
