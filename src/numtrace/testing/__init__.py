"""numtrace in test suites: assertions, a pytest plugin, hypothesis strategies.

- :func:`assert_traces_close` (two traces) and :func:`assert_close_diagnosed`
  (two arrays), reference first, failing with a per-stage report.
- :func:`run_traced` (call a function inside an in-memory recording) and
  :func:`assert_port_agrees` (hypothesis draws inputs, both implementations
  run, their traces are diffed, the failing input is shrunk).
- The pytest plugin (:mod:`numtrace.testing.plugin`, loaded automatically
  through its ``pytest11`` entry point): the ``numtrace`` fixture, golden
  traces, ``--numtrace-update``, ``--numtrace-report``.
- :mod:`numtrace.testing.strategies` (needs hypothesis): arrays, and array or
  trace pairs with planted, known errors; :mod:`numtrace.testing.planted`
  plants them without hypothesis.

Names load on first use, so importing the plugin at pytest start-up costs
nothing: the compare engine is imported by the first assertion.

Example:
    >>> import numpy as np
    >>> from numtrace.testing import assert_traces_close
    >>> report = assert_traces_close({"x": np.ones(3)}, {"x": np.ones(3)})
    >>> report.first_divergence is None
    True

See docs/testing.md for the patterns.
"""

from __future__ import annotations

import importlib

__all__ = [
    "TraceMismatch",
    "assert_traces_close",
    "assert_close_diagnosed",
    "assert_port_agrees",
    "run_traced",
    "tolerance_table",
    "Planted",
    "find_finding",
]

_WHERE = {
    "TraceMismatch": "assertions",
    "assert_traces_close": "assertions",
    "assert_close_diagnosed": "assertions",
    "assert_port_agrees": "parity",
    "run_traced": "parity",
    "tolerance_table": "tolerances",
    "Planted": "planted",
    "find_finding": "planted",
}


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'numtrace.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
