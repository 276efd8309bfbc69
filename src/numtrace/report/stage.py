"""``trace diff A B --stage NAME``: one stage in detail.

Both sides' statistics, the findings in words, the per-index error profile
along each axis (the "channel-by-channel mean difference": a sparkline of
mean |Δ| and a table with each index's verdict, summarized on long axes as
:mod:`numtrace.report.rows` says) and the worst locations. The stage is read
whole on both sides. When either trace is a stats-only (sketch) trace, the
drill-down compares the two sketches instead (:mod:`numtrace.report.sketch`).

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> a = MemoryTrace({"mel": np.linspace(-80.0, 0.0, 40).reshape(4, 10)})
    >>> b = MemoryTrace({"mel": np.linspace(-80.0, 0.0, 40).reshape(4, 10) - 1.5})
    >>> detail = stage_detail(a, b, "mel")
    >>> detail["verdict"], detail["diagnosis"][0]["kind"], detail["profiles"][1]["length"]
    ('LARGE', 'offset', 10)
"""

from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text

from ..compare import ToleranceTable, aligned_arrays, compare_pair, stage_pair
from ..compare.profile import axis_profiles, worst_locations
from ..compare.result import _json_safe
from ..compare.rootcause import relative_error
from ..errors import UsageError
from .rows import Hidden, index_text, runs, summarize_rows
from .table import VERDICT_STYLES, make_console, stage_diagnosis
from .words import fmt, fmt_side

_BLOCKS = "▁▂▃▄▅▆▇█"


def stage_detail(reference, candidate, name: str, *, tolerances: ToleranceTable | None = None, map=None,  # noqa: A002
                 worst: int = 10) -> dict:
    """Everything the drill-down shows, JSON-safe. UsageError when no stage is called ``name``."""
    pair = paired_stage(reference, candidate, name, map)
    table = tolerances if tolerances is not None else ToleranceTable()
    result = compare_pair(reference, candidate, pair, table)
    result.rel_err = relative_error(result)
    detail = result.to_dict()
    detail.pop("growth", None)  # needs the stages before it: see the full diff
    detail["profiles"], detail["worst"] = [], []
    aligned = aligned_arrays(reference, candidate, pair)
    if aligned is not None:
        av, bv, _, _ = aligned
        d = result.diff
        tolerance = (d.rtol, d.atol) if d is not None else (None, None)
        detail["profiles"] = _json_safe(axis_profiles(av, bv, *tolerance))
        detail["worst"] = _json_safe(worst_locations(av, bv, worst))
    detail["words"] = stage_diagnosis(result, limit=None)
    return detail


def paired_stage(reference, candidate, name: str, map=None, what: str = "compare"):  # noqa: A002
    """The :class:`~numtrace.compare.align.Pair` of stage ``name`` (either side's name); UsageError
    when it is in neither trace or in one only."""
    pair = stage_pair(reference, candidate, name, map)
    if pair is None:
        raise UsageError(f"no stage {name!r} in either trace; `trace diff A B` lists the stages")
    if pair.name_a is None or pair.name_b is None:
        side = "reference" if pair.name_a is not None else "candidate"
        raise UsageError(f"stage {name!r} is only in the {side}: nothing to {what}")
    return pair


def sparkline(values: list, width: int = 64) -> str:
    """Values as block characters (None as a space), at most ``width`` of them (means of runs).

    Example:
        >>> sparkline([0.0, 0.0, 1.0, 4.0])
        '▁▁▃█'
    """
    groups = _groups(len(values), width)
    means = [_mean(values[lo:hi]) for lo, hi in groups]
    top = max((m for m in means if m is not None), default=0.0)
    if not top:
        return "".join(" " if m is None else _BLOCKS[0] for m in means)
    return "".join(" " if m is None else _BLOCKS[min(len(_BLOCKS) - 1, int(m / top * (len(_BLOCKS) - 1) + 0.5))]
                   for m in means)


