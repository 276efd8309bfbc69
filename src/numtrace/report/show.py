"""``trace show``: a trace's metadata and its stages with their statistics; ``trace show TRACE STAGE``:
one stage in detail.

A stats-only trace (``trace run --stats``, :mod:`numtrace.compare.sketches.format`) is listed with
each stage's recorded shape and dtype, its recorded statistics, channel means
and hash, and said to be one; its stored tensors (the channel means) are not
shown as if they were the stages. One stage in detail: shape, dtype, count,
statistics, non-finite counts, hash and channel means (briefly, as numpy prints
a long array) of either kind of trace (a full trace's stage is sketched on the
fly), and for a full trace its values.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> show_dict(MemoryTrace({"x": np.arange(4.0)}))["stages"][0]["mean"]
    1.5
    >>> stage = stage_dict(MemoryTrace({"x": np.arange(6.0).reshape(2, 3)}), "x")
    >>> stage["axis"], stage["channel_means"], stage["hash"][:8]
    (1, [1.5, 2.5, 3.5], 'blake2b:')
"""

from __future__ import annotations

import json

import numpy as np
from rich.table import Table
from rich.text import Text

from ..compare.result import json_safe, side_dict
from ..compare.sketches.format import MAX_CHANNELS, is_sketch_trace, read_sketch
from ..compare.statistics.stats import summarize
from ..errors import UsageError
from ..probes import StageFilter
from .table import make_console
from .words import fmt, fmt_side

CHUNK_ELEMENTS = 1 << 20
#: ``trace show TRACE STAGE`` prints the values of a full trace's stage up to this many elements
MAX_PRINTED = 1 << 20
_STATS_ONLY = (
    "stats-only trace (recorded with --stats): statistics, channel means and a hash of each stage, not its values"
)


def _selected(trace, only: list[str] | None) -> list[str]:
    keep = StageFilter(only)
    return [name for name in trace.order if keep(name)]


def _entry(trace, name: str) -> dict:
    """A stage's line of ``trace show --json``: its statistics (from the sketch in a sketch trace)."""
    if not is_sketch_trace(trace):
        return {"name": name, **side_dict(summarize(trace, name, CHUNK_ELEMENTS))}
    from ..compare.sketches.diff import side_stats

    means, info = read_sketch(trace, name)
    return {
        "name": name,
        **side_dict(side_stats(info)),
        "axis": info["axis"],
        "channels": int(means.size),
        "hash": info["hash"],
    }


def show_dict(trace, only: list[str] | None = None) -> dict:
    """The JSON form of ``trace show``: path, metadata, order source and per-stage statistics
    (``stats_only`` true for a sketch trace, whose stages also carry ``axis``, ``channels`` and ``hash``)."""
    return {
        "path": trace.label,
        "order": "recorded" if trace.has_order else "natural",
        "stats_only": is_sketch_trace(trace),
        "metadata": dict(trace.metadata),
        "stages": [_entry(trace, name) for name in _selected(trace, only)],
    }


def stage_dict(trace, name: str) -> dict:
    """One stage's sketch (read from a sketch trace, computed for a full one), JSON-safe: its
    statistics, ``axis``, ``hash`` and ``channel_means`` (None where a channel has no finite value)."""
    if name not in trace:
        raise UsageError(f"no stage {name!r} in {trace.label}; `trace show {trace.label}` lists the stages")
    from ..compare.sketches.diff import side_stats, stage_sketch

    means, info = stage_sketch(trace, name)
    return json_safe(
        {
            "name": name,
            "index": trace.order.index(name) + 1,
            "of": len(trace.order),
            "stats_only": is_sketch_trace(trace),
            **side_dict(side_stats(info)),
            "axis": info["axis"],
            "hash": info["hash"],
            "channel_means": means.tolist(),
        }
    )


