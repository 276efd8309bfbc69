"""Writing traces: the shared writer base (name checks, encoding, atomic publish) and its helpers.

Format-specific writers (``safetensors.SafetensorsWriter``, ``hdf5.HDF5Writer``) subclass
:class:`TraceWriter`; ``numtrace.formats.open_writer`` picks one by suffix.

Example:
    >>> check_new_name("enc.out", {})
    'enc.out'
    >>> final_metadata({"seed": 3}, None, ["a", "b"])["numtrace.order"]
    '["a", "b"]'
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import sys
import threading
from typing import Generic, Iterable, Iterator, Mapping, TypeVar

import numpy as np

from .. import dtypes
from ..errors import RecordingError, TapError
from ..trace import FORMAT_KEY, FORMAT_VERSION, ORDER_KEY
from .common import brief, one_line, remove_quietly

#: what a writer keeps of each stage written, to write its index on close
Entry = TypeVar("Entry")


class TraceWriter(Generic[Entry]):
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
        self._stages: dict[str, Entry] = {}  # name -> what the subclass needs to write its index
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

    def _write(self, name: str, shape: tuple[int, ...], dtype: str, raw: Iterator[np.ndarray]) -> Entry:
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


def durable_by_default() -> bool:
    """Whether writers fsync what they publish: ``NUMTRACE_FSYNC=1`` in the environment.

    Off by default, as for ``numpy.save``, ``torch.save`` and safetensors' own
    writer: a published trace is always whole (temp file, then rename), but
    after a power cut (not a crash of the program) the newest traces may be
    lost. fsync costs about as much as writing the trace (0.2 s per 155 MB here).
    """
    return os.environ.get("NUMTRACE_FSYNC", "").strip().lower() not in ("", "0", "false", "no")


def publish_file(temp: str, path: str, durable: bool) -> "threading.Thread | None":
    """Move the finished ``temp`` onto ``path`` atomically; returns the thread deleting an older file, if any.

    A trace that replaces an older one swaps names with it (Linux ``renameat2``
    with ``RENAME_EXCHANGE``, atomic like a rename) and the older file is deleted,
    on a helper thread if it is large (the interpreter waits for it at exit). A plain
    ``os.replace`` over a large file costs as much as writing it again on ext4
    (it allocates the new file's blocks at once, then frees the old file's),
    all in the recording's time. Elsewhere, or where the swap is refused, it is
    ``os.replace``.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp(); a, b = os.path.join(d, "a"), os.path.join(d, "b")
        >>> for p, text in ((a, "new"), (b, "old")):
        ...     with open(p, "w") as f: _ = f.write(text)
        >>> publish_file(a, b, durable=False)  # a small older file is deleted at once
        >>> open(b).read(), os.path.exists(a)
        ('new', False)
    """
    if durable:
        fsync_path(temp)
    if os.path.lexists(path) and _exchange(temp, path):
        try:
            small = os.lstat(temp).st_size < REMOVE_BESIDE_FROM
        except OSError:
            small = True
        if small:
            remove_quietly(temp)
            return None
        cleaner = threading.Thread(target=remove_quietly, args=(temp,), name="numtrace-remove-old-trace")
        cleaner.start()
        return cleaner
    os.replace(temp, path)
    return None


#: an older trace at least this large is deleted on a helper thread (smaller ones at once)
REMOVE_BESIDE_FROM = 16 << 20
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@functools.lru_cache(maxsize=None)
def _renameat2():
    """libc's ``renameat2`` (Linux 3.15+, glibc 2.28+), looked up once; None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _exchange(first: str, second: str) -> bool:
    """Swap two existing names atomically; False where that cannot be done (no renameat2, or refused)."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    return renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0


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


def write_text(path: "str | os.PathLike[str]", text: str, what: str) -> str:
    """Write a small text file (an HTML report, a map file) atomically: a temporary file beside it,
    then a rename. Any problem is one :class:`UsageError` line naming ``what``."""
    from ..errors import UsageError

    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    temp = os.path.join(directory, f".{os.path.basename(target)}.{secrets.token_hex(6)}.tmp")
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, target)
    except OSError as err:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise UsageError(f"cannot write the {what} {target!r}: {err.strerror or err}") from None
    return target
