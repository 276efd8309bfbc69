"""``trace show``: a trace's metadata and its stages with their statistics.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> show_dict(MemoryTrace({"x": np.arange(4.0)}))["stages"][0]["mean"]
    1.5
"""

from __future__ import annotations

import json

from rich.table import Table
from rich.text import Text

from ..compare.stats import summarize
from ..probes import StageFilter
from .table import make_console
from .words import fmt, fmt_side

CHUNK_ELEMENTS = 1 << 20


def _selected(trace, only: list[str] | None) -> list[str]:
    keep = StageFilter(only)
    return [name for name in trace.order if keep(name)]


def _stats_dict(stats) -> dict:
    return {
        "shape": list(stats.shape),
        "dtype": stats.dtype,
        **{key: getattr(stats, key) for key in ("count", "min", "max", "mean", "std", "abs_max", "nan", "posinf", "neginf")},
    }


def show_dict(trace, only: list[str] | None = None) -> dict:
    """The JSON form of ``trace show``: path, metadata, order source and per-stage statistics."""
    return {
        "path": trace.label,
        "order": "recorded" if trace.has_order else "natural",
        "metadata": dict(trace.metadata),
        "stages": [{"name": name, **_stats_dict(summarize(trace, name, CHUNK_ELEMENTS))} for name in _selected(trace, only)],
    }


def _metadata_lines(trace) -> list[str]:
    meta = trace.metadata
    lines = [f"trace: {trace.label}"]
    order = "recorded (numtrace.order)" if trace.has_order else "natural sort of the names (the file has no numtrace.order)"
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


def print_show(trace, only: list[str] | None = None, width: int | None = None) -> None:
    console = make_console(width)
    for line in _metadata_lines(trace):
        console.print(Text(line))
    table = Table(header_style="bold", pad_edge=False)
    for column, justify in (("#", "right"), ("stage", "left"), ("shape", "left"), ("dtype", "left"),
                            ("[min, max] mean±std", "left"), ("abs max", "right")):
        table.add_column(Text(column), justify=justify, overflow="fold")
    for index, name in enumerate(_selected(trace, only), 1):
        stats = summarize(trace, name, CHUNK_ELEMENTS)
        shape = str(tuple(stats.shape))
        table.add_row(*(Text(cell) for cell in (str(index), name, shape, stats.dtype, fmt_side(stats), fmt(stats.abs_max))))
    console.print(table)
