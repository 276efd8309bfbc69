"""Failure messages for test assertions: what differs, where first, and by how much.

The layout follows ``numpy.testing``: a one-line headline, then the figures.
For traces: the count of failing stages, the first divergence in detail (its
figures, its diagnosis in words, its worst elements), then one line per stage.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare import diff
    >>> a, b = MemoryTrace({"x": np.arange(4.0)}), MemoryTrace({"x": np.arange(4.0) + 1})
    >>> print(trace_message(diff(a, b), a, b, fail_rules("large")).splitlines()[0])
    Traces differ: 1 / 1 stages (100%) fail (a stage fails when it is LARGE)
"""

from __future__ import annotations

import numpy as np

from ..compare import DiffReport, StageResult, Verdict
from ..compare.findings import Finding
from ..compare.result import failing_verdicts as engine_failing
from ..report.words import describe_findings, fmt, fmt_percent, fmt_shape, fmt_side
from ..trace import Trace

#: ``fail_on`` values: the engine's rules, and "any" (every stage must MATCH)
RULES = ("large", "small", "missing", "never", "any")
#: worst elements shown per stage
WORST = 5
#: stages larger than this are not re-read to rank their worst elements
RANK_LIMIT = 1 << 24
#: with more stages than this, the stage list shows only those that are not MATCH
LIST_LIMIT = 40
_SIDE = {"a": "reference", "b": "candidate"}


def fail_rules(fail_on) -> tuple[str, ...]:
    """``fail_on`` as a tuple of the engine's rules: ``"large"``, ``"small,missing"``,
    ``("small", "missing")``; ``"any"`` is ``("small", "missing")``: only MATCH passes."""
    parts = [p.strip() for p in fail_on.split(",")] if isinstance(fail_on, str) else list(fail_on)
    if not parts or any(part not in RULES for part in parts):
        raise ValueError(f"fail_on must be one of {', '.join(RULES)} (or several, comma-separated), got {fail_on!r}")
    rules: list[str] = []
    for part in parts:
        rules += ["small", "missing"] if part == "any" else [part]
    return tuple(dict.fromkeys(rules))


def failing_verdicts(rules: tuple[str, ...]) -> list[str]:
    """The verdicts that fail a stage under ``rules``, by the engine's own rule, in severity order."""
    failing = set().union(*(engine_failing(rule) for rule in rules))
    return [verdict.value for verdict in Verdict if verdict in failing]


def rule_words(rules: tuple[str, ...]) -> str:
    """``("small", "missing")`` -> ``'a stage fails when it is SMALL, LARGE or MISSING'``."""
    failing = failing_verdicts(rules)
    if not failing:
        return "no stage fails"
    listed = failing[0] if len(failing) == 1 else f"{', '.join(failing[:-1])} or {failing[-1]}"
    return f"a stage fails when it is {listed}"


def trace_message(report: DiffReport, reference: Trace, candidate: Trace, rules: tuple[str, ...]) -> str:
    """The whole message for a failed trace comparison (``rules`` from :func:`fail_rules`)."""
    verdicts = failing_verdicts(rules)
    failing = [stage for stage in report.stages if stage.verdict.value in verdicts]
    total = len(report.stages)
    reasons = report.incomplete
    if failing or not reasons:
        headline = (
            f"Traces differ: {len(failing)} / {total} stages ({fmt_percent(len(failing), total)}) fail "
            f"({rule_words(rules)})"
        )
    else:  # every compared stage passes, but the comparison cannot vouch for the candidate
        headline, reasons = f"Traces not verified: {reasons[0]}", reasons[1:]
    lines = [
        headline,
        f"  reference: {report.a_label}",
        f"  candidate: {report.b_label}",
    ] + [f"  not verified: {reason}" for reason in reasons]
    root = getattr(report, "root_cause", None)  # shown when a LARGE stage after the first divergence is born there
    if root is None or root == report.first_divergence or report[root].verdict.value != "LARGE":
        root = None
    else:
        lines.append(f"  root cause: {root} (where the error is born)")
    change = report.uniform_dtype_change
    if change:
        lines.append(f"  dtypes: reference {change[0]}, candidate {change[1]} at every stage")
    shown: list[StageResult] = []
    titles: list[str] = []
    first = report.first_divergence
    for name, title in (
        (first, "First divergence"),
        (root, "Root cause"),
        (failing[0].name if failing else None, "First failing stage"),
    ):
        if name is not None and name not in [s.name for s in shown]:
            shown.append(report[name])
            titles.append(title)
    for stage, title in zip(shown, titles):
        lines += ["", f"{title}: {_stage_title(stage)}"]
        lines += stage_details(stage, reference, candidate, hide_dtype=change is not None)
    lines += ["", "Stages (reference order):"]
    lines += _stage_list(report, first, root, hide_dtype=change is not None)
    return "\n".join(lines)


