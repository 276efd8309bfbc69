"""The one family of exceptions numtrace raises on purpose.

Every message says what was found and how to fix it; the CLI turns a
:class:`NumtraceError` into one line on stderr and exit status 2.

Example:
    >>> try:
    ...     raise TraceFileError("reference trace 'a.st' not found")
    ... except NumtraceError as err:
    ...     print(err)
    reference trace 'a.st' not found
"""

from __future__ import annotations


class NumtraceError(Exception):
    """Base class: bad input or misuse that the user can fix."""


class TraceFileError(NumtraceError):
    """A trace file is missing, unreadable, corrupt, unsafe or of an unknown format."""


class TapError(NumtraceError):
    """A value handed to ``tap`` cannot be recorded (unknown type, bad name...)."""


class RecordingError(NumtraceError):
    """A recording was misused (closed twice, written to a bad path...)."""


class ToleranceError(NumtraceError):
    """A tolerance specification (``--tol`` or a TOML file) cannot be parsed."""


class UsageError(NumtraceError):
    """Arguments that cannot work together (an unknown stage, a bad glob...)."""


class NumtraceWarning(UserWarning):
    """Something numtrace could not record or observe (a stage, a part of a model); the run goes on.

    ``trace run`` prints each as one line, ``numtrace: <message>``; in a library or a test suite
    they are ordinary warnings (``pytest.warns(NumtraceWarning)``, ``warnings.filterwarnings``).
    """


_warned: set[str] = set()


def warn_once(key: str, message: str, stacklevel: int = 3) -> None:
    """Warn ``message`` (a :class:`NumtraceWarning`) once per ``key`` per process.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     for _ in range(2):
        ...         warn_once("doctest:demo", "stage 'x' not recorded")
        >>> [str(w.message) for w in caught]
        ["stage 'x' not recorded"]
    """
    if key not in _warned:
        _warned.add(key)
        import warnings

        warnings.warn(message, NumtraceWarning, stacklevel=stacklevel)


def forget_warnings() -> None:
    """Let every :func:`warn_once` key warn again (a new run in the same process, a test)."""
    _warned.clear()