def _groups(length: int, most: int) -> list[tuple[int, int]]:
    if length <= most:
        return [(i, i + 1) for i in range(length)]
    bounds = [round(i * length / most) for i in range(most + 1)]
    return [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]


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
    table = Table(header_style="bold", pad_edge=False)
    for header in ("index", "verdict", "mean Δ", "mean |Δ|", "max |Δ|", "at", "reference rms"):
        table.add_column(header, justify="left" if header == "verdict" else "right", no_wrap=True)
    verdicts = profile.get("verdict") or [""] * profile["length"]
    # within tolerance the size of the error says nothing: MATCH indices share a run whatever it is
    labels = [(v, None if v == "MATCH" else o) for v, o in zip(verdicts, _octaves(profile["mean_abs"]))]
    peak = _max(profile["mean_abs"]) or 0.0
    rows = summarize_rows(labels, profile["max_abs"])
    for row in rows:
        if isinstance(row, Hidden):
            table.add_row(index_text((row.start, row.stop)), "…", f"{row.rows} row{'s' * (row.rows > 1)} hidden",
                          "", "", "", "", style="dim")
            continue
        lo, hi = row
        mean_abs, max_abs = _mean(profile["mean_abs"][lo:hi]), profile["max_abs"][lo:hi]
        top = _max(max_abs)
        at = str(lo + max_abs.index(top)) if hi - lo > 1 and top else ""
        rms = _mean([None if r is None else r * r for r in profile["ref_rms"][lo:hi]])
        loud = peak and mean_abs is not None and mean_abs >= 0.5 * peak
        table.add_row(index_text(row), Text(verdicts[lo], style=VERDICT_STYLES.get(verdicts[lo], "")),
                      fmt(_mean(profile["mean_diff"][lo:hi])), fmt(mean_abs), fmt(top), at,
                      fmt(None if rms is None else math.sqrt(rms)), style="bold" if loud else "")
    if len(rows) < profile["length"]:
        hidden = sum(row.rows for row in rows if isinstance(row, Hidden))
        count = len(runs(labels))
        table.caption = (f"{profile['length']} indices in {count} run{'s' * (count > 1)} (same verdict; mean |Δ| "
                         f"within 2x unless MATCH)" + (f"; {hidden} runs hidden" if hidden else ""))
    return table


def _octaves(mean_abs: list) -> list:
    """How many factors of 2 each mean |Δ| is below the loudest (None for no finite value, -1 for 0)."""
    peak = _max(mean_abs) or 0.0
    return [None if v is None else -1 if not v or not peak else int(math.log2(peak / v)) for v in mean_abs]


def print_stage(detail: dict, width: int | None = None) -> None:
    """Print a :func:`stage_detail` for a person."""
    console = make_console(width)
    name = detail["name"] + (f" ↔ {detail['name_b']}" if detail.get("name_b") else "")
    verdict = detail["verdict"]
    console.print(Text(f"stage {name}: ") + Text(verdict, style=VERDICT_STYLES[verdict]))
    for side, label in (("a", "reference"), ("b", "candidate")):
        stats = detail[side]
        if stats:
            console.print(Text(f"  {label}: shape {tuple(stats['shape'])} {stats['dtype']}, "
                               f"{fmt_side(_Stats(stats))}, |max| {fmt(stats['abs_max'])}"))
    d = detail.get("diff")
    if d:
        console.print(Text(f"  difference: max |Δ| {fmt(d['abs_max'])}, mean |Δ| {fmt(d['abs_mean'])}, "
                           f"rel err {fmt(d['rel_rms'])}, cosine {fmt(d['cosine'], 6)}, SNR {fmt(d['snr_db'])} dB, "
                           f"{d['mismatched']} of {d['total']} out of tolerance (rtol {fmt(d['rtol'])}, atol {fmt(d['atol'])})"))
    console.print(Text("  diagnosis: " + (detail.get("words") or "none"), style="bold"))
    for profile in detail["profiles"]:
        console.print(Text(f"\nerror profile along axis {profile['axis']} ({profile['length']} indices), "
                           f"mean |Δ| per index:", style="bold"))
        console.print(Text(f"  {sparkline(profile['mean_abs'], max(8, min(100, console.width - 4)))}"))
        console.print(_profile_table(profile))
    if detail["worst"]:
        console.print(Text("\nworst locations:", style="bold"))
        table = Table(header_style="bold", pad_edge=False)
        for header in ("index", "reference", "candidate", "Δ"):
            table.add_column(header, justify="right", no_wrap=True)
        for spot in detail["worst"]:
            table.add_row(str(tuple(spot["index"])), fmt(spot["a"], 6), fmt(spot["b"], 6), fmt(spot["diff"]))
        console.print(table)


class _Stats:
    """Attribute access to a side's JSON statistics, for :func:`fmt_side`."""

    def __init__(self, data: dict) -> None:
        self.__dict__.update(data)


def run_stage(reference, candidate, name: str, *, tolerances=None, map=None, as_json: bool = False,  # noqa: A002
              width: int | None = None, fail_on: str = "large") -> int:
    """``trace diff A B --stage NAME`` on two open traces: print the drill-down, return the exit status."""
    import json

    from ..compare.result import failing_verdicts
    from ..sketch import is_sketch_trace

    by_sketch = is_sketch_trace(reference) or is_sketch_trace(candidate)
    if by_sketch:
        from .sketch import sketch_stage_detail

        detail = sketch_stage_detail(reference, candidate, name, tolerances=tolerances, map=map)
    else:
        detail = stage_detail(reference, candidate, name, tolerances=tolerances, map=map)
    if as_json:
        print(json.dumps(detail, indent=2, allow_nan=False))
    elif by_sketch:
        from .sketch import print_sketch_stage

        print_sketch_stage(detail, width=width)
    else:
        print_stage(detail, width=width)
    failing = {verdict.value for verdict in failing_verdicts(fail_on)}
    return 1 if detail["verdict"] in failing else 0
