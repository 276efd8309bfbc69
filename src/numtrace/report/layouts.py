"""The ``trace diff`` table in three layouts, chosen by the terminal's width.

- ``wide`` (:data:`WIDE_MIN` columns and more): every column: both sides' range and mean±std,
  max and mean |Δ|, relative error and growth, verdict and share out of tolerance, diagnosis.
- ``medium``: the side statistics give way to the diagnosis; the shape goes under the stage.
- ``narrow`` (:data:`NARROW_MAX` columns or fewer: a laptop's split pane, a CI log): one line per
  stage (marker, stage, verdict, relative error, max |Δ|) and, below it, the diagnosis wrapped
  to the width.

In every layout a number is never broken across lines (its cells do not wrap), the diagnosis is
never cut: it wraps, and a long stage name wraps at its ``.`` and ``_`` (:class:`StageName`). A
layout whose cells do not fit whole at the width (:func:`needed_width`) gives way to the next
narrower one. Long traces collapse runs of MATCH stages (:mod:`numtrace.report.runs`); a stage
shown in the narrow layout has its diagnosis below it when it is not MATCH, when an error is born
there, or when it was paired by the alignment or through a twin (what the wider layouts say of it
in their diagnosis column).

Example:
    >>> choose_layout(80), choose_layout(120), choose_layout(200), choose_layout(80, "wide")
    ('narrow', 'medium', 'wide', 'wide')
"""

from __future__ import annotations

import re

from rich import box
from rich.cells import cell_len, chop_cells
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from .runs import Run, collapse
from .words import fmt, fmt_percent, fmt_shape, fmt_side

LAYOUTS = ("narrow", "medium", "wide")
#: terminals this wide or narrower get the narrow layout
NARROW_MAX = 100
#: terminals this wide or wider get the wide layout
WIDE_MIN = 160
VERDICT_STYLES = {"MATCH": "green", "SMALL": "yellow", "LARGE": "bold red", "MISSING": "magenta"}
#: the medium layout's stage column is at most this wide, unless the diagnosis has room to spare
STAGE_MAX = 30
#: the medium layout's diagnosis keeps this many columns (or its longest line, if shorter) from the stage
DIAGNOSIS_KEEP = 40
#: a stage name's parts: each ends after its ``.``, ``_``, ``-``, ``/`` or spaces, where a line may break
_PARTS = re.compile(r"[^._\-/ ]*[._\-/ ]+|[^._\-/ ]+")


def choose_layout(width: int, forced: str | None = None) -> str:
    """``forced`` when given (``--wide``, ``--narrow``), else by the width in columns."""
    if forced is not None:
        return forced
    return "narrow" if width <= NARROW_MAX else "wide" if width >= WIDE_MIN else "medium"


def break_offsets(line: str, width: int) -> list[int]:
    """Where to break ``line`` so that each piece fits ``width`` columns: after a ``.``, ``_``,
    ``-``, ``/`` or space, and inside a part only when the part alone is wider than ``width``.

    Example:
        >>> name = "model.encoder.layers.11.self_attention.output_dense"
        >>> cuts = break_offsets(name, 20)
        >>> [name[i:j] for i, j in zip([0, *cuts], [*cuts, len(name)])]
        ['model.encoder.', 'layers.11.self_', 'attention.output_', 'dense']
    """
    offsets: list[int] = []
    start = used = 0  # where the current part begins; columns used on the current line
    for part in _PARTS.findall(line):
        if used and used + cell_len(part.rstrip()) > width:
            offsets.append(start)
            used = 0
        if used == 0 and cell_len(part.rstrip()) > width:  # a part wider than the line: folded
            pieces = chop_cells(part, width)
            offsets += [start + sum(map(len, pieces[:k])) for k in range(1, len(pieces))]
            used = cell_len(pieces[-1])
        else:
            used += cell_len(part)
        start += len(part)
    return offsets


class StageName:
    """A stage cell (the name, ``↔ candidate name``, the shape) that wraps a long name at its
    ``.`` and ``_`` (:func:`break_offsets`), never mid-word where a boundary is near: rich breaks
    lines at spaces only, and folds a name without one anywhere. It measures as its text."""

    def __init__(self, text: Text) -> None:
        self.text = text

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.text)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = []
        for line in self.text.split("\n", allow_blank=True):
            for piece in line.divide(break_offsets(line.plain, options.max_width)):
                piece.rstrip()
                lines.append(piece)
        yield Text("\n").join(lines)


