"""Where is the error born? Relative error per stage, its growth, and the root cause.

Definitions (over the compared stages, in execution order; MISSING stages and
stages that could not be aligned are skipped):

- ``rel_err``: ``diff.rel_rms`` (rms of ``b - a`` over rms of ``a``); infinite
  when a non-finite value appears on one side only, or when ``a`` is all zeros
  and ``b`` is not.
- ``growth``: ``rel_err`` over the previous compared stage's ``rel_err``, both
  floored at the rounding level ``eps`` of the stage's coarser dtype (so two
  matching stages grow by 1, not 0/0); None for the first compared stage.
- ``jump``: ``rel_err`` over the *largest* ``rel_err`` of every earlier
  compared stage (same floor). The largest, not the previous: a stage whose
  input is a weight tensor that matches, or another branch, must not look
  like a fresh error when it only carries an earlier one.
- A stage *introduces* error when it is SMALL or LARGE and its ``jump`` is at
  least :data:`JUMP_RATIO`: its relative error is 10x everything before it, so
  its inputs match in comparison.
- ``root_cause``: the first LARGE stage that introduces error; else the first
  SMALL one; else the diverging stage with the largest ``jump``; None when
  every stage matches.
- ``born_here``: a MATCH stage whose ``jump`` is at least
  :data:`BORN_HERE_RATIO` (x100): an error born under the tolerance (a
  tanh-approximate GELU for the exact one, another LayerNorm eps), which
  the verdicts cannot show. The verdict stays MATCH; the report marks it,
  and ``largest_jump`` names the one with the largest jump.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare import diff
    >>> x = np.linspace(1.0, 2.0, 50)
    >>> a = MemoryTrace({"enc": x, "norm": x * 2, "out": x * 4})
    >>> b = MemoryTrace({"enc": x, "norm": x * 0.02, "out": x * 0.04})
    >>> report = diff(a, b)
    >>> report.root_cause, [round(s.rel_err, 2) for s in report.stages], round(report.stages[2].growth, 6)
    ('norm', [0.0, 0.99, 0.99], 1.0)
"""

from __future__ import annotations

import math

from .. import dtypes

#: A stage introduces error when its relative error is at least this many times the
#: largest relative error of every stage before it (an order of magnitude).
JUMP_RATIO = 10.0
#: A MATCH stage whose relative error is at least this many times the largest before it
#: (both floored at rounding) is marked: an error born under the tolerance.
BORN_HERE_RATIO = 100.0
_FLOAT64_EPS = 2.220446049250313e-16


def relative_error(stage) -> float | None:
    """The stage's relative error (module docstring), None when it was not compared."""
    d = stage.diff
    if d is None:
        return None
    if d.nonfinite_a or d.nonfinite_b:
        return math.inf
    if d.rel_rms is not None:
        return float(d.rel_rms)
    return 0.0 if not d.abs_max else math.inf


def rounding_floor(stage) -> float:
    """eps of the stage's coarser dtype, or of the coarser precision it inherited
    (:mod:`numtrace.compare.precision`); float64's for exact dtypes."""
    if stage.a is None or stage.b is None:
        return _FLOAT64_EPS
    coarse = dtypes.coarser(stage.a.dtype, stage.b.dtype)
    inherited = getattr(stage, "precision", None)
    if inherited is not None:
        coarse = dtypes.coarser(coarse, inherited.dtype)
    return dtypes.eps(coarse) or _FLOAT64_EPS


def annotate(stages) -> None:
    """Set ``rel_err``, ``growth`` and ``jump`` on every compared stage, in order."""
    previous = None
    largest = 0.0
    for stage in stages:
        r = relative_error(stage)
        stage.rel_err = r
        if r is None:
            stage.growth = stage.jump = None
            continue
        floor = rounding_floor(stage)
        stage.growth = None if previous is None else _ratio(r, previous, floor)
        stage.jump = _ratio(r, largest, floor)
        previous = r
        largest = max(largest, r)


def _ratio(num: float, den: float, floor: float) -> float:
    num, den = max(num, floor), max(den, floor)
    if math.isinf(num):
        return 1.0 if math.isinf(den) else math.inf
    return num / den


def introduces_error(stage) -> bool:
    """SMALL or LARGE with a jump of at least :data:`JUMP_RATIO` (see the module docstring)."""
    jump = getattr(stage, "jump", None)
    return stage.verdict.value in ("SMALL", "LARGE") and jump is not None and jump >= JUMP_RATIO


def born_here(stage) -> bool:
    """A MATCH stage whose jump is at least :data:`BORN_HERE_RATIO` (module docstring)."""
    jump = getattr(stage, "jump", None)
    return stage.verdict.value == "MATCH" and jump is not None and jump >= BORN_HERE_RATIO


def largest_jump(stages) -> str | None:
    """The :func:`born_here` stage with the largest jump (the first of equals), None when none is."""
    marked = [stage for stage in stages if born_here(stage)]
    return max(marked, key=lambda stage: stage.jump).name if marked else None


def root_cause(stages) -> str | None:
    """The root-cause stage's name (module docstring), None when nothing diverges."""
    for verdict in ("LARGE", "SMALL"):
        for stage in stages:
            if stage.verdict.value == verdict and introduces_error(stage):
                return stage.name
    diverging = [s for s in stages if s.verdict.value in ("SMALL", "LARGE")]
    if not diverging:
        return None
    best = max(diverging, key=lambda s: -1.0 if s.jump is None else s.jump)
    return best.name