def array_message(stage: StageResult, reference: Trace, candidate: Trace) -> str:
    """The message for one failed pair of arrays (a one-stage comparison)."""
    d = stage.diff
    if d is None:
        head = f"Arrays differ: {stage.verdict.value}, {stage.note or 'no values compared'}"
    else:
        head = (
            f"Arrays differ: {stage.verdict.value}, {d.mismatched} / {d.total} values "
            f"({fmt_percent(d.mismatched, d.total)}) out of tolerance"
        )
    return "\n".join([head, *stage_details(stage, reference, candidate, counts=False)])


def stage_details(
    stage: StageResult, reference: Trace, candidate: Trace, hide_dtype: bool = False, counts: bool = True
) -> list[str]:
    """Indented lines: shape and tolerance, figures, both sides, findings, worst elements."""
    d = stage.diff
    shapes_differ = stage.a is not None and stage.b is not None and tuple(stage.a.shape) != tuple(stage.b.shape)
    values = "overlapping values" if shapes_differ else "values"
    dtypes = ""
    if stage.a is not None and stage.b is not None and not hide_dtype:
        dtypes = f", {stage.a.dtype}" if stage.a.dtype == stage.b.dtype else f", {stage.a.dtype} vs {stage.b.dtype}"
    lines = [f"  shape {fmt_shape(stage.a, stage.b)}{dtypes}"]
    if d is not None:
        lines[0] += f"; tolerance rtol={fmt(d.rtol)}, atol={fmt(d.atol)}"
        worst = "a non-finite mismatch" if d.max_ratio == float("inf") else f"{fmt(d.max_ratio)}x its tolerance"
        if counts:
            lines.append(
                f"  {d.mismatched} / {d.total} {values} ({fmt_percent(d.mismatched, d.total)}) "
                f"out of tolerance, worst {worst}"
            )
        else:
            lines[0] += f"; worst {worst}"
        lines.append(f"  max |Δ| {fmt(d.abs_max)}, mean |Δ| {fmt(d.abs_mean)}, relative rms {fmt(d.rel_rms)}")
    if stage.note and (d is None or (shapes_differ and d.mismatched == 0)):
        lines.append(f"  {stage.note}")  # only on one side, shapes that cannot be lined up, an overlap that matches
    if stage.a is not None:
        lines.append(f"  reference [min, max] mean±std: {fmt_side(stage.a)}")
    if stage.b is not None:
        lines.append(f"  candidate [min, max] mean±std: {fmt_side(stage.b)}")
    findings = _findings(stage, hide_dtype)
    if findings:
        lines.append(f"  findings: {describe_findings(findings)}")
    elements = worst_elements(stage, reference, candidate)
    if elements:
        lines.append("  worst elements (index: reference, candidate, |Δ|):")
        lines += [f"    {index}: {_num(a)}, {_num(b)}, {_num(delta)}" for index, a, b, delta in elements]
    return lines


