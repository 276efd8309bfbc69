"""numtrace: tap named tensors in two implementations, record traces, find where they diverge.

Example:
    >>> import numpy as np, numtrace
    >>> with numtrace.record() as rec:
    ...     x = numtrace.tap("mel", np.full((2, 3), -5.0))
    >>> report = numtrace.diff(rec.trace, rec.trace)
    >>> report.first_divergence is None, bool(report)
    (True, True)

``import numtrace`` imports NumPy and nothing else heavy: no torch, mlx or
fastai (backends load only for frameworks the program already imported), and
the compare engine loads on first use.
"""

from __future__ import annotations

import os

from ._version import __version__
from .errors import NumtraceError, RecordingError, TapError, ToleranceError, TraceFileError, UsageError
from .formats import load, save
from .trace import Trace
from .tracer import Recording, current_scope, is_recording, record, scope, tap
from .watch import Watch, watch

__all__ = [
    "__version__",
    "tap",
    "record",
    "Recording",
    "scope",
    "current_scope",
    "is_recording",
    "load",
    "save",
    "Trace",
    "watch",
    "Watch",
    "diff",
    "NumtraceError",
    "TraceFileError",
    "TapError",
    "RecordingError",
    "ToleranceError",
    "UsageError",
]


def diff(reference, candidate, **options):
    """Compare two traces (paths or :class:`Trace` objects), reference first.

    Returns a :class:`numtrace.compare.DiffReport` whose truth is the verdict
    (false when a stage is LARGE). Options: ``tolerances`` (a
    ``ToleranceTable``), ``only`` (globs), ``chunk_elements``, ``map`` (a
    map file), ``replay`` (the replay trace of ``trace replay``, path or
    trace: each stage's own error, docs/replay.md). A candidate path whose
    file does not exist but whose rank traces do (``tp.rank0.safetensors``...)
    is read as the sharded run they make (docs/sharded.md).
    """
    from .compare import diff as _diff

    opened = []

    def _open(source, role):
        if isinstance(source, Trace):
            return source
        opened.append(load(source, role=role))
        return opened[-1]

    try:
        if options.get("replay") is not None:
            options["replay"] = _open(options["replay"], "replay trace")
        if isinstance(candidate, (str, os.PathLike)):  # a sharded run's rank traces, or one trace
            from .sharded import open_candidate

            candidate = open_candidate(os.fspath(candidate))
            opened.append(candidate)
        return _diff(_open(reference, "reference trace"), _open(candidate, "candidate trace"), **options)
    finally:
        for trace in opened:
            trace.close()