class Rows:
    """What each layout shows of a report: the rows (stages and runs) and each stage's cells."""

    def __init__(self, report, diagnosis, expand: bool = False) -> None:
        self.report = report
        self.stages = report.stages
        self.diagnosis = diagnosis  # stage -> its diagnosis in words
        self.first, self.root = report.first_divergence, report.root_cause
        keep = [i for i, s in enumerate(self.stages) if s.name in (self.first, self.root)]
        self.rows = collapse(self.stages, expand=expand, keep=keep)

    def marker(self, stage) -> Text:
        failing = stage.verdict.value in ("SMALL", "LARGE")
        text = Text("▶" if failing and stage.name == self.first else "", style="bold red")
        text += Text("★" if failing and stage.name == self.root else "", style="bold magenta")
        if getattr(stage, "born_here", False):
            text += Text("↑", style="bold yellow")
        return text

    def name(self, stage, shape: bool = False) -> StageName:
        text = stage.name if not stage.name_b else f"{stage.name}\n↔ {stage.name_b}"
        if shape:
            text += f"\n{fmt_shape(stage.a, stage.b)}"
        important = stage.verdict.value in ("SMALL", "LARGE") and stage.name in (self.first, self.root)
        return StageName(Text(text, style="bold" if important else ""))

    @staticmethod
    def noted(stage) -> bool:
        """Whether the narrow layout gives the stage its diagnosis line: not MATCH, an error born
        there, or a pairing beyond names (an alignment's score, a twin's ``= x``), which the
        wider layouts' diagnosis column shows for a MATCH stage too."""
        if stage.verdict.value != "MATCH" or getattr(stage, "born_here", False):
            return True
        return getattr(stage, "pairing", "exact") == "aligned" or getattr(stage, "twin", None) is not None

    @staticmethod
    def verdict(stage, share: bool = True) -> Text:
        value = stage.verdict.value
        text = Text(value, style=VERDICT_STYLES[value])
        if share and stage.diff is not None:
            text += Text(f"\n{fmt_percent(stage.diff.mismatched, stage.diff.total)}")
        return text

    @staticmethod
    def rel_err(stage, growth: bool = True) -> Text:
        d = stage.diff
        if d is None:
            return Text("—")
        return Text(fmt(d.rel_rms, 2) + (f"\n{fmt_growth(stage)}" if growth else ""))

    @staticmethod
    def delta(stage, mean: bool = True) -> Text:
        d = stage.diff
        if d is None:
            return Text("—")
        return Text(fmt(d.abs_max) + (f"\n{fmt(d.abs_mean)}" if mean else ""))


def fmt_growth(stage) -> str:
    """``×340`` (growth over the previous compared stage), '—' when there is none."""
    growth = getattr(stage, "growth", None)
    if growth is None:
        return "—"
    return "×inf" if growth == float("inf") else f"×{fmt(growth, 2)}"


def needed_width(console, table: Table) -> int:
    """The narrowest width at which ``table`` shows every cell whole: each column that does not wrap
    (numbers, shapes, statistics) as wide as its widest cell, each column that wraps at least its
    ``min_width`` and its header's width, plus padding and borders.

    rich, short of room, narrows even the columns that must not wrap (it crops them), and wraps
    the others below their ``min_width``: a layout is used only where it fits.
    """
    options = console.options.update_width(1 << 14)
    _, right, _, left = table.padding  # (top, right, bottom, left)
    total = 0
    for column in table.columns:
        header = Measurement.get(console, options, column.header).maximum
        if column.no_wrap:
            total += max([header] + [Measurement.get(console, options, cell).maximum for cell in column.cells])
        else:
            total += max(header, column.min_width or 0)
        total += left + right
    if not table.pad_edge:
        total -= left + right
    if table.box is not None:
        total += len(table.columns) - 1 + (2 if table.show_edge else 0)
    return total


def _run_cells(run: Run, columns: int, text_column: int) -> list:
    cells: list = [Text("")] * columns
    cells[text_column] = Text(run.text(), style="green")
    return cells


def wide_table(rows: Rows) -> Table:
    table = Table(header_style="bold", expand=False)
    table.add_column("", no_wrap=True)
    table.add_column("#", justify="right", no_wrap=True)
    longest = max((max(len(s.name), len(s.name_b or "") + 2) for s in rows.stages), default=5)
    table.add_column("stage", overflow="fold", min_width=min(longest, 22), max_width=26)
    table.add_column("shape", no_wrap=True)
    table.add_column(Text("reference\n[min, max]\nmean±std"), no_wrap=True)
    table.add_column(Text("candidate\n[min, max]\nmean±std"), no_wrap=True)
    table.add_column(Text("max |Δ|\nmean |Δ|"), justify="right", no_wrap=True)
    table.add_column(Text("rel err\ngrowth"), justify="right", no_wrap=True)
    table.add_column(Text("verdict\nout of tol"), no_wrap=True)
    table.add_column("diagnosis", overflow="fold", min_width=24)
    for row in rows.rows:
        if isinstance(row, Run):
            table.add_row(*_run_cells(row, 10, 9))
            continue
        stage = rows.stages[row]
        table.add_row(
            rows.marker(stage), Text(str(row + 1)), rows.name(stage), Text(fmt_shape(stage.a, stage.b)),
            Text(fmt_side(stage.a, two_lines=True)), Text(fmt_side(stage.b, two_lines=True)),
            rows.delta(stage), rows.rel_err(stage), rows.verdict(stage), Text(rows.diagnosis(stage)),
        )  # fmt: skip
    return table


