"""A progress bar on stderr for long work (``trace diff`` of big traces, ``trace run`` writing them).

Shown only when stderr is a terminal, and only once the work has taken longer than ``after``
seconds (1 s for a diff, 2 s for a recording; ``NUMTRACE_PROGRESS_AFTER`` overrides both, ``-1``
turns the bar off): a quick command prints nothing extra, a redirected one never gets escape
codes, and stdout (the table, ``--json``) is never touched. The bar is transient: it disappears
when the work ends.

Example:
    >>> import io
    >>> with Progress("comparing", total=3, stream=io.StringIO()) as bar:   # not a terminal: silent
    ...     bar.update(1, detail="mel")
    >>> bar.shown
    False
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any


def _after(default: float) -> float:
    try:
        return float(os.environ.get("NUMTRACE_PROGRESS_AFTER", default))
    except ValueError:
        return default


class Progress:
    """``with Progress(description, total) as bar: bar.update(done, detail=...)`` (module docstring)."""

    def __init__(self, description: str, total: float | None = None, *, unit: str = "stages",
                 after: float = 1.0, stream: IO[str] | None = None) -> None:  # fmt: skip
        self.description, self.total, self.unit = description, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.after = _after(after)
        self.enabled = self.after >= 0 and bool(getattr(self.stream, "isatty", lambda: False)())
        self.shown = False
        self._start = time.monotonic()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> "Progress":
        self._start = time.monotonic()
        return self

    def update(self, completed: float, total: float | None = None, detail: str = "") -> None:
        """Report progress; the bar appears once ``after`` seconds have passed."""
        if not self.enabled:
            return
        if total is not None:
            self.total = total
        if self._bar is None:
            if time.monotonic() - self._start < self.after:
                return
            self._open()
        self._bar.update(self._task, completed=completed, total=self.total, detail=detail)

    def _open(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(self.unit),
                   TimeElapsedColumn(), TextColumn("{task.fields[detail]}")]  # fmt: skip
        if self.total is None:
            columns = [TextColumn("{task.description}"), TextColumn("{task.fields[detail]}"), TimeElapsedColumn()]
        # sys.stdout/sys.stderr left alone: `trace run` shows the bar while the user's script runs, and
        # a script that writes to sys.stdout.buffer must not meet rich's proxy in its place
        console = Console(file=self.stream)
        self._bar = Bar(*columns, console=console, transient=True, redirect_stdout=False, redirect_stderr=False)
        self._bar.start()
        self._task = self._bar.add_task(self.description, total=self.total, detail="")
        self.shown = True

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
