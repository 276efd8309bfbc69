"""HDF5 traces (``.h5``/``.hdf5``): the same stages and metadata as safetensors, read by slice.

Layout written by numtrace (root attribute ``numtrace.container`` =
``"numtrace-trace/1"``):

- ``/numtrace/metadata``: scalar UTF-8 string dataset, the metadata dict as
  JSON (a dataset, because attributes over 64 KiB fail);
- ``/stages/000000``, ``/stages/000001``...: one dataset per stage in
  insertion order, with attributes ``name`` (any Unicode, ``/`` included) and
  ``dtype`` (recorded dtype name); bfloat16/float8 are stored as their
  uint16/uint8 bits. Datasets of 64 KiB or more are chunked with gzip+shuffle.

Any other HDF5 file is read as a *foreign* trace: every dataset is a stage
named by its path (``decoder/final_proj``), in natural order. Datasets whose
dtype numtrace cannot record (strings, compounds) are listed in ``skipped``.
Soft and external links are never followed, and datasets whose data lives in
other files (external storage, virtual datasets) are skipped: a trace from
elsewhere must not make ``trace diff`` read arbitrary local files.
h5py is imported only when an HDF5 file is used.

Example:
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "t.h5")
    >>> with HDF5Writer(path) as w:
    ...     w.add("dec/out", np.arange(6.0).reshape(3, 2), "bfloat16")
    >>> with HDF5Trace(path) as t:
    ...     t.info("dec/out").dtype, [c.tolist() for c in t.iter_chunks("dec/out", 4)]
    ('bfloat16', [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0]])
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
import weakref
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from .. import dtypes
from ..errors import RecordingError, TapError, TraceFileError
from ..trace import StageInfo, natural_sorted, resolve_order
from .common import brief, one_line, remove_quietly
from .filetrace import FileTrace
from .writer import TraceWriter, publish_file, temp_path

if TYPE_CHECKING:
    import h5py

CONTAINER_KEY = "numtrace.container"
CONTAINER = "numtrace-trace/1"
_COMPRESS_FROM_BYTES = 64 * 1024
_WRITE_SLAB = 1 << 20  # elements per hyperslab write
# A dataset may claim at most this many times the bytes it stores (gzip tops out near 1032:1),
# plus _FILL_SLACK: more is unallocated fill that reading would stream forever (a hostile file).
_MAX_EXPANSION = 2048
_FILL_SLACK = 1 << 20


def _claims_unstored_data(dataset) -> bool:
    """True when a dataset's shape claims far more bytes than the file stores for it."""
    claimed = math.prod(dataset.shape) * dataset.dtype.itemsize
    return claimed > _FILL_SLACK and claimed > _MAX_EXPANSION * dataset.id.get_storage_size() + _FILL_SLACK


def _import_h5py(prefix: str):
    try:
        import h5py
    except ImportError:
        raise TraceFileError(f"{prefix}: HDF5 traces need h5py: pip install 'numtrace[hdf5]'") from None
    return h5py


#: seconds a forked child may spend opening and indexing an HDF5 file before it is declared hostile
PREFLIGHT_SECONDS = float(os.environ.get("NUMTRACE_HDF5_PREFLIGHT_SECONDS", "10"))


def _preflight(path: str) -> str | None:
    """Open and index ``path`` in a forked child first; say why not if the child hangs or crashes.

    A corrupt HDF5 file can make the HDF5 C library spin forever (seen with a
    mutated root attribute) or crash, and no Python signal interrupts C code:
    only a separate process can be given up on. The child does the same work
    as opening the trace (no data is read); errors are left to the real open.
    Where ``os.fork`` does not exist the file is opened directly.
    """
    if not hasattr(os, "fork"):
        return None
    pid = os.fork()
    if pid == 0:  # the child: never return into the caller's code
        try:
            HDF5Trace(path, preflight=False).close()
        except BaseException:
            pass
        os._exit(0)
    deadline = time.monotonic() + PREFLIGHT_SECONDS
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.WIFSIGNALED(status):
                signum = os.WTERMSIG(status)
                return f"made the HDF5 library crash (signal {signum}) while reading its structure: corrupt file"
            return None
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return (
                f"kept the HDF5 library busy for over {PREFLIGHT_SECONDS:g} s while reading its structure: "
                "corrupt or hostile file"
            )
        time.sleep(0.002)


