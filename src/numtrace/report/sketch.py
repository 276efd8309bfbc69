"""One stage of a stats-only (sketch) trace in detail: ``trace diff A B --stage NAME`` by sketch.

A sketch trace (``trace run --stats``, :mod:`numtrace.sketch`) holds each
stage's shape, dtype, statistics, channel means and hash, not its values. When
either side is one, the drill-down compares the two sketches by the rule of
``trace diff`` (:func:`numtrace.compare.sketch.compare_sketches`; a full trace's
stage is sketched on the fly): both sides' statistics, their differences
against the tolerance ``T = rtol * abs_max(a) + atol``, the lower bounds of the
difference metrics, the findings, and the channel means of both sides with
their difference and each channel's verdict (``|Δ| / T`` classified).
Element-wise profiles and worst locations need values: the report says how to
record the stage in full (:func:`rerecord_command`).

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.sketch import SKETCH_KEY, STAGE_PREFIX, encode_info, make_sketch
    >>> def sketched(x, **meta):
    ...     means, info = make_sketch(x)
    ...     meta.update({SKETCH_KEY: "1", STAGE_PREFIX + "mel": encode_info(info)})
    ...     return MemoryTrace({"mel": means}, metadata=meta, label="ref.st")
    >>> x = np.linspace(-10.0, 0.0, 40).reshape(1, 8, 5)
    >>> y = x.copy(); y[:, 3:5] += 1.0
    >>> detail = sketch_stage_detail(sketched(x), sketched(y), "mel")
    >>> detail["verdict"], detail["channels"]["verdict"][2:6], detail["stats_only"]
    ('LARGE', ['MATCH', 'LARGE', 'LARGE', 'MATCH'], ['a', 'b'])
    >>> rerecord_command(sketched(x, **{"numtrace.argv": '["decode.py", "--f32"]'}), "step@[2]")
    "trace run --only 'step@[[]2]' -o ref-full.st decode.py --f32"
"""

from __future__ import annotations

import json
import os
import re
import shlex

import numpy as np
from rich.table import Table
from rich.text import Text

from ..compare import ToleranceTable
from ..compare.result import StageResult, _json_safe
from ..compare.rootcause import relative_error
from ..compare.precision import Precisions, tolerance_for
from ..compare.sketch import compare_sketches
from ..compare.stats import SideStats
from ..sketch import is_sketch_trace, read_sketch, sketch_of
from .rows import Hidden, index_text, summarize_rows
from .stage import paired_stage, sparkline
from .table import VERDICT_STYLES, make_console, stage_diagnosis
from .words import fmt, fmt_side

_STATS = ("min", "max", "mean", "std", "abs_max")
_SIDES = {"a": "reference", "b": "candidate"}
_SLACK = 2.0**-40  # as numtrace.compare.sketch: a statistic's own rounding


def stage_sketch(trace, name: str, axis: int | None = None) -> tuple[np.ndarray, dict]:
    """``(channel_means, info)`` of a stage: read from a sketch trace, computed for a full one."""
    return read_sketch(trace, name) if is_sketch_trace(trace) else sketch_of(trace, name, axis)


def side_stats(info: dict) -> SideStats:
    """A sketch's statistics as the :class:`SideStats` of a full diff."""
    return SideStats(tuple(info["shape"]), info["dtype"], *(info[k] for k in ("count", *_STATS, "nan", "posinf", "neginf")))


def rerecord_command(trace, name: str | None = None) -> str:
    """The ``trace run --only`` command that records ``name`` (or a PATTERN) in full, from the
    trace's recorded command line (``numtrace.argv``) when it has one."""
    pattern = shlex.quote(re.sub(r"([*?[])", r"[\1]", name)) if name else "'PATTERN'"
    stem, ext = os.path.splitext(os.path.basename(str(trace.label)))
    if ext not in (".st", ".safetensors", ".h5") or not stem:
        stem, ext = "trace", ".st"
    backend = trace.metadata.get("numtrace.backend")
    backend = f" --backend {backend}" if backend in ("torch", "mlx", "fastai") else ""
    return f"trace run{backend} --only {pattern} -o {shlex.quote(stem + '-full' + ext)} {_script(trace)}"


