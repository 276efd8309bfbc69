"""What to record: include/exclude globs over stage names.

Globs use shell syntax (``*``, ``?``, ``[2-4]``) and match the whole name,
case-sensitively. A name is kept when it matches any include glob (or there
are none) and no exclude glob.

Example:
    >>> f = StageFilter(include=["decoder.*"], exclude=["*.dropout"])
    >>> f("decoder.final_proj"), f("decoder.dropout"), f("encoder.out")
    (True, False, False)
"""

from __future__ import annotations

import fnmatch
import re
from typing import Iterable


def compile_globs(globs: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching any of ``globs`` (None when there are none)."""
    parts = [fnmatch.translate(g) for g in globs]
    return re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None


class StageFilter:
    """A predicate over stage names built from include and exclude globs."""

    def __init__(self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None) -> None:
        self.include = list(include or [])
        self.exclude = list(exclude or [])
        self._include = compile_globs(self.include)
        self._exclude = compile_globs(self.exclude)

    @property
    def is_everything(self) -> bool:
        return self._include is None and self._exclude is None

    def __call__(self, *names: str) -> bool:
        """True when any of ``names`` (e.g. a stage and its base name) is selected."""
        return any(self._selects(n) for n in names)

    def _selects(self, name: str) -> bool:
        if self._include is not None and not self._include.match(name):
            return False
        return self._exclude is None or not self._exclude.match(name)

    def __repr__(self) -> str:
        return f"StageFilter(include={self.include!r}, exclude={self.exclude!r})"
