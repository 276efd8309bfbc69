"""The results of a diff: one :class:`StageResult` per stage, a :class:`DiffReport` for all.

``to_dict`` gives the JSON report of ``trace diff --json`` (docs/report.md, and its
schema docs/report.schema.json). Per stage, beyond the essentials: ``pairing`` (how the names were paired:
exact, mapped, normalized, tuple, missing), ``rel_err`` (the relative error
the root-cause analysis uses) and ``growth`` (its ratio to the previous
compared stage's), ``born_here`` (true on a MATCH stage whose error jumps far
above everything before it) and, in ``tolerance``, ``inherited`` (the coarser
precision the tolerance follows, :mod:`numtrace.compare.precision`); at the
top: ``root_cause`` (a stage name or null), ``largest_jump`` (the stage whose
error jumps most over everything before it, or null), ``compared`` (stages on
both sides), ``status`` (each recording's ``numtrace.status``, null when
unknown), ``incomplete`` (why the diff cannot vouch for the candidate: a
recording that did not complete, nothing compared; empty when complete) and
``ignored`` (stages left out of the pairing, per side: a map file's ignore lists,
one side's recorded inputs). See
:mod:`numtrace.compare.rootcause` for the definitions.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare import diff
    >>> x = np.linspace(-10.0, 0.0, 64)
    >>> out = diff(MemoryTrace({"enc": x, "mel": x}), MemoryTrace({"enc": x, "mel": x - 1.46})).to_dict()
    >>> out["first_divergence"], out["root_cause"], out["stages"][1]["diagnosis"][0]["kind"]
    ('mel', 'mel', 'offset')
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import overload

from ..errors import UsageError
from . import rootcause
from .findings import Finding
from .own import OwnError, own_errors, own_root_cause
from .precision import Inherited
from .statistics.stats import DiffStats, SideStats
from .verdict import Tolerance, Verdict

FAIL_ON = ("large", "small", "missing", "never")
_SIDE_NAMES = {"a": "reference", "b": "candidate"}
_FAILING = {
    "large": {Verdict.LARGE},
    "small": {Verdict.SMALL, Verdict.LARGE},
    "missing": {Verdict.LARGE, Verdict.MISSING},
    "never": set(),
}


@dataclass(kw_only=True)
class StageResult:
    """The comparison of one stage.

    ``name`` is the reference's stage name (the candidate's for a candidate-only
    stage); ``name_b`` the candidate's when it differs, else None. ``a``/``b``
    are the sides' statistics (None for the side that lacks the stage), ``diff``
    the difference metrics (None when MISSING or when the shapes cannot be
    lined up). ``pairing`` says how the names were paired; ``rel_err``,
    ``growth`` and ``jump`` are set by :func:`numtrace.compare.rootcause.annotate`;
    ``alignment_note`` is the part of ``note`` about pairing and alignment;
    ``precision`` the coarser precision the tolerance inherited from upstream
    (:mod:`numtrace.compare.precision`; None when the stage's own dtypes set it).
    """

    name: str
    name_b: str | None = None
    verdict: Verdict
    a: SideStats | None = None
    b: SideStats | None = None
    diff: DiffStats | None = None
    tolerance: Tolerance | None = None
    diagnosis: list[Finding] = field(default_factory=list)
    note: str = ""
    pairing: str = "exact"
    #: how sure an ``aligned`` pairing is, in [0, 1] (None for the other pairings)
    pairing_score: float | None = None
    #: ``(side, stage)``: the stage of that side whose values this one repeats (a container's output)
    twin: tuple[str, str] | None = None
    alignment_note: str = ""
    rel_err: float | None = None
    growth: float | None = None
    jump: float | None = None
    precision: Inherited | None = None
    #: the error of the candidate's module on the reference's inputs (a replay; None without one)
    own: OwnError | None = None
    #: how the ranks of a sharded candidate hold the stage (``kind``, ``ranks``, ``axis``, ``disagree``)
    sharding: dict | None = None

    @classmethod
    def paired(cls, pair, *, note: str = "", aligned: str = "", **fields) -> "StageResult":
        """The result of a compared stage, its names, pairing, score and twin taken from ``pair``
        (a :class:`~numtrace.compare.pairing.align.Pair`): ``note`` follows the pairing's own
        note; ``aligned`` (how the shapes were lined up) joins it in ``alignment_note`` too."""
        how = "; ".join(n for n in (pair.note, aligned) if n)
        return cls(
            name=pair.name_a,
            name_b=None if pair.name_b == pair.name_a else pair.name_b,
            note="; ".join(n for n in (how, note) if n),
            pairing=pair.how,
            pairing_score=pair.score,
            twin=pair.twin,
            alignment_note=how,
            **fields,
        )

    @classmethod
    def missing(cls, pair, stats: SideStats) -> "StageResult":
        """A stage on one side of ``pair`` only; ``stats``: that side's statistics."""
        in_a = pair.name_a is not None
        note = "; ".join(n for n in (f"only in the {'reference' if in_a else 'candidate'}", pair.note) if n)
        a, b = (stats, None) if in_a else (None, stats)
        return cls(name=pair.name, verdict=Verdict.MISSING, a=a, b=b, note=note, twin=pair.twin)

    @property
    def born_here(self) -> bool:
        """A MATCH stage where an error is born under the tolerance (:func:`~numtrace.compare.rootcause.born_here`)."""
        return rootcause.born_here(self)

    @property
    def only_in(self) -> str | None:
        """Which side has a MISSING stage: "a" or "b"; None for other verdicts."""
        if self.verdict is not Verdict.MISSING:
            return None
        if self.a is None and self.b is not None:
            return "b"
        if self.b is None and self.a is not None:
            return "a"
        return None

    def to_dict(self) -> dict:
        """This stage as in the JSON report (docs/report.md), JSON-safe."""
        out: dict = {"name": self.name}
        if self.name_b is not None and self.name_b != self.name:
            out["name_b"] = self.name_b
        out["verdict"] = self.verdict.value
        if self.verdict is Verdict.MISSING:
            out["only_in"] = self.only_in
        out["a"] = side_dict(self.a)
        out["b"] = side_dict(self.b)
        out["diff"] = _diff_dict(self.diff)
        out["pairing"] = "missing" if self.verdict is Verdict.MISSING else self.pairing
        if self.pairing_score is not None:
            out["pairing_score"] = self.pairing_score
        if self.twin is not None:
            out["twin"] = {"side": _SIDE_NAMES[self.twin[0]], "stage": self.twin[1]}
        out["rel_err"] = _json_float(self.rel_err)
        out["growth"] = _json_float(self.growth)
        out["born_here"] = self.born_here
        out["diagnosis"] = [json_safe(finding) for finding in self.diagnosis]
        out["note"] = self.note
        out["tolerance"] = None if self.tolerance is None else json_safe(self.tolerance.to_dict())
        if out["tolerance"] is not None and self.precision is not None:
            out["tolerance"]["inherited"] = {
                "dtype": self.precision.dtype,
                "from": self.precision.stage,
                "side": _SIDE_NAMES[self.precision.side],
            }
        if self.own is not None:
            out["own"] = self.own.to_dict(_json_float, json_safe)
        if self.sharding is not None:
            out["sharding"] = dict(self.sharding)
        return out


@dataclass
class DiffReport:
    """All stage results of a diff, in order, with the reference's and candidate's labels."""

    a_label: str
    b_label: str
    stages: list[StageResult]
    ignored: dict = field(default_factory=lambda: {"a": [], "b": []})
    #: each side's recording status (``numtrace.status``: ``complete``, ``error: ...``), None when unknown
    status: dict = field(default_factory=lambda: {"a": None, "b": None})
    #: with a replay trace: ``{"trace": its label, "not_replayed": {stage: why}}`` (None without one)
    replay: dict | None = None

    @property
    def compared(self) -> int:
        """Number of stages present on both sides (compared, whatever their verdict)."""
        return sum(1 for stage in self.stages if stage.verdict is not Verdict.MISSING)

    @property
    def incomplete(self) -> list[str]:
        """Why this diff cannot vouch for the candidate, whatever its verdicts: a recording that did
        not complete (its run crashed or exited non-zero), or no stage compared at all. Empty when
        the comparison is complete.

        Example:
            >>> DiffReport("a", "b", []).incomplete
            ['nothing was compared: neither trace has a stage']
        """
        reasons = []
        for side, other in (("a", "b"), ("b", "a")):
            status = self.status.get(side)
            if status is None or status == "complete":
                continue
            text = f"the {_SIDE_NAMES[side]}'s recording did not complete ({status})"
            lacking = [stage.name for stage in self.stages if stage.only_in == other]
            if lacking:
                text += (
                    f": {len(lacking)} stage{'s' if len(lacking) != 1 else ''} of the {_SIDE_NAMES[other]} "
                    f"{'are' if len(lacking) != 1 else 'is'} not in it, the first {lacking[0]}"
                )
            reasons.append(text)
        if not self.compared:
            reasons.append(
                "nothing was compared: "
                + ("the two traces have no stage in common" if self.stages else "neither trace has a stage")
            )
        return reasons

    @property
    def first_divergence(self) -> str | None:
        """Name of the first stage, in order, whose verdict is SMALL or LARGE (None if none).

        ``report[report.first_divergence]`` is that stage's :class:`StageResult`.
        """
        for stage in self.stages:
            if stage.verdict in (Verdict.SMALL, Verdict.LARGE):
                return stage.name
        return None

    @property
    def root_cause(self) -> str | None:
        """The stage where the error is born (see :mod:`numtrace.compare.rootcause`), or None;
        with a replay, the first stage whose own error is not MATCH, when one is
        (:func:`~numtrace.compare.own.own_root_cause`)."""
        if self.replay is not None:
            found = own_root_cause(self.stages)
            if found is not None:
                return found
        return rootcause.root_cause(self.stages)

    @property
    def own_errors(self) -> list[str]:
        """With a replay: every stage whose own error is not MATCH and that no submodule
        explains, in order (each a place where a bug lives); [] without one."""
        return own_errors(self.stages)

    @property
    def largest_jump(self) -> str | None:
        """The MATCH stage where the largest error is born under the tolerance, or None
        (:func:`~numtrace.compare.rootcause.largest_jump`)."""
        return rootcause.largest_jump(self.stages)

    @property
    def uniform_dtype_change(self) -> tuple[str, str] | None:
        """(reference dtype, candidate dtype) when every compared stage changes dtype the same way
        (a float64 reference against a float32 port, say), else None."""
        pairs = {(s.a.dtype, s.b.dtype) for s in self.stages if s.a is not None and s.b is not None}
        if len(pairs) == 1:
            a, b = pairs.pop()
            if a != b:
                return a, b
        return None

    @property
    def counts(self) -> dict[str, int]:
        """Number of stages per verdict, every verdict present."""
        counts = {verdict.value: 0 for verdict in Verdict}
        for stage in self.stages:
            counts[stage.verdict.value] += 1
        return counts

    def failed(self, fail_on: str = "large", allow_incomplete: bool = False) -> bool:
        """Whether the diff fails: ``large`` (a LARGE stage), ``small`` (SMALL or LARGE),
        ``missing`` (LARGE or MISSING) or ``never``; and, unless ``allow_incomplete`` or
        ``never``, when it is :attr:`incomplete` (a diff never passes what it did not compare)."""
        failing = failing_verdicts(fail_on)
        if fail_on != "never" and not allow_incomplete and self.incomplete:
            return True
        return any(stage.verdict in failing for stage in self.stages)

    def __bool__(self) -> bool:
        """True when the diff passes: no LARGE stage, and a complete comparison."""
        return not self.failed()

    def __getitem__(self, name: str) -> StageResult:
        """The result of the stage named ``name`` (reference name, or candidate name)."""
        for stage in self.stages:
            if stage.name == name or stage.name_b == name:
                return stage
        raise KeyError(f"no stage {name!r} in the report")

    def to_dict(self) -> dict:
        """The report as ``trace diff --json`` prints it (docs/report.md), JSON-safe."""
        return {
            "a": self.a_label,
            "b": self.b_label,
            "first_divergence": self.first_divergence,
            "root_cause": self.root_cause,
            "largest_jump": self.largest_jump,
            "summary": self.counts,
            "compared": self.compared,
            "status": {"a": self.status.get("a"), "b": self.status.get("b")},
            "incomplete": self.incomplete,
            "ignored": {"a": list(self.ignored.get("a", [])), "b": list(self.ignored.get("b", []))},
            "stages": [stage.to_dict() for stage in self.stages],
            **({} if self.replay is None else {"own_errors": self.own_errors, "replay": json_safe(self.replay)}),
        }


def failing_verdicts(fail_on: str) -> set[Verdict]:
    """The verdicts that fail a stage under ``fail_on`` (``large``, ``small``, ``missing``, ``never``).

    Example:
        >>> sorted(v.value for v in failing_verdicts("missing"))
        ['LARGE', 'MISSING']
    """
    try:
        return set(_FAILING[fail_on])
    except KeyError:
        raise UsageError(f"bad fail-on value {fail_on!r}; expected one of {', '.join(FAIL_ON)}") from None


def recording_status(reference, candidate) -> dict:
    """Each trace's recording status (``numtrace.status`` in its metadata), None when it has none.

    Example:
        >>> from numtrace.trace import MemoryTrace
        >>> recording_status(MemoryTrace({}), MemoryTrace({}, metadata={"numtrace.status": "complete"}))
        {'a': None, 'b': 'complete'}
    """
    return {
        side: (getattr(trace, "metadata", None) or {}).get("numtrace.status")
        for side, trace in (("a", reference), ("b", candidate))
    }


def _json_float(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def json_safe(value):
    """Floats to finite Python floats or None, ints to int, containers recursively.

    Example:
        >>> import numpy as np
        >>> json_safe({"x": float("nan"), "n": [np.int64(3), (1.5,)]})
        {'x': None, 'n': [3, [1.5]]}
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Finding):
        value = value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _json_float(value)
    return value


@overload
def side_dict(stats: SideStats) -> dict: ...
@overload
def side_dict(stats: None) -> None: ...
def side_dict(stats: SideStats | None) -> dict | None:
    if stats is None:
        return None
    return {
        "shape": [int(n) for n in stats.shape],
        "dtype": stats.dtype,
        "min": _json_float(stats.min),
        "max": _json_float(stats.max),
        "mean": _json_float(stats.mean),
        "std": _json_float(stats.std),
        "abs_max": _json_float(stats.abs_max),
        "count": int(stats.count),
        "nan": int(stats.nan),
        "posinf": int(stats.posinf),
        "neginf": int(stats.neginf),
    }


_DIFF_FLOATS = ("abs_max", "abs_mean", "rms", "rel_rms", "rel_max", "cosine", "snr_db")


def _diff_dict(d: DiffStats | None) -> dict | None:
    if d is None:
        return None
    out: dict = {key: _json_float(getattr(d, key)) for key in _DIFF_FLOATS}
    out.update(
        mismatched=int(d.mismatched),
        total=int(d.total),
        mismatch_fraction=_json_float(d.mismatch_fraction),
        max_ratio=_json_float(d.max_ratio),
        worst_index=None if d.worst_index is None else [int(i) for i in d.worst_index],
        worst_a=_json_float(d.worst_a),
        worst_b=_json_float(d.worst_b),
        rtol=_json_float(d.rtol),
        atol=_json_float(d.atol),
        nonfinite_a=int(d.nonfinite_a),
        nonfinite_b=int(d.nonfinite_b),
    )
    return out


@dataclass
class StageDetail:
    """One stage in detail (``trace diff --stage``): its :class:`StageResult` and what the
    drill-down adds (JSON-safe ``extra``: ``profiles`` and ``worst`` for a full comparison;
    ``compared_by: "sketch"``, ``channels``, ``rerecord``... for one by sketch). See
    :mod:`numtrace.compare.detail`."""

    result: StageResult
    extra: dict = field(default_factory=dict)

    @property
    def by_sketch(self) -> bool:
        return self.extra.get("compared_by") == "sketch"

    def to_dict(self) -> dict:
        """The stage as ``trace diff --json`` has it (no ``growth``: it needs the stages before it),
        plus ``extra``."""
        data = self.result.to_dict()
        data.pop("growth", None)
        data.update(self.extra)
        return json_safe(data)