def _metadata_lines(trace) -> list[str]:
    meta = trace.metadata
    lines = [f"trace: {trace.label}"]
    if is_sketch_trace(trace):
        lines.append(_STATS_ONLY)
    order = (
        "recorded (numtrace.order)" if trace.has_order else "natural sort of the names (the file has no numtrace.order)"
    )
    lines.append(f"stages: {len(trace)}, order: {order}")
    for key in ("numtrace.version", "numtrace.backend", "numtrace.created", "numtrace.status", "numtrace.argv"):
        if key in meta:
            lines.append(f"{key.removeprefix('numtrace.')}: {meta[key]}")
    if "numtrace.frameworks" in meta:
        try:
            frameworks = ", ".join(f"{k} {v}" for k, v in json.loads(meta["numtrace.frameworks"]).items())
        except (ValueError, AttributeError):
            frameworks = meta["numtrace.frameworks"]
        lines.append(f"frameworks: {frameworks}")
    for key, value in trace.user_metadata.items():
        lines.append(f"{key}: {value}")
    return lines


class _Stats:
    def __init__(self, data: dict) -> None:
        self.__dict__.update(data)


def print_show(trace, only: list[str] | None = None, width: int | None = None) -> None:
    """Print ``trace show``: the metadata, then a table of the stages."""
    console = make_console(width)
    for line in _metadata_lines(trace):
        console.print(Text(line))
    sketch = is_sketch_trace(trace)
    columns = ["#", "stage", "shape", "dtype", "[min, max] mean±std", "abs max"]
    columns += ["channel means", "hash"] if sketch else []
    table = Table(header_style="bold")
    for column in columns:
        table.add_column(Text(column), justify="right" if column in ("#", "abs max") else "left", overflow="fold")
    for index, name in enumerate(_selected(trace, only), 1):
        entry = _entry(trace, name)
        cells = [
            str(index),
            name,
            str(tuple(entry["shape"])),
            entry["dtype"],
            fmt_side(_Stats(entry)),
            fmt(entry["abs_max"]),
        ]
        if sketch:
            cells.append(f"{entry['channels']} on axis {entry['axis']}" if entry["axis"] is not None else "—")
            cells.append(entry["hash"].removeprefix("blake2b:")[:12] + "…")
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)
    if sketch:
        from ..compare.sketches.detail import rerecord_command

        console.print(
            Text(
                f"`trace show {trace.label} STAGE`: one stage's sketch. "
                f"To record stages in full: {rerecord_command(trace)}"
            )
        )


def print_stage_show(trace, name: str, width: int | None = None) -> None:
    """Print ``trace show TRACE STAGE``: one stage's statistics, hash, channel means and (full trace) values."""
    console = make_console(width)
    stage = stage_dict(trace, name)
    sketch = stage["stats_only"]
    console.print(Text(f"trace: {trace.label}" + (" (stats-only trace, recorded with --stats)" if sketch else "")))
    console.print(
        Text(
            f"stage {name} ({stage['index']} of {stage['of']}): shape {tuple(stage['shape'])} "
            f"{stage['dtype']}, {stage['count']} value{'s' * (stage['count'] != 1)}",
            style="bold",
        )
    )
    console.print(
        Text(
            f"  [min, max] mean±std: {fmt_side(_Stats({**stage, 'nan': 0, 'posinf': 0, 'neginf': 0}))}, "
            f"|max| {fmt(stage['abs_max'])}"
        )
    )
    bad = [f"{stage[k]} {label}" for k, label in (("nan", "NaN"), ("posinf", "+inf"), ("neginf", "-inf")) if stage[k]]
    console.print(Text(f"  non-finite: {', '.join(bad) or 'none'}"))
    console.print(Text(f"  hash: {stage['hash']}"))
    means = stage["channel_means"]
    if stage["axis"] is None:
        console.print(Text(f"  channel means: none (a 0-d or 1-d stage, or an axis longer than {MAX_CHANNELS:,})"))
    else:
        values = np.array([np.nan if m is None else m for m in means])
        text = np.array2string(values, precision=4, threshold=12, edgeitems=3, max_line_width=10**6)
        console.print(Text(f"  channel means along axis {stage['axis']} ({len(means)}): {text}"))
    if sketch:
        from ..compare.sketches.detail import rerecord_command

        console.print(Text(f"  values: not recorded; to record them: {rerecord_command(trace, name)}"))
        return
    size = int(np.prod(stage["shape"], dtype=np.int64))
    if size > MAX_PRINTED:
        console.print(Text(f"  values: {size} elements, too many to print here"))
        return
    text = np.array2string(
        np.asarray(trace.read(name)), precision=4, threshold=40, edgeitems=3, max_line_width=max(40, console.width - 4)
    )
    console.print(Text("  values:\n" + "\n".join("    " + line for line in text.splitlines())))