def _script(trace) -> str:
    try:
        argv = json.loads(trace.metadata.get("numtrace.argv", ""))
    except (ValueError, RecursionError):
        argv = None
    if isinstance(argv, list) and argv and all(isinstance(a, str) and a.isprintable() for a in argv):
        text = " ".join(shlex.quote(a) for a in argv)
        if len(text) <= 200:
            return text
    return "SCRIPT [ARGS...]"


def sketch_stage_detail(reference, candidate, name: str, *, tolerances: ToleranceTable | None = None,
                        map=None) -> dict:  # noqa: A002
    """Everything the drill-down by sketch shows, JSON-safe (module docstring)."""
    pair = paired_stage(reference, candidate, name, map)
    table = tolerances if tolerances is not None else ToleranceTable()
    means_a, info_a = stage_sketch(reference, pair.name_a)
    means_b, info_b = stage_sketch(candidate, pair.name_b, info_a["axis"])
    if not is_sketch_trace(reference) and info_b["axis"] != info_a["axis"]:  # follow the sketch's axis
        means_a, info_a = stage_sketch(reference, pair.name_a, info_b["axis"])
    inherited = Precisions(reference, candidate).at(pair)
    tolerance, precision = tolerance_for(table, pair.name_a, info_a["dtype"], info_b["dtype"], inherited)
    verdict, d, findings, note = compare_sketches(means_a, info_a, means_b, info_b, tolerance)
    result = StageResult(pair.name_a, None if pair.name_b == pair.name_a else pair.name_b, verdict,
                         side_stats(info_a), side_stats(info_b), d, tolerance, findings,
                         "; ".join(n for n in (pair.note, note) if n))
    result.pairing, result.alignment_note, result.precision = pair.how, pair.note, precision
    result.rel_err = relative_error(result)
    detail = result.to_dict()
    detail.pop("growth", None)
    peak = info_a["abs_max"] or 0.0
    limit = tolerance.rtol * peak + tolerance.resolve_atol(peak, info_a["dtype"], info_b["dtype"])
    traces = {"a": reference, "b": candidate}
    detail.update(
        compared_by="sketch", labels={side: str(t.label) for side, t in traces.items()},
        stats_only=[side for side, t in traces.items() if is_sketch_trace(t)], limit=limit,
        hash={"a": info_a["hash"], "b": info_b["hash"]},
        statistics={k: None if info_a[k] is None or info_b[k] is None else info_b[k] - info_a[k] for k in _STATS},
        channels=_channels(means_a, info_a, means_b, info_b, limit), profiles=[], worst=[],
        words=stage_diagnosis(result, limit=None),
    )
    detail["rerecord"] = {side: rerecord_command(traces[side], getattr(pair, f"name_{side}"))
                          for side in detail["stats_only"]}
    return _json_safe(detail)


def _channels(means_a, a: dict, means_b, b: dict, limit: float) -> dict | None:
    """Both sides' channel means, their difference and each channel's verdict (None without)."""
    if a["axis"] is None or a["axis"] != b["axis"] or means_a.shape != means_b.shape or means_a.size == 0:
        return None
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        delta = means_b - means_a
        scale = _SLACK * max([float(np.max(np.abs(m[np.isfinite(m)]))) for m in (means_a, means_b)
                              if np.isfinite(m).any()] or [0.0])
        ratio = np.abs(delta) / (limit + scale)
    ratio[delta == 0] = 0.0
    ratio[np.isnan(means_a) & np.isnan(means_b)] = 0.0
    ratio[np.isnan(means_a) ^ np.isnan(means_b)] = np.inf
    ratio[np.isnan(ratio)] = np.inf
    verdict = np.where(ratio <= 1.0, "MATCH", np.where(ratio <= 10.0, "SMALL", "LARGE"))
    return {"axis": a["axis"], "length": int(means_a.size), "reference": means_a.tolist(),
            "candidate": means_b.tolist(), "delta": delta.tolist(), "verdict": verdict.tolist()}


