"""Long traces stay scannable: runs of MATCH stages, and of stages that only inherit an error, as one line.

A trace of hundreds of stages (a transformer's every module) is mostly MATCH; what a person looks
for is the few that are not, and where the error is born. When a trace has more than
:data:`SHOW_ALL` stages, every run of at least :data:`MIN_RUN` consecutive MATCH stages becomes
one :class:`Run` ("12 stages MATCH: model.layers.0.*"), and so does every such run of stages after
the root cause with one verdict whose error is inherited, not born there ("124 stages LARGE, the
error inherited"; with a replay, those whose own error is MATCH, and never one with an own error),
and every run of stages on one side only (a port's extra outputs, key/value caches: "10 stages
only in the candidate: encoder.blocks.*.attn.2 (2), …"). Stages with a marker (the first
divergence, the root cause, an error born under the tolerance) or whose error is born there are
always shown; ``expand=True`` (``trace diff --all``) shows every stage.

Example:
    >>> from types import SimpleNamespace as S
    >>> stages = [S(name=f"model.layers.{i // 4}.{n}", verdict=S(value="MATCH"), born_here=False, rel_err=1e-7)
    ...           for i, n in enumerate(["q", "k", "v", "o"] * 10)]
    >>> stages[20].verdict = S(value="LARGE")
    >>> rows = collapse(stages, show_all=24, min_run=4)
    >>> [row.text() if isinstance(row, Run) else row for row in rows][:2]
    ['20 stages MATCH: model.layers.0.* … model.layers.4.* (rel err <= 1e-07)', 20]
"""

from __future__ import annotations

from dataclasses import dataclass

from ..compare.rootcause import introduces_error
from .words import fmt

#: a trace of at most this many stages shows every stage
SHOW_ALL = 24
#: consecutive MATCH stages shown as one line when there are at least this many
MIN_RUN = 4


@dataclass(frozen=True)
class Run:
    """Stages ``start`` to ``stop - 1`` (indices into the report's stages), all of ``verdict``: MATCH, or
    SMALL/LARGE stages that only carry an error born upstream (their relative errors from
    ``smallest_rel_err`` to ``largest_rel_err``)."""

    start: int
    stop: int
    names: tuple[str, ...]
    largest_rel_err: float | None
    verdict: str = "MATCH"
    smallest_rel_err: float | None = None

    def pattern(self) -> str:
        """The names, as short as they can be said: ``model.layers.0.*`` or ``first.* … last.*``."""
        first, last = self.names[0].split("."), self.names[-1].split(".")
        common = _common_prefix([name.split(".") for name in self.names])
        if common and len(common) >= min(len(first), len(last)) - 1:
            return ".".join(common) + ".*"
        if len(first) > 1 and len(last) > 1:
            depth = max(len(common) + 1, 1)
            return f"{'.'.join(first[:depth])}.* … {'.'.join(last[:depth])}.*"
        return f"{self.names[0]} … {self.names[-1]}"

    def text(self) -> str:
        count = self.stop - self.start
        if self.verdict.startswith("MISSING"):
            side = "reference" if self.verdict.endswith(":a") else "candidate"
            return f"{count} stages only in the {side}: {name_patterns(self.names)}"
        if self.verdict != "MATCH":
            span = ""
            if self.smallest_rel_err is not None and self.largest_rel_err is not None:
                span = f", rel err {fmt(self.smallest_rel_err, 2)} to {fmt(self.largest_rel_err, 2)}"
            return f"{count} stages {self.verdict}, the error inherited from upstream{span}: {self.pattern()}"
        if self.largest_rel_err is None:
            rel = ""
        else:
            rel = " (identical)" if self.largest_rel_err == 0 else f" (rel err <= {fmt(self.largest_rel_err, 2)})"
        return f"{count} stages MATCH: {self.pattern()}{rel}"


def name_patterns(names, limit: int = 4) -> str:
    """The names with their numbers as ``*``, each pattern once with its count, in order of first
    appearance: ``encoder.blocks.*.attn.2 (2), decoder.blocks.*.cross_attn.2 (2), … 3 more``.

    Example:
        >>> name_patterns(["enc.blocks.0.attn.2", "enc.blocks.1.attn.2", "dec.2.0", "dec.2.1", "logits"])
        'enc.blocks.*.attn.* (2), dec.*.* (2), logits'
    """
    counts: dict[str, int] = {}
    for name in names:
        pattern = ".".join("*" if part.isdigit() else part for part in name.split("."))
        counts[pattern] = counts.get(pattern, 0) + 1
    shown = [p if n == 1 else f"{p} ({n})" for p, n in list(counts.items())[:limit]]
    more = len(counts) - limit
    return ", ".join(shown) + (f", … {more} more" if more > 0 else "")


def _common_prefix(parts: list[list[str]]) -> list[str]:
    common: list[str] = []
    for column in zip(*parts):
        if len(set(column)) != 1:
            break
        common.append(column[0])
    return common


def collapse(stages, *, expand: bool = False, keep=(), show_all: int = SHOW_ALL, min_run: int = MIN_RUN) -> list:
    """The rows to show: stage indices, and :class:`Run` objects for long runs (module docstring).
    ``keep``: indices always shown (the first divergence, the root cause)."""
    indices = list(range(len(stages)))
    if expand or len(stages) <= show_all:
        return indices
    keep = set(keep)
    after = min(keep) if keep else len(stages)  # inherited errors come after the first divergence

    def kind(i: int) -> str | None:
        """The run a stage may join: its verdict, or None when it must be shown."""
        stage = stages[i]
        verdict = stage.verdict.value
        if i in keep or getattr(stage, "born_here", False):
            return None
        if verdict == "MATCH":
            return verdict
        if verdict == "MISSING":  # one side's extras (caches, logits): one line per side's run
            return f"MISSING:{'a' if getattr(stage, 'only_in', None) == 'a' else 'b'}"
        own = getattr(stage, "own", None)
        if own is not None:  # a replay says it: an own error is shown, an inherited one may join a run
            return None if own.flagged else verdict if own.inherited else None
        inherited = i > after and verdict in ("SMALL", "LARGE") and not introduces_error(stage)
        return verdict if inherited else None

    rows: list = []
    i = 0
    while i < len(stages):
        current = kind(i)
        j = i + 1
        while current is not None and j < len(stages) and kind(j) == current:
            j += 1
        if current is not None and j - i >= min_run:
            errs = [stages[k].rel_err for k in range(i, j) if getattr(stages[k], "rel_err", None) is not None]
            rows.append(Run(i, j, tuple(stages[k].name for k in range(i, j)), max(errs) if errs else None,
                            current, min(errs) if errs else None))  # fmt: skip
        else:
            rows.extend(range(i, j))
        i = j
    return rows