def worst_elements(stage: StageResult, reference: Trace, candidate: Trace, count: int = WORST) -> list[tuple]:
    """Up to ``count`` elements out of tolerance, worst first: ``(index, reference, candidate, |Δ|)``.

    Ranked by ``|b - a| / (rtol |a| + atol)`` with the tolerance the engine
    resolved. When the shapes differ, the elements are those the engine lined
    up (the overlap, indexed in the reference's axis order). Large or complex
    stages, or ones that cannot be re-read, fall back to the engine's single worst element.
    """
    d = stage.diff
    if d is None or d.mismatched == 0 or d.worst_index is None:
        return []
    fallback = [(tuple(d.worst_index), d.worst_a, d.worst_b, _delta(d.worst_a, d.worst_b))]
    pair = _values(stage, reference, candidate)
    if pair is None:
        return fallback
    shape, a, b = pair
    with np.errstate(all="ignore"):
        delta = np.abs(b - a)
        ratio = np.where(delta == 0, 0.0, delta / (d.rtol * np.abs(a) + d.atol))
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    ratio[same] = 0.0
    ratio[~same & ~(np.isfinite(a) & np.isfinite(b))] = np.inf
    over = np.flatnonzero(ratio > 1.0)
    if over.size == 0:
        return fallback
    out = []
    for flat in over[np.argsort(-ratio[over], kind="stable")[:count]]:
        index = tuple(int(i) for i in np.unravel_index(int(flat), shape)) if shape else ()
        out.append((index, float(a[flat]), float(b[flat]), _delta(float(a[flat]), float(b[flat]))))
    return out


def _values(stage: StageResult, reference: Trace, candidate: Trace):
    """``(shape, a, b)``: the compared values, flat float64 (lined up when the shapes differ), or None."""
    name_b = stage.name_b or stage.name
    try:
        info_a, info_b = reference.info(stage.name), candidate.info(name_b)
        if max(info_a.size, info_b.size) > RANK_LIMIT:
            return None
        if tuple(info_a.shape) == tuple(info_b.shape):
            a, b = reference.read(stage.name), candidate.read(name_b)
        else:
            from ..compare import aligned_arrays, stage_pair

            pair = stage_pair(reference, candidate, stage.name)
            if pair is None:
                return None
            aligned = aligned_arrays(reference, candidate, pair)
            if aligned is None:
                return None
            a, b = aligned[0], aligned[1]
    except Exception:  # a trace that cannot be re-read or lined up still has the engine's figures
        return None
    if a.shape != b.shape or a.dtype.kind == "c" or b.dtype.kind == "c":
        return None
    return a.shape, a.astype(np.float64).reshape(-1), b.astype(np.float64).reshape(-1)


def _stage_title(stage: StageResult) -> str:
    name = stage.name if not stage.name_b else f"{stage.name} ↔ {stage.name_b}"
    return f"{name} ({stage.verdict.value})"


def _stage_list(report: DiffReport, first: str | None, root: str | None, hide_dtype: bool) -> list[str]:
    stages = list(enumerate(report.stages, 1))
    hidden = 0
    if len(stages) > LIST_LIMIT:
        kept = [(i, s) for i, s in stages if s.verdict.value != "MATCH"]
        hidden, stages = len(stages) - len(kept), kept
    width = min(max((len(_name(s)) for _, s in stages), default=0), 40)
    digits = len(str(len(report.stages)))
    lines = []
    for index, stage in stages:
        detail = _summary(stage, hide_dtype)
        mark = {first: "  <- first divergence", root: "  <- root cause"}.get(stage.name, "") if stage.name else ""
        lines.append(f"  {index:>{digits}} {stage.verdict.value:<7} {_name(stage):<{width}}  {detail}".rstrip() + mark)
    if hidden:
        lines.append(f"  ({hidden} more stages MATCH)")
    return lines


def _name(stage: StageResult) -> str:
    return stage.name if not stage.name_b else f"{stage.name} ↔ {stage.name_b}"


def _summary(stage: StageResult, hide_dtype: bool) -> str:
    d = stage.diff
    if stage.only_in:
        return f"only in the {_SIDE[stage.only_in]}"
    if d is None:
        text = f"shape {fmt_shape(stage.a, stage.b)}"
    elif stage.verdict.value == "MATCH":
        text = f"max |Δ| {fmt(d.abs_max)}"
    else:
        text = f"max |Δ| {fmt(d.abs_max)}, {fmt_percent(d.mismatched, d.total)} out of tolerance"
    findings = _findings(stage, hide_dtype)
    return f"{text}; {describe_findings(findings)}" if findings else text


def _findings(stage: StageResult, hide_dtype: bool) -> list[Finding]:
    return [f for f in stage.diagnosis if not (hide_dtype and f.get("kind") == "dtype")]


def _delta(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    with np.errstate(all="ignore"):
        return float(abs(b - a))


def _num(value: float | None) -> str:
    return fmt(value, 7)