def _who(detail: dict) -> str:
    sides = [f"the {_SIDES[s]} {detail['labels'][s]}" for s in detail["stats_only"]]
    return " and ".join(sides) + (" are stats-only traces" if len(sides) > 1 else " is a stats-only trace")


def channel_table(channels: dict) -> Table:
    """Channel means of both sides per channel (summarized on long axes, :mod:`numtrace.report.rows`)."""
    verdicts = channels["verdict"]
    size = [None if d is None else abs(d) for d in channels["delta"]]
    rows = summarize_rows(verdicts, size)
    runs = any(not isinstance(row, Hidden) and row[1] - row[0] > 1 for row in rows)
    table = Table(header_style="bold", pad_edge=False)
    headers = ("channel", "verdict", "reference mean", "candidate mean") + (("mean Δ", "max |Δ|") if runs else ("Δ",))
    for header in headers:
        table.add_column(header, justify="left" if header == "verdict" else "right", no_wrap=True)
    for row in rows:
        if isinstance(row, Hidden):
            table.add_row(index_text((row.start, row.stop)), "…", f"{row.rows} row{'s' * (row.rows > 1)} hidden",
                          "", "", *([""] if runs else []), style="dim")
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


class _Stats:
    def __init__(self, data: dict) -> None:
        self.__dict__.update(data)


def print_sketch_stage(detail: dict, width: int | None = None) -> None:
    """Print a :func:`sketch_stage_detail` for a person."""
    console = make_console(width)
    name = detail["name"] + (f" ↔ {detail['name_b']}" if detail.get("name_b") else "")
    verdict = detail["verdict"]
    console.print(Text(f"stage {name}: ") + Text(verdict, style=VERDICT_STYLES[verdict])
                  + Text(f", compared by sketch ({_who(detail)})"))
    for side, label in _SIDES.items():
        stats = detail[side]
        console.print(Text(f"  {label}: shape {tuple(stats['shape'])} {stats['dtype']}, {fmt_side(_Stats(stats))}, "
                           f"|max| {fmt(stats['abs_max'])}"))
    same = detail["hash"]["a"] == detail["hash"]["b"]
    console.print(Text(f"  hash: {'equal' if same else 'differ'} (reference {detail['hash']['a'][:24]}…, "
                       f"candidate {detail['hash']['b'][:24]}…)"))
    deltas = ", ".join(f"{k.replace('abs_max', '|max|')} {fmt(v)}" for k, v in detail["statistics"].items())
    console.print(Text(f"  statistics, candidate − reference: {deltas}"))
    d = detail["diff"]
    rule = f" (rtol {fmt(d['rtol'])}, atol {fmt(d['atol'])})" if d else ""
    worst = f"; the largest difference is {fmt(d['max_ratio'], 3)}× T" if d and d["max_ratio"] is not None else ""
    console.print(Text(f"  tolerance: T = {fmt(detail['limit'])}{rule}{worst}"))
    if d and d["total"] == 0:
        console.print(Text(f"  difference, lower bounds from the statistics: max |Δ| ≥ {fmt(d['abs_max'])}, "
                           f"mean |Δ| ≥ {fmt(d['abs_mean'])}, rms ≥ {fmt(d['rms'])}, rel err ≥ {fmt(d['rel_rms'])}"))
    console.print(Text("  diagnosis: " + (detail.get("words") or "none"), style="bold"))
    channels = detail["channels"]
    if channels:
        size = [None if v is None else abs(v) for v in channels["delta"]]
        console.print(Text(f"\nchannel means along axis {channels['axis']} ({channels['length']} channels), "
                           "|Δ| per channel:", style="bold"))
        console.print(Text(f"  {sparkline(size, max(8, min(100, console.width - 4)))}"))
        console.print(channel_table(channels))
    else:
        console.print(Text("\nno channel means to compare (a 0-d or 1-d stage, an axis longer than 65,536, "
                           "or other shapes on the two sides)"))
    if verdict != "MATCH":
        console.print(Text(f"\nno element-wise profile or worst locations: {_who(detail)} (recorded with --stats). "
                           "To get them, record this stage in full, then diff the new traces with --stage:"))
        for side, command in detail["rerecord"].items():
            console.print(Text(f"  {_SIDES[side]}: {command}"))
