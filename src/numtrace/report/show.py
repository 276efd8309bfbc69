"""``trace show``: a trace's metadata and its stages with their statistics; ``trace show TRACE STAGE``:
one stage in detail.

A stats-only trace (``trace run --stats``, :mod:`numtrace.compare.sketches.format`) is listed with
each stage's recorded shape and dtype, its recorded statistics, channel means
and hash, and said to be one; its stored tensors (the channel means) are not
shown as if they were the stages. One stage in detail: shape, dtype, count,
statistics, non-finite counts, hash and channel means (briefly, as numpy prints
a long array) of either kind of trace (a full trace's stage is sketched on the
fly), and for a full trace its values.

What is printed comes computed: :func:`numtrace.compare.views.show_dict` and
:func:`numtrace.compare.views.stage_dict` (the JSON of ``trace show --json``);
``trace show`` itself, opening the trace and reading a stage's values, is
:mod:`numtrace.commands.show`.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare.views import stage_dict
    >>> x = np.arange(6.0).reshape(2, 3)
    >>> render_stage(stage_dict(MemoryTrace({"x": x}), "x"), "<memory>", x, width=60)  # doctest: +ELLIPSIS
    trace: <memory>
    stage x (1 of 1): shape (2, 3) float64, 6 values
      [min, max] mean±std: [0, 5] 2.5±1.708, |max| 5
      non-finite: none
      hash: blake2b:...
      channel means along axis 1 (3): [1.5 2.5 3.5]
      values:
        [[0. 1. 2.]
         [3. 4. 5.]]
"""

from __future__ import annotations

import json

import numpy as np
from rich.table import Table
from rich.text import Text

from ..compare.sketches.format import MAX_CHANNELS
from .table import make_console
from .words import fmt, fmt_side

#: ``trace show TRACE STAGE`` prints the values of a full trace's stage up to this many elements
MAX_PRINTED = 1 << 20
_STATS_ONLY = (
    "stats-only trace (recorded with --stats): statistics, channel means and a hash of each stage, not its values"
)


def _metadata_lines(data: dict, total: int) -> list[str]:
    meta = data["metadata"]
    lines = [f"trace: {data['path']}"]
    if data["stats_only"]:
        lines.append(_STATS_ONLY)
    order = (
        "recorded (numtrace.order)"
        if data["order"] == "recorded"
        else "natural sort of the names (the file has no numtrace.order)"
    )
    lines.append(f"stages: {total}, order: {order}")
    for key in ("numtrace.version", "numtrace.backend", "numtrace.created", "numtrace.status", "numtrace.argv"):
        if key in meta:
            lines.append(f"{key.removeprefix('numtrace.')}: {meta[key]}")
    if "numtrace.frameworks" in meta:
        try:
            frameworks = ", ".join(f"{k} {v}" for k, v in json.loads(meta["numtrace.frameworks"]).items())
        except (ValueError, AttributeError):
            frameworks = meta["numtrace.frameworks"]
        lines.append(f"frameworks: {frameworks}")
    for key, value in meta.items():
        if not key.startswith("numtrace."):  # the user's own metadata
            lines.append(f"{key}: {value}")
    return lines


class _Stats:
    def __init__(self, data: dict) -> None:
        self.__dict__.update(data)


def render_show(data: dict, total: int, rerecord: str | None = None, width: int | None = None) -> None:
    """Print ``trace show``: the metadata, then a table of the stages, from ``data`` (``trace show
    --json``'s object) of a trace of ``total`` stages; ``rerecord``: the command that records a
    stats-only trace's stages in full."""
    console = make_console(width)
    for line in _metadata_lines(data, total):
        console.print(Text(line))
    sketch = data["stats_only"]
    columns = ["#", "stage", "shape", "dtype", "[min, max] mean±std", "abs max"]
    columns += ["channel means", "hash"] if sketch else []
    table = Table(header_style="bold")
    for column in columns:
        table.add_column(Text(column), justify="right" if column in ("#", "abs max") else "left", overflow="fold")
    for index, entry in enumerate(data["stages"], 1):
        cells = [
            str(index),
            entry["name"],
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
        console.print(
            Text(f"`trace show {data['path']} STAGE`: one stage's sketch. To record stages in full: {rerecord}")
        )


def render_stage(
    stage: dict, label: str, values: np.ndarray | None = None, rerecord: str | None = None, width: int | None = None
) -> None:
    """Print ``trace show TRACE STAGE``: one stage's statistics, hash, channel means and (full trace) values,
    from ``stage`` (``trace show TRACE STAGE --json``'s object) of the trace ``label``; ``values``: the
    stage's values, None when they are too many to print (:data:`MAX_PRINTED`) or not recorded (then
    ``rerecord`` is the command that records them)."""
    console = make_console(width)
    name = stage["name"]
    sketch = stage["stats_only"]
    console.print(Text(f"trace: {label}" + (" (stats-only trace, recorded with --stats)" if sketch else "")))
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
        channel = np.array([np.nan if m is None else m for m in means])
        text = np.array2string(channel, precision=4, threshold=12, edgeitems=3, max_line_width=10**6)
        console.print(Text(f"  channel means along axis {stage['axis']} ({len(means)}): {text}"))
    if sketch:
        console.print(Text(f"  values: not recorded; to record them: {rerecord}"))
        return
    if values is None:
        size = int(np.prod(stage["shape"], dtype=np.int64))
        console.print(Text(f"  values: {size} elements, too many to print here"))
        return
    text = np.array2string(
        np.asarray(values), precision=4, threshold=40, edgeitems=3, max_line_width=max(40, console.width - 4)
    )
    console.print(Text("  values:\n" + "\n".join("    " + line for line in text.splitlines())))
