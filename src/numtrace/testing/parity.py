""" "The port agrees with the reference for all inputs in this range", as one call.

:func:`run_traced` calls a function inside an in-memory recording and returns
its result with the trace of what it tapped (its return value included, as
the stage ``output``). :func:`assert_port_agrees` lets hypothesis draw inputs,
runs both implementations on each, diffs their traces with
:func:`~numtrace.testing.assert_traces_close`, and on a failure shrinks the
input to the smallest one that still fails: pytest then shows hypothesis'
"Falsifying example" and numtrace's per-stage report for that input.

Example:
    >>> import numpy as np
    >>> from hypothesis import strategies as st
    >>> def reference(n):
    ...     return np.arange(n, dtype=np.float64) / 3
    >>> def port(n):                       # float32, and one element short for n > 6
    ...     return (np.arange(n, dtype=np.float32) / 3)[: n - (n > 6)]
    >>> assert_port_agrees(reference, port, st.integers(1, 20))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    numtrace.testing.TraceMismatch: Traces differ: 1 / 1 stages (100%) fail ...
    ...
"""

from __future__ import annotations

from typing import Any, Callable

import numtrace

from ..trace import Trace
from .assertions import TraceMismatch, check_traces

__all__ = ["run_traced", "assert_port_agrees"]


def run_traced(function: Callable, *args: Any, output: str | None = "output", **kwargs: Any) -> tuple[Any, Trace]:
    """``(function(*args, **kwargs), trace)``: the call recorded in memory.

    The trace holds every stage the call tapped, then its return value under
    ``output`` (when not None and the call returned something). A recording
    already active (the ``numtrace`` fixture's) does not see these stages.

    Example:
        >>> import numpy as np, numtrace
        >>> result, trace = run_traced(lambda x: numtrace.tap("double", 2 * x) + 1, np.ones(2))
        >>> trace.order
        ['double', 'output']
    """
    with numtrace.record() as recording:
        result = function(*args, **kwargs)
        if output is not None and result is not None:
            numtrace.tap(output, result)
    trace = recording.trace
    assert trace is not None  # set when the recording stopped
    trace.label = f"<run of {getattr(function, '__qualname__', type(function).__name__)}>"
    return result, trace


def assert_port_agrees(
    reference_fn: Callable,
    candidate_fn: Callable,
    inputs,
    *,
    tolerance=None,
    only=None,
    fail_on: str = "any",
    output: str | None = "output",
    max_examples: int | None = None,
    settings=None,
) -> None:
    """Assert that ``candidate_fn(x)`` traces the same stages as ``reference_fn(x)`` for every drawn ``x``.

    ``inputs``: a hypothesis strategy; each drawn value is passed as the one
    argument of both functions (draw a tuple and unpack it in a lambda for
    more). ``tolerance``, ``only``, ``fail_on``: as for ``assert_traces_close``,
    except that ``fail_on`` defaults to ``"any"``: the property is that every
    stage MATCHes (a SMALL or MISSING stage is a disagreement too).
    ``max_examples``: how many inputs to try (default: the active hypothesis
    profile's, 100 unless changed). ``settings``: a ``hypothesis.settings`` used
    as it is; by default there is no deadline (a pipeline may be slow) and no
    "explain" phase (it would list numtrace's own lines). Call it from a plain
    test function (not one decorated with ``@given``); hypothesis' database
    replays the last failure first. The search and the shrinking compare
    verdicts only; the smallest failing input is then compared again with the
    full diagnosis for the message.
    """
    __tracebackhide__ = True
    from hypothesis import Phase, given
    from hypothesis import settings as hypothesis_settings

    last_failure: list[Any] = []

    def compare(x, diagnose):
        __tracebackhide__ = True
        _, reference = run_traced(reference_fn, x, output=output)
        _, candidate = run_traced(candidate_fn, x, output=output)
        check_traces(reference, candidate, tolerance, only, None, fail_on, diagnose)

    def port_agrees(x):
        try:
            compare(x, diagnose=False)  # the search and the shrinking need verdicts only
        except TraceMismatch:
            last_failure[:] = [x]
            raise

    check = given(inputs)(port_agrees)
    if settings is None:
        explain = getattr(Phase, "explain", None)  # hypothesis >= 6.91
        options: dict[str, Any] = {"deadline": None, "phases": [phase for phase in Phase if phase is not explain]}
        if max_examples is not None:
            options["max_examples"] = max_examples
        settings = hypothesis_settings(**options)
    check = settings(check)
    try:
        check()
    except TraceMismatch as quick:
        if not last_failure:
            raise
        try:  # hypothesis ran the smallest failing input last: the report again, diagnosed
            compare(last_failure[0], diagnose=True)
        except TraceMismatch as full:
            # hypothesis's notes (the falsifying example); add_note is Python >= 3.11, __notes__ works on 3.10 too
            setattr(full, "__notes__", [*getattr(full, "__notes__", []), *getattr(quick, "__notes__", [])])
            raise full from None
        raise
