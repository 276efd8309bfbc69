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
