"""Assertions for test suites: two traces, or two arrays, compared stage by stage.

Reference first, always (numtrace's rule, the order of ``trace diff``): the
tolerance is relative to the reference, and the message names the
reference's values before the candidate's. Note that ``numpy.testing.
assert_allclose(actual, desired)`` puts the candidate first; numtrace does not.

Example:
    >>> import numpy as np
    >>> from numtrace.testing import assert_traces_close, assert_close_diagnosed
    >>> mel = np.linspace(-80.0, 0.0, 12).reshape(3, 4)
    >>> _ = assert_traces_close({"mel": mel}, {"mel": mel.astype(np.float32)})   # passes
    >>> assert_close_diagnosed(mel, mel + 0.5, tolerance={"atol": 0.01})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    numtrace.testing.TraceMismatch: Arrays differ: LARGE, 12 / 12 values (100%) out of tolerance
    ...
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping

import numpy as np

from .. import backends
from .. import compare as _compare
from ..compare import DiffReport, StageResult
from ..formats import load
from ..trace import MemoryTrace, Trace
from .messages import array_message, fail_rules, failing_verdicts, trace_message
from .tolerances import tolerance_table

__all__ = ["TraceMismatch", "assert_traces_close", "assert_close_diagnosed", "as_trace"]


class TraceMismatch(AssertionError):
    """An assertion failure that carries the :class:`~numtrace.compare.DiffReport` behind it.

    ``err.report`` is the report (``err.report.to_dict()`` is the JSON of ``trace diff --json``).
    """

    def __init__(self, message: str, report: DiffReport) -> None:
        super().__init__(message)
        self.report = report


TraceMismatch.__module__ = "numtrace.testing"


def as_trace(source, role: str) -> tuple[Trace, bool]:
    """``(trace, opened_here)`` for a path, a Trace, a finished Recording or a dict of arrays."""
    if isinstance(source, Trace):
        return source, False
    trace = getattr(source, "trace", None)  # a numtrace.Recording, after its block
    if isinstance(trace, Trace):
        return trace, False
    if isinstance(source, Mapping):
        return MemoryTrace({name: _values(value) for name, value in source.items()}, label=f"<{role}>"), False
    if isinstance(source, (str, os.PathLike)):
        return load(source, role=f"{role} trace"), True
    raise TypeError(
        f"the {role} must be a trace file path, a numtrace Trace, a finished numtrace.record() "
        f"or a dict of arrays, got {type(source).__name__}"
    )


def assert_traces_close(reference, candidate, tolerance=None, only=None, map=None, fail_on: str = "any") -> DiffReport:
    """Assert that ``candidate`` computes the same stages as ``reference``; return the report.

    ``reference``/``candidate``: trace paths (``.safetensors``, ``.st``, ``.h5``),
    :class:`~numtrace.trace.Trace` objects (``rec.trace`` of an in-memory
    ``numtrace.record()``), finished recordings, or dicts ``{stage: array}``.
    ``tolerance``: see :mod:`numtrace.testing.tolerances` (a float rtol, a
    ``Tolerance``, a dict ``{glob: spec, "default": spec}``, a ``ToleranceTable``).
    ``only``: a glob or list of globs naming the stages to compare.
    ``map``: candidate stage names for reference names, handed to the compare
    engine when it supports name mapping (TypeError otherwise).
    ``fail_on``: ``"any"`` (default, like numpy.testing: every stage must MATCH;
    SMALL, LARGE and MISSING fail), ``"large"`` (only a LARGE stage fails, as
    ``trace diff`` exits 1), ``"small"`` (SMALL or LARGE), ``"missing"`` (LARGE
    or MISSING), ``"never"``; several rules may be joined: ``"small,missing"``
    is ``"any"``. The engine calls a stage whose length differs along one axis
    (313 vs 312 frames) SMALL when the overlap matches: ``"large"`` lets it pass.

    On failure raises :class:`TraceMismatch` (an AssertionError) whose message
    gives the failing count, the first divergence with its figures, findings
    and worst elements, and one line per stage.

    Example:
        >>> import numpy as np
        >>> extra = {"enc": np.ones(3), "extra": np.ones(1)}
        >>> report = assert_traces_close({"enc": np.ones(3)}, extra, fail_on="large")
        >>> report.counts["MISSING"]
        1
        >>> assert_traces_close({"enc": np.ones(3)}, extra)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        numtrace.testing.TraceMismatch: Traces differ: 1 / 2 stages (50%) fail ...
    """
    __tracebackhide__ = True
    return check_traces(reference, candidate, tolerance, only, map, fail_on)


def check_traces(
    reference, candidate, tolerance=None, only=None, map=None, fail_on="large", diagnose=True
) -> DiffReport:
    """:func:`assert_traces_close`, with ``diagnose=False`` to skip the diagnosis (a quick
    pass/fail: the verdicts do not depend on it) where the engine allows it."""
    __tracebackhide__ = True
    rules = fail_rules(fail_on)
    options = _diff_options(tolerance, only, map, diagnose)
    ref, ref_opened = as_trace(reference, "reference")
    try:
        cand, cand_opened = as_trace(candidate, "candidate")
        try:
            report = _compare.diff(ref, cand, **options)
            _name_sides(report, "reference", "candidate")
            if _failed(report, rules):
                raise TraceMismatch(trace_message(report, ref, cand, rules), report)
            return report
        finally:
            if cand_opened:
                cand.close()
    finally:
        if ref_opened:
            ref.close()


def assert_close_diagnosed(
    reference, candidate, tolerance=None, *, name: str = "array", fail_on: str = "any"
) -> StageResult:
    """Assert that two arrays agree, with the diagnosis of a one-stage trace diff.

    Reference first: ``assert_close_diagnosed(reference, candidate)`` (numpy's
    ``assert_allclose`` takes ``(actual, desired)``, the other way round). The
    arrays may be NumPy arrays, Python numbers or lists, torch or mlx arrays.
    An element passes when ``|b - a| <= rtol*|a| + atol``; with no ``tolerance``
    numtrace's default applies (rtol = sqrt(eps) of the coarser dtype, atol
    relative to the reference's peak). ``fail_on`` defaults to ``"any"``, as
    ``assert_allclose`` does: any element out of tolerance, or a shape that
    differs, fails (``"large"`` lets a SMALL difference, within 10x the
    tolerance, pass).

    Returns the stage's :class:`~numtrace.compare.StageResult`.

    Example:
        >>> import numpy as np
        >>> assert_close_diagnosed(np.ones(3), np.ones(3, np.float32)).verdict.value
        'MATCH'
    """
    __tracebackhide__ = True
    rules = fail_rules(fail_on)
    ref = MemoryTrace({name: _values(reference)}, label="<reference>")
    cand = MemoryTrace({name: _values(candidate)}, label="<candidate>")
    report = _compare.diff(ref, cand, **_diff_options(tolerance, None, None))
    if _failed(report, rules):
        raise TraceMismatch(array_message(report.stages[0], ref, cand), report)
    return report.stages[0]


def _failed(report: DiffReport, rules: tuple[str, ...]) -> bool:
    """A failing stage under ``rules``, or an incomplete comparison (unless every rule is ``never``)."""
    if report.incomplete and any(rule != "never" for rule in rules):
        return True
    verdicts = failing_verdicts(rules)
    return any(stage.verdict.value in verdicts for stage in report.stages)


def _name_sides(report: DiffReport, a: str, b: str) -> None:
    """Unnamed in-memory traces are called what they are in the report: reference, candidate."""
    if report.a_label == "<memory>":
        report.a_label = f"<in-memory {a}>"
    if report.b_label == "<memory>":
        report.b_label = f"<in-memory {b}>"


def _diff_options(tolerance, only, map, diagnose: bool = True) -> dict:
    options: dict = {"tolerances": tolerance_table(tolerance)}
    if not diagnose and _engine_accepts("diagnose_max_elements"):
        options["diagnose_max_elements"] = 0
    if only is not None:
        options["only"] = [only] if isinstance(only, str) else list(only)
    if map is not None:
        if not _engine_accepts("map"):
            raise TypeError(
                "map= needs a compare engine that maps stage names, and this numtrace's "
                "numtrace.compare.diff has no 'map' option; rename the stages on one side, "
                "or compare the stages both traces share with only="
            )
        options["map"] = map
    return options


def _engine_accepts(option: str) -> bool:
    """Whether ``numtrace.compare.diff``, as installed now, takes ``option`` (by name or ``**options``)."""
    parameters = inspect.signature(_compare.diff).parameters
    return option in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def _values(value) -> "np.ndarray | tuple[np.ndarray, str]":
    """A stage value for MemoryTrace: arrays of any loaded framework, numbers, nested lists."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
        return value  # already (values, recorded dtype)
    if backends.is_array(value):
        return backends.to_numpy(value)
    return np.asarray(value)
