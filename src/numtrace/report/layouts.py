"""The ``trace diff`` table in three layouts, chosen by the terminal's width.

- ``wide`` (:data:`WIDE_MIN` columns and more): every column: both sides' range and mean±std,
  max and mean |Δ|, relative error and growth, verdict and share out of tolerance, diagnosis.
- ``medium``: the side statistics give way to the diagnosis; the shape goes under the stage.
- ``narrow`` (:data:`NARROW_MAX` columns or fewer: a laptop's split pane, a CI log): one line per
  stage (marker, stage, verdict, relative error, max |Δ|) and, below it, the diagnosis wrapped
  to the width.

In every layout a number is never broken across lines (its cells do not wrap) and the diagnosis
is never cut: it wraps. A layout whose cells do not fit whole at the width (:func:`needed_width`)
gives way to the next narrower one. Long traces collapse runs of MATCH stages (:mod:`numtrace.report.runs`).

Example:
    >>> choose_layout(80), choose_layout(120), choose_layout(200), choose_layout(80, "wide")
    ('narrow', 'medium', 'wide', 'wide')
"""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
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


def choose_layout(width: int, forced: str | None = None) -> str:
    """``forced`` when given (``--wide``, ``--narrow``), else by the width in columns."""
    if forced is not None:
        return forced
    return "narrow" if width <= NARROW_MAX else "wide" if width >= WIDE_MIN else "medium"


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

    def name(self, stage, shape: bool = False) -> Text:
        text = stage.name if not stage.name_b else f"{stage.name}\n↔ {stage.name_b}"
        if shape:
            text += f"\n{fmt_shape(stage.a, stage.b)}"
        important = stage.verdict.value in ("SMALL", "LARGE") and stage.name in (self.first, self.root)
        return Text(text, style="bold" if important else "")

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


def medium_table(rows: Rows) -> Table:
    table = Table(header_style="bold", pad_edge=False, expand=False, box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column(Text("stage\nshape"), overflow="fold", min_width=14, max_width=30)
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
    return table


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
        if words and (stage.verdict.value != "MATCH" or getattr(stage, "born_here", False)):
            parts.append(Padding(Text(f"↳ {words}", style="italic"), (0, 0, 0, widths[0] + 4)))
    return Group(*parts)


def _narrow_cells(rows: Rows, row) -> list[Text] | None:
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
    grid.add_row(*[cell if isinstance(cell, Text) else Text(cell, style=style) for cell in cells])
    return grid