def medium_table(rows: Rows, console: Console | None = None) -> Table:
    """The medium layout; given the ``console`` it prints on, the stage column takes the room the
    diagnosis does not need (:func:`stage_room`), else at most :data:`STAGE_MAX` columns."""
    table = Table(header_style="bold", pad_edge=False, expand=False, box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column(Text("stage\nshape"), overflow="fold", min_width=14, max_width=STAGE_MAX)
    table.add_column(Text("verdict\nout of tol"), no_wrap=True)
    table.add_column(Text("rel err\ngrowth"), justify="right", no_wrap=True)
    table.add_column(Text("max |Δ|\nmean |Δ|"), justify="right", no_wrap=True)
    table.add_column("diagnosis", overflow="fold", min_width=24, ratio=1)
    for row in rows.rows:
        if isinstance(row, Run):
            table.add_row(*_run_cells(row, 7, 6))
            continue
        stage = rows.stages[row]
        table.add_row(
            rows.marker(stage), Text(str(row + 1)), rows.name(stage, shape=True), rows.verdict(stage),
            rows.rel_err(stage), rows.delta(stage), Text(rows.diagnosis(stage)),
        )  # fmt: skip
    if console is not None:
        table.columns[2].max_width = stage_room(console, table)
    return table


def stage_room(console: Console, table: Table) -> int:
    """The medium table's stage column width limit at ``console``'s width: its longest line when
    the diagnosis keeps :data:`DIAGNOSIS_KEEP` columns (or its own longest line, if shorter)
    beside it, never less than :data:`STAGE_MAX`.

    The diagnosis wraps at spaces and reads well at 40 columns; a name wrapped into three pieces
    reads worse than a diagnosis one line longer."""
    stage, diagnosis = table.columns[2], table.columns[-1]
    options = console.options.update_width(1 << 14)
    longest = [max([0] + [Measurement.get(console, options, cell).maximum for cell in column.cells])
               for column in (stage, diagnosis)]  # fmt: skip
    others = needed_width(console, table) - (stage.min_width or 0) - (diagnosis.min_width or 0)
    keep = max(diagnosis.min_width or 0, min(longest[1], DIAGNOSIS_KEEP))
    return max(STAGE_MAX, min(longest[0], console.width - others - keep))


def narrow_view(rows: Rows, width: int) -> RenderableType:
    """One line per stage, its diagnosis wrapped below it over the whole width (module docstring)."""
    cells = [_narrow_cells(rows, row) for row in rows.rows]
    widths = [max([len(header)] + [cell[k].cell_len for cell in cells if cell is not None])
              for k, header in ((1, "#"), (3, "verdict"), (4, "rel err"), (5, "max |Δ|"))]  # fmt: skip
    parts: list[RenderableType] = [_narrow_line(["", "#", "stage", "verdict", "rel err", "max |Δ|"], widths, "bold")]
    parts.append(Text("─" * width, style="dim"))
    for row, cell in zip(rows.rows, cells):
        if cell is None:
            parts.append(Padding(Text(row.text(), style="green"), (0, 0, 0, widths[0] + 4)))
            continue
        parts.append(_narrow_line(cell, widths))
        stage = rows.stages[row]
        words = rows.diagnosis(stage)
        if words and rows.noted(stage):
            parts.append(Padding(Text(f"↳ {words}", style="italic"), (0, 0, 0, widths[0] + 4)))
    return Group(*parts)


def _narrow_cells(rows: Rows, row) -> list | None:
    if isinstance(row, Run):
        return None
    stage = rows.stages[row]
    return [rows.marker(stage), Text(str(row + 1)), rows.name(stage), rows.verdict(stage, share=False),
            rows.rel_err(stage, growth=False), rows.delta(stage, mean=False)]  # fmt: skip


def _narrow_line(cells: list, widths: list[int], style: str = "") -> Table:
    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(width=2, no_wrap=True)
    grid.add_column(width=widths[0], justify="right", no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")
    grid.add_column(width=widths[1], no_wrap=True)
    grid.add_column(width=widths[2], justify="right", no_wrap=True)
    grid.add_column(width=widths[3], justify="right", no_wrap=True)
    grid.add_row(*[Text(cell, style=style) if isinstance(cell, str) else cell for cell in cells])
    return grid