def _slabs(shape: tuple[int, ...], max_elements: int) -> Iterator[tuple[tuple, tuple[int, ...]]]:
    """(selection, block shape) hyperslabs covering ``shape`` in C order, each of at most ``max_elements``.

    Trailing axes that fit are taken whole; the next axis is cut in row blocks.
    """
    if math.prod(shape) == 0:
        return
    inner, k = 1, len(shape)
    while k > 0 and inner * shape[k - 1] <= max_elements:
        inner *= shape[k - 1]
        k -= 1
    if k == 0:
        yield (), shape
        return
    axis, rows = k - 1, max(1, max_elements // inner)
    for outer in np.ndindex(*shape[:axis]):
        for start in range(0, shape[axis], rows):
            stop = min(start + rows, shape[axis])
            yield outer + (slice(start, stop),), (stop - start,) + shape[axis + 1 :]


class _FlatStream:
    """Flat arrays from an iterator of flat chunks, re-cut to any requested length."""

    def __init__(self, chunks: Iterable[np.ndarray], dtype: np.dtype) -> None:
        self._chunks, self._dtype = iter(chunks), dtype
        self._rest = np.empty(0, dtype)

    def take(self, n: int) -> np.ndarray:
        parts, have = [], 0
        while have < n:
            if not self._rest.size:
                nxt = next(self._chunks, None)
                if nxt is None:
                    break
                self._rest = np.asarray(nxt).reshape(-1)
                continue
            part, self._rest = self._rest[: n - have], self._rest[n - have :]
            parts.append(part)
            have += part.size
        if not parts:
            return np.empty(0, self._dtype)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _text(value: object) -> str | None:
    """An HDF5 string attribute/dataset value as str (h5py gives str or bytes), else None."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


class HDF5Trace(FileTrace["h5py.Dataset"]):
    """An HDF5 trace opened lazily (numtrace's layout or any foreign HDF5 file).

    Example:
        >>> HDF5Trace("nope.h5", role="reference trace")
        Traceback (most recent call last):
        ...
        numtrace.errors.TraceFileError: reference trace 'nope.h5': not found
    """

    def __init__(self, path: "str | os.PathLike[str]", role: str = "trace", *, preflight: bool = True) -> None:
        self._start(path, role)
        #: datasets left out: a dtype numtrace cannot record, or data stored in other files
        self.skipped: list[str] = []
        self._h5py = h5py = _import_h5py(self._prefix)
        if os.path.isdir(self.path):
            raise self._fail("is a directory, not a trace file")
        if not os.path.exists(self.path):
            raise self._fail("not found")
        if os.path.getsize(self.path) == 0:
            raise self._fail("is empty (0 bytes), not a trace")
        problem = _preflight(self.path) if preflight else None
        if problem:
            raise self._fail(problem)
        try:
            self._file = h5py.File(self.path, "r")
        except Exception as err:  # h5py raises OSError, ValueError... for unreadable files
            raise self._fail(f"cannot be read as HDF5 ({one_line(err)}): corrupt, or not an HDF5 file") from None
        try:
            container = self._file.attrs.get(CONTAINER_KEY)
            if container is None:
                self._index_foreign()
            elif _text(container) == CONTAINER:
                self._index_numtrace()
            else:
                raise self._fail(
                    f"has container {brief(container)}; this numtrace reads {CONTAINER!r}: upgrade numtrace"
                )
        except TraceFileError:
            self._file.close()
            raise
        except Exception as err:
            self._file.close()
            raise self._fail(f"is a corrupt HDF5 file ({one_line(err)})") from None

    def close(self) -> None:
        self._file.close()

    def _raw_chunks(self, dataset, info: StageInfo, step: int) -> Iterator[np.ndarray]:
        storage = dtypes.storage_dtype(info.dtype)
        if info.size == 0:
            yield np.empty(0, storage)
            return
        if not self._file:
            raise ValueError(f"{self.label}: the trace is closed")
        try:
            pieces = (np.asarray(dataset[sel]).reshape(-1) for sel, _ in _slabs(info.shape, step))
            stream = _FlatStream(pieces, storage)
            while (chunk := stream.take(step)).size:
                yield chunk.astype(storage, copy=False)  # foreign big-endian data becomes little-endian
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as err:
            raise self._fail(f"stage {brief(info.name)} cannot be read ({one_line(err)}): corrupt HDF5 file") from None

    def _datasets(self) -> dict[str, h5py.Dataset]:
        """Every dataset reachable by hard links, by path. Soft and external links are never followed,
        and datasets whose data lives in other files (external storage, virtual) are left out."""
        found: dict[str, h5py.Dataset] = {}

        def visit(path: str, obj: object) -> None:
            if isinstance(obj, self._h5py.Dataset):
                if obj.is_virtual or obj.external:
                    self.skipped.append(path)
                else:
                    found[path] = obj

        self._file.visititems(visit)
        return found

    def _index_numtrace(self) -> None:
        datasets = self._datasets()
        meta = datasets.get("numtrace/metadata")
        if meta is None or meta.shape != ():
            raise self._fail("has no scalar /numtrace/metadata dataset: corrupt numtrace HDF5 trace")
        text = _text(meta[()])
        try:
            metadata = json.loads(text) if text is not None else None
        except (ValueError, RecursionError):
            metadata = None
        if not isinstance(metadata, dict):
            raise self._fail("/numtrace/metadata is not a JSON object: corrupt numtrace HDF5 trace")
        self.metadata = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
        stages = {path[len("stages/") :]: ds for path, ds in datasets.items() if path.startswith("stages/")}
        odd = [key for key in stages if not key.isdigit()] + self.skipped
        if odd:
            raise self._fail(f"holds {brief(odd[0])}, which is not a plain numbered stage: corrupt numtrace HDF5 trace")
        self._entries: dict[str, tuple[h5py.Dataset, StageInfo]] = {}
        for key in sorted(stages, key=int):
            dataset = stages[key]
            name, dtype = (_text(dataset.attrs.get(a)) for a in ("name", "dtype"))
            if name is None or dtype not in dtypes.SAFETENSORS_CODES:
                raise self._fail(f"/stages/{key} lacks a valid name or dtype attribute: corrupt numtrace HDF5 trace")
            storage = dtypes.storage_dtype(dtype)
            if (
                dataset.dtype.kind != storage.kind
                or dataset.dtype.itemsize != storage.itemsize
                or dataset.shape is None
            ):
                raise self._fail(f"stage {brief(name)} is stored as {dataset.dtype}, not as {dtype}: corrupt trace")
            if name in self._entries:
                raise self._fail(f"stage {brief(name)} appears twice: corrupt numtrace HDF5 trace")
            if _claims_unstored_data(dataset):
                raise self._fail(
                    f"stage {brief(name)} claims shape {tuple(dataset.shape)} but the file stores only "
                    f"{dataset.id.get_storage_size()} bytes of it: corrupt or hostile file"
                )
            self._entries[name] = (dataset, StageInfo(name, tuple(dataset.shape), dtype))
        self.order, self.has_order = resolve_order(self.metadata, list(self._entries), self._prefix)

    def _index_foreign(self) -> None:
        self._entries = {}
        for path, dataset in self._datasets().items():
            try:
                dtype = dtypes.name_of(np.empty(0, dataset.dtype))
            except TapError:
                dtype = None
            if dtype is None or dataset.shape is None or _claims_unstored_data(dataset):
                self.skipped.append(path)
                continue
            self._entries[path] = (dataset, StageInfo(path, tuple(dataset.shape), dtype))
        self.metadata = {}
        self.order, self.has_order = natural_sorted(self._entries), False


def _discard(file, path: str) -> None:
    try:
        file.close()
    except Exception:  # h5py may already be torn down at interpreter exit
        pass
    remove_quietly(path)


class HDF5Writer(TraceWriter[str]):
    """Write an HDF5 trace stage by stage into a temp file, renamed onto the target by ``close``.

    Same interface as :class:`~numtrace.formats.safetensors.SafetensorsWriter`.

    Example:
        >>> import numpy as np, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "t.h5")
        >>> w = HDF5Writer(path)
        >>> w.add("x", np.zeros((2, 2)), "float16")
        >>> w.close(metadata={"seed": 3}) == path
        True
    """

    def __init__(self, path: "str | os.PathLike[str]", durable: bool | None = None) -> None:
        super().__init__(path, durable)
        self._h5py = _import_h5py(f"cannot write trace {self.path!r}")
        self._tmp = temp_path(self.path, ".tmp")
        try:
            self._file = self._h5py.File(self._tmp, "w-")
            self._file.attrs[CONTAINER_KEY] = CONTAINER
            self._group = self._file.create_group("stages")
        except OSError as err:
            remove_quietly(self._tmp)
            raise RecordingError(f"cannot write trace {self.path!r}: {one_line(err)}") from None
        self._cleanup = weakref.finalize(self, _discard, self._file, self._tmp)

    def _write(self, name: str, shape: tuple[int, ...], dtype: str, raw: Iterator[np.ndarray]) -> str:
        storage = dtypes.storage_dtype(dtype)
        key = f"{len(self._stages):06d}"
        big = math.prod(shape) * storage.itemsize >= _COMPRESS_FROM_BYTES
        options = {"chunks": True, "compression": "gzip", "shuffle": True} if big else {}
        try:
            dataset = self._group.create_dataset(key, shape=shape, dtype=storage, **options)
            stream = _FlatStream(raw, storage)
            for selection, block in _slabs(shape, _WRITE_SLAB):
                values = stream.take(math.prod(block))
                if values.size != math.prod(block):
                    raise TapError(f"stage {brief(name)}: too few elements for shape {shape}")
                dataset[selection] = values.reshape(block)
            if stream.take(1).size:
                raise TapError(f"stage {brief(name)}: too many elements for shape {shape}")
            dataset.attrs["name"] = name
            dataset.attrs["dtype"] = dtype
        except BaseException:
            if key in self._group:
                del self._group[key]
            raise
        return key

    def _publish(self, metadata: dict[str, str]) -> None:
        text = json.dumps(metadata, ensure_ascii=False)
        self._file.create_dataset("numtrace/metadata", data=text, dtype=self._h5py.string_dtype("utf-8"))
        self._file.close()
        publish_file(self._tmp, self.path, self.durable)
        self._cleanup.detach()

    def _discard(self) -> None:
        self._cleanup()
