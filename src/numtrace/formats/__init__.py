"""Trace files on disk: safetensors (the format of record) and HDF5.

:func:`load` opens either format lazily (header only), :func:`open_writer`
streams stages to disk one by one and publishes the file atomically,
:func:`save` writes a mapping in one call and :func:`convert` copies a trace
between formats bit for bit. ``numtrace.trace`` re-exports all four.

Example:
    >>> import numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> _ = save(os.path.join(d, "a.st"), {"x": np.arange(4.0)}, metadata={"seed": "1"})
    >>> _ = convert(os.path.join(d, "a.st"), os.path.join(d, "a.h5"))
    >>> with load(os.path.join(d, "a.h5")) as t:
    ...     t.order, t.read("x").tolist(), t.user_metadata
    (['x'], [0.0, 1.0, 2.0, 3.0], {'seed': '1'})
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping

import numpy as np

from ..errors import TapError, TraceFileError
from ..trace import FORMAT_KEY, HDF5_SUFFIXES, ORDER_KEY, SAFETENSORS_SUFFIXES
from .common import HDF5_SIGNATURE

if TYPE_CHECKING:
    from .filetrace import FileTrace

__all__ = ["CONVERT_CHUNK", "convert", "load", "open_writer", "save"]

#: elements per chunk when :func:`convert` streams a stage (4 MiB of float32)
CONVERT_CHUNK = 1 << 20


def load(path: "str | os.PathLike[str]", role: str = "trace") -> FileTrace:
    """Open a trace for lazy reading, choosing the format by suffix (or by sniffing).

    ``role`` ("reference trace", "candidate trace"...) starts every error message.

    Example:
        >>> load("missing.st", role="reference trace")
        Traceback (most recent call last):
        ...
        numtrace.errors.TraceFileError: reference trace 'missing.st': not found
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SAFETENSORS_SUFFIXES and suffix not in HDF5_SUFFIXES:
        try:
            with open(path, "rb") as f:
                head = f.read(len(HDF5_SIGNATURE))
        except OSError:
            head = b""  # the safetensors reader reports the problem properly
        suffix = HDF5_SUFFIXES[0] if head == HDF5_SIGNATURE else SAFETENSORS_SUFFIXES[0]
    if suffix in HDF5_SUFFIXES:
        from .hdf5 import HDF5Trace

        return HDF5Trace(path, role)
    from .safetensors import SafetensorsTrace

    return SafetensorsTrace(path, role)


def open_writer(path: "str | os.PathLike[str]"):
    """A streaming writer for ``path``: safetensors for ``.safetensors``/``.st``, HDF5 for ``.h5``/``.hdf5``.

    Example:
        >>> import tempfile, os
        >>> with open_writer(os.path.join(tempfile.mkdtemp(), "t.st")) as w:
        ...     w.add("x", np.zeros(3, np.float32), "bfloat16")
        >>> type(w).__name__, w.names
        ('SafetensorsWriter', ['x'])
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix in SAFETENSORS_SUFFIXES:
        from .safetensors import SafetensorsWriter

        return SafetensorsWriter(path)
    if suffix in HDF5_SUFFIXES:
        from .hdf5 import HDF5Writer

        return HDF5Writer(path)
    known = ", ".join(SAFETENSORS_SUFFIXES + HDF5_SUFFIXES)
    raise TraceFileError(f"cannot write trace {path!r}: unknown suffix {suffix or '(none)'!r}; use one of {known}")


def save(
    path: "str | os.PathLike[str]",
    stages: Mapping[str, "np.ndarray | tuple[np.ndarray, str]"],
    metadata: Mapping[str, str] | None = None,
    order: list[str] | None = None,
) -> str:
    """Write ``stages`` (arrays or ``(values, recorded_dtype)`` pairs) to a trace file; returns its path.

    Example:
        >>> import tempfile, os
        >>> p = save(os.path.join(tempfile.mkdtemp(), "t.st"), {"b": np.ones(2), "a": (np.zeros(1), "bfloat16")})
        >>> with load(p) as t: t.order, t.info("a").dtype
        (['b', 'a'], 'bfloat16')
    """
    with open_writer(path) as writer:
        for name, value in stages.items():
            if isinstance(value, tuple):
                writer.add(name, *value)
            else:
                writer.add(name, value)
        return writer.close(order=order, metadata=metadata)


def convert(src: "str | os.PathLike[str]", dst: "str | os.PathLike[str]") -> str:
    """Copy a trace to another file (either format), stage by stage and bit for bit.

    Metadata and order are kept; a file without ``numtrace.order`` gets its
    natural order written. Returns the destination path.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> _ = save(os.path.join(d, "a.h5"), {"x": (np.array([np.nan], np.float32), "bfloat16")})
        >>> convert(os.path.join(d, "a.h5"), os.path.join(d, "b.st")).endswith("b.st")
        True
    """
    with load(src, role="source trace") as trace, open_writer(dst) as writer:
        for name in trace.order:
            info = trace.info(name)
            try:
                writer.add_raw_chunks(name, info.shape, info.dtype, trace.iter_raw_chunks(name, CONVERT_CHUNK))
            except TapError as err:  # a name the other format cannot hold, say
                raise TraceFileError(f"cannot convert {trace.label!r} to {os.fspath(dst)!r}: {err}") from None
        kept = {k: v for k, v in trace.metadata.items() if k not in (ORDER_KEY, FORMAT_KEY)}
        return writer.close(order=list(trace.order), metadata=kept)
