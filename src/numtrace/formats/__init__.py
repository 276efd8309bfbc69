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

import json
import os
import secrets
import threading
from typing import Iterable, Iterator, Mapping

import numpy as np

from .. import dtypes
from ..errors import RecordingError, TapError, TraceFileError
from ..trace import FORMAT_KEY, FORMAT_VERSION, HDF5_SUFFIXES, ORDER_KEY, SAFETENSORS_SUFFIXES, Trace

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: elements per chunk when :func:`convert` streams a stage (4 MiB of float32)
CONVERT_CHUNK = 1 << 20


def load(path: "str | os.PathLike[str]", role: str = "trace") -> Trace:
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


# --- shared by the readers and writers -----------------------------------------------


class TraceWriter:
    """What both writers share: name checks, encoding, state, atomic close, context manager.

    Subclasses implement ``_write`` (store one stage, all or nothing),
    ``_publish`` (write the finished file onto ``self.path``) and ``_discard``.
    """

    path: str

    def __init__(self, path: "str | os.PathLike[str]", durable: bool | None = None) -> None:
        self.path = os.fspath(path)
        #: fsync the file and its directory on close (default: the ``NUMTRACE_FSYNC`` environment variable)
        self.durable = durable_by_default() if durable is None else bool(durable)
        #: metadata merged into what :meth:`close` writes (``close(metadata=...)`` wins)
        self.metadata: dict[str, object] = {}
        self._stages: dict[str, object] = {}  # name -> what the subclass needs to write its index
        self._state = "open"

    @property
    def names(self) -> list[str]:
        """Stage names added so far, in insertion order."""
        return list(self._stages)

    def add(self, name: str, values: np.ndarray, dtype: str | None = None) -> None:
        """Record ``values`` (a value array) as ``dtype`` (None: the array's own dtype)."""
        self._check_open()
        check_new_name(name, self._stages)
        values = np.asarray(values)
        if dtype is None:
            dtype = dtypes.name_of(values)
        if values.dtype.name == dtype and dtype in _BITS_ONLY:  # ml_dtypes arrays: keep their exact bits
            raw = np.ascontiguousarray(values).view(dtypes.storage_dtype(dtype))
        else:
            raw = dtypes.encode(values, dtype)  # may turn a 0-d array into shape (1,): keep values.shape
        self.add_raw_chunks(name, values.shape, dtype, [raw.reshape(-1)])

    def add_raw(self, name: str, raw: np.ndarray, dtype: str) -> None:
        """Record an array that already holds ``dtype``'s stored bits (``bfloat16`` as uint16...)."""
        raw = np.asarray(raw)
        self.add_raw_chunks(name, raw.shape, dtype, [raw.reshape(-1)])

    def add_raw_chunks(self, name: str, shape: Iterable[int], dtype: str, chunks: Iterable[np.ndarray]) -> None:
        """Record a stage from flat chunks of stored bits in C order (a lossless streaming copy)."""
        self._check_open()
        check_new_name(name, self._stages)
        dtypes.storage_dtype(dtype)  # TapError for an unknown dtype
        shape = tuple(int(d) for d in shape)
        raw = (check_raw(np.asarray(chunk), dtype) for chunk in chunks)
        try:
            self._stages[name] = self._write(name, shape, dtype, raw)
        except OSError as err:
            raise RecordingError(f"cannot write trace {self.path!r}: {one_line(err)}") from None

    def close(self, order: list[str] | None = None, metadata: Mapping[str, object] | None = None) -> str:
        """Publish the file atomically (``order`` defaults to insertion order); returns its path."""
        self._check_open()
        meta = final_metadata({**self.metadata, **(metadata or {})}, order, self.names)
        try:
            self._publish(meta)
        except BaseException as err:
            self.abort()
            if isinstance(err, OSError):
                raise RecordingError(f"cannot write trace {self.path!r}: {one_line(err)}") from None
            raise
        self._state = "closed"
        if self.durable:
            fsync_path(os.path.dirname(os.path.abspath(self.path)))
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; the target path is left as it was."""
        if self._state == "open":
            self._state = "aborted"
        self._discard()

    def _check_open(self) -> None:
        if self._state != "open":
            raise RecordingError(f"the writer for {self.path!r} is already {self._state}")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._state == "open":
            self.close() if exc_type is None else self.abort()

    def _write(self, name: str, shape: tuple[int, ...], dtype: str, raw: Iterator[np.ndarray]) -> object:
        raise NotImplementedError

    def _publish(self, metadata: dict[str, str]) -> None:
        raise NotImplementedError

    def _discard(self) -> None:
        raise NotImplementedError


_BITS_ONLY = ("bfloat16", "float8_e4m3fn", "float8_e5m2")


def check_new_name(name: object, existing: Mapping[str, object]) -> str:
    """Refuse stage names no trace can hold (TapError), else return the name."""
    if not isinstance(name, str):
        raise TapError(f"stage names must be str, got {type(name).__name__} {brief(name)}")
    if not name:
        raise TapError("stage name is empty; give every tap a name")
    if name == "__metadata__":
        raise TapError("'__metadata__' is reserved by safetensors and cannot be a stage name; rename the tap")
    if name in existing:
        raise TapError(f"stage {brief(name)} was already recorded; names in a trace must be unique")
    if "\x00" in name:
        raise TapError(f"stage name {brief(name)} contains a NUL character, which HDF5 cannot store")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise TapError(f"stage name {brief(name)} is not valid Unicode (lone surrogate)") from None
    return name


def check_raw(raw: np.ndarray, dtype: str) -> np.ndarray:
    """``raw`` as the little-endian storage array of ``dtype``; TapError if its kind or width differ."""
    storage = dtypes.storage_dtype(dtype)
    if raw.dtype.kind != storage.kind or raw.dtype.itemsize != storage.itemsize:
        raise TapError(f"raw data for dtype {dtype!r} must be stored as {storage}, got {raw.dtype}")
    return raw.astype(storage, copy=False)  # a byte-order change keeps every bit pattern


def decode(raw: np.ndarray, dtype: str) -> np.ndarray:
    """``dtypes.decode``, plus: a bool byte other than 0/1 (a corrupt file) reads as True, never as garbage."""
    return raw.view(np.uint8) != 0 if dtype == "bool" else dtypes.decode(raw, dtype)


def final_metadata(metadata: Mapping[str, object], order: list[str] | None, names: list[str]) -> dict[str, str]:
    """The str->str metadata a writer stores: user keys (non-str values as JSON) plus order and format."""
    out: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise RecordingError(f"metadata keys must be str, got {brief(key)}")
        out[key] = value if isinstance(value, str) else json.dumps(value)
    order = list(names) if order is None else list(order)
    if len(order) != len(names) or set(order) != set(names):
        unknown, missing = sorted(set(order) - set(names))[:1], sorted(set(names) - set(order))[:1]
        raise RecordingError(
            f"order must list every recorded stage exactly once ({len(order)} names for {len(names)} stages; "
            f"unknown: {unknown}, missing: {missing})"
        )
    out[ORDER_KEY] = json.dumps(order, ensure_ascii=False)
    out[FORMAT_KEY] = FORMAT_VERSION
    return out


def temp_path(path: str, suffix: str) -> str:
    """A fresh name ``.<basename>.<random><suffix>`` beside ``path`` (same filesystem: os.replace is atomic)."""
    directory, base = os.path.split(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise RecordingError(f"cannot write trace {path!r}: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise RecordingError(f"cannot write trace {path!r}: it is a directory")
    return os.path.join(directory, f".{base}.{secrets.token_hex(6)}{suffix}")


def brief(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: names and shapes in one-line error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(err: BaseException, limit: int = 200) -> str:
    """An exception's message on one line (h5py's span several), cut to ``limit`` characters."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def remove_quietly(path: str | None) -> None:
    if path:
        try:
            os.remove(path)
        except OSError:
            pass


def durable_by_default() -> bool:
    """Whether writers fsync what they publish: ``NUMTRACE_FSYNC=1`` in the environment.

    Off by default, as for ``numpy.save``, ``torch.save`` and safetensors' own
    writer: a published trace is always whole (temp file, then rename), but
    after a power cut (not a crash of the program) the newest traces may be
    lost. fsync costs about as much as writing the trace (0.2 s per 155 MB here).
    """
    return os.environ.get("NUMTRACE_FSYNC", "").strip().lower() not in ("", "0", "false", "no")


def publish_file(temp: str, path: str, durable: bool) -> None:
    """Rename the finished ``temp`` onto ``path`` atomically.

    A trace that replaces an older one keeps the old file open across the
    rename and closes it on a helper thread: freeing a large old file's blocks
    then happens beside the recording, not in it.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp(); a, b = os.path.join(d, "a"), os.path.join(d, "b")
        >>> for p, text in ((a, "new"), (b, "old")):
        ...     with open(p, "w") as f: _ = f.write(text)
        >>> publish_file(a, b, durable=False); open(b).read(), os.path.exists(a)
        ('new', False)
    """
    if durable:
        fsync_path(temp)
    old = None
    if os.name == "posix":  # elsewhere an open file cannot be replaced
        try:
            old = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            pass
    try:
        os.replace(temp, path)
    finally:
        if old is not None:
            threading.Thread(target=os.close, args=(old,), name="numtrace-release-old-trace", daemon=True).start()


def fsync_path(path: str) -> None:
    """Flush a closed file (or, best effort, a directory) to disk."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
