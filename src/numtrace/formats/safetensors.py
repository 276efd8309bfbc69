"""Safetensors traces: a strict, lazy reader and a streaming, atomic writer.

The reader parses the header itself instead of using the ``safetensors``
package: that package cannot read bfloat16 into NumPy without ml_dtypes, and
a trace handed to ``trace diff`` may be hostile, so every field is checked
before any data is read. Data is read chunk by chunk with seek + readinto;
the file is never mapped or read whole.

Example:
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "t.safetensors")
    >>> with SafetensorsWriter(path) as w:
    ...     w.add("enc.out", np.arange(6.0).reshape(2, 3).T, "float32")
    >>> with SafetensorsTrace(path) as t:
    ...     t.info("enc.out"), [c.tolist() for c in t.iter_chunks("enc.out", 4)]
    (StageInfo(name='enc.out', shape=(3, 2), dtype='float32'), [[0.0, 3.0, 1.0, 4.0], [2.0, 5.0]])
"""

from __future__ import annotations

import json
import math
import os
import struct
import threading
import time
import weakref
from typing import Iterator

import numpy as np

from .. import dtypes
from ..errors import RecordingError, TapError, TraceFileError
from ..trace import StageInfo, resolve_order
from .common import HDF5_SIGNATURE, brief, decode, one_line, remove_quietly
from .filetrace import FileTrace
from .staging import StagedWrites, use_staging
from .writer import TraceWriter, publish_file, temp_path

_PREADV = hasattr(os, "preadv")
_SEEK_LOCK = threading.Lock()

#: the safetensors limit on the JSON header
MAX_HEADER_BYTES = 100_000_000
_MAX_ARRAY_BYTES = 2**63 - 1  # NumPy refuses shapes whose (non-zero) product overflows this
_MAX_NDIM = 64  # NumPy's limit
#: read_many reads stages at most this many bytes apart together (the bytes between are read too) ...
READ_GAP = 4096
#: ... in reads of at most this many bytes (a stage longer than that is read alone)
READ_RUN = 8 << 20
#: dtypes numtrace can read from safetensors files (lenient) but never writes there:
#: no other safetensors reader knows them
NOT_IN_SAFETENSORS = frozenset({"complex128"})


def _json_kind(value: object) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def _unique_keys(pairs: list) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"key {brief(key)} appears twice")
            seen.add(key)
    return result


class SafetensorsTrace(FileTrace[int]):
    """A safetensors trace opened lazily: the header is validated, data stays on disk.

    Example:
        >>> SafetensorsTrace("nope.safetensors", role="candidate trace")
        Traceback (most recent call last):
        ...
        numtrace.errors.TraceFileError: candidate trace 'nope.safetensors': not found
    """

    def __init__(self, path: "str | os.PathLike[str]", role: str = "trace") -> None:
        self._start(path, role)
        self._file = self._open()
        try:
            self._parse_header()
        except BaseException:
            self._file.close()
            raise

    def close(self) -> None:
        self._file.close()

    # --- reading --------------------------------------------------------------------

    def _raw_chunks(self, start: int, info: StageInfo, step: int) -> Iterator[np.ndarray]:
        storage = dtypes.storage_dtype(info.dtype)
        total = info.size
        if total == 0:
            yield np.empty(0, storage)
            return
        for first in range(0, total, step):
            yield self._read_at(start + first * storage.itemsize, min(step, total - first), storage)

    def read_many(self, names: list[str]) -> list[np.ndarray]:
        """Several whole stages; neighbours (at most :data:`READ_GAP` bytes apart, :data:`READ_RUN`
        bytes in all) are fetched in one read.

        Example:
            >>> import numpy as np, tempfile, os, numtrace
            >>> path = os.path.join(tempfile.mkdtemp(), "t.safetensors")
            >>> _ = numtrace.save(path, {"x": np.arange(3.0), "y": np.ones(2, np.float32)})
            >>> with SafetensorsTrace(path) as t:
            ...     [v.tolist() for v in t.read_many(["y", "x"])]
            [[1.0, 1.0], [0.0, 1.0, 2.0]]
        """
        entries = [self._lookup(name) for name in names]
        located = sorted((start, i) for i, (start, _) in enumerate(entries))
        out: list[np.ndarray] = [np.empty(0)] * len(names)
        run: list[tuple[int, int, StageInfo, int]] = []  # (offset, index into out, info, bytes)
        for start, i in located:
            info = entries[i][1]
            nbytes = info.nbytes
            if run and (start - (run[-1][0] + run[-1][3]) > READ_GAP or start + nbytes - run[0][0] > READ_RUN):
                self._read_run(run, out)
                run = []
            run.append((start, i, info, nbytes))
        if run:
            self._read_run(run, out)
        return out

    def _read_run(self, run: list[tuple[int, int, StageInfo, int]], out: list[np.ndarray]) -> None:
        """Read neighbouring stages (``(offset, index into out, info, bytes)``, by offset) with one read."""
        begin = run[0][0]
        end = max(start + nbytes for start, _, _, nbytes in run)
        data = self._read_at(begin, end - begin, np.dtype(np.uint8))
        for start, i, info, nbytes in run:
            raw = data[start - begin : start - begin + nbytes].view(dtypes.storage_dtype(info.dtype))
            out[i] = decode(raw, info.dtype).reshape(info.shape)

    def _read_at(self, position: int, count: int, storage: np.dtype) -> np.ndarray:
        if self._file.closed:
            raise ValueError(f"{self.label}: the trace is closed")
        out = np.empty(count, storage)
        view = out.view(np.uint8).data
        done = 0
        try:
            while done < len(view):  # positioned reads: several threads may read one trace (trace diff --jobs)
                got = self._read_into(view[done:], position + done)
                if not got:
                    break
                done += got
        except OSError as err:
            raise self._fail(f"cannot be read ({one_line(err)})") from None
        if done < len(view):
            raise self._fail("the file is shorter than its header says: it was truncated or changed while reading")
        return out

    def _read_into(self, view: memoryview, position: int) -> int:
        if _PREADV:
            return os.preadv(self._file.fileno(), [view], position)
        with _SEEK_LOCK:  # no positioned reads here (Windows): one seek and read at a time
            self._file.seek(position)
            return self._file.readinto(view) or 0

    # --- opening and validating ---------------------------------------------------------

    def _open(self):
        if os.path.isdir(self.path):
            raise self._fail("is a directory, not a trace file")
        try:
            return open(self.path, "rb")
        except FileNotFoundError:
            raise self._fail("not found") from None
        except IsADirectoryError:
            raise self._fail("is a directory, not a trace file") from None
        except PermissionError:
            raise self._fail("permission denied") from None
        except OSError as err:
            raise self._fail(f"cannot be opened ({one_line(err)})") from None

    def _pickle_error(self) -> TraceFileError:
        return self._fail(
            "looks like a PyTorch pickle / torch.save archive, not safetensors; numtrace never loads pickles "
            "(they can run code): re-save the tensors with safetensors.torch.save_file"
        )

    def _parse_header(self) -> None:
        size = os.fstat(self._file.fileno()).st_size
        if size == 0:
            raise self._fail("is empty (0 bytes), not a trace")
        prefix = self._file.read(8)
        pickle_like = prefix[:1] == b"\x80" or prefix[:4] == b"PK\x03\x04"
        if len(prefix) < 8:
            if pickle_like:
                raise self._pickle_error()
            raise self._fail(
                f"has only {size} bytes, fewer than the 8-byte header length a safetensors file starts with"
            )
        (length,) = struct.unpack("<Q", prefix)
        available = size - 8
        if length > MAX_HEADER_BYTES or length > available:
            # A valid header length may start with byte 0x80 too, so the signatures only name the failure.
            if pickle_like:
                raise self._pickle_error()
            if prefix == HDF5_SIGNATURE:
                raise self._fail("is an HDF5 file, not safetensors: give it a .h5 suffix")
            if length > MAX_HEADER_BYTES:
                raise self._fail(
                    f"header claims {length} bytes, over the safetensors limit of {MAX_HEADER_BYTES}: "
                    "corrupt, or not a safetensors file"
                )
            raise self._fail(
                f"header claims {length} bytes but the file has only {available} after its 8-byte length prefix: "
                "truncated, or not a safetensors file"
            )
        raw = self._file.read(length)
        if len(raw) != length:
            raise self._fail("the file shrank while its header was read")
        if pickle_like and raw[:1] != b"{":
            raise self._pickle_error()
        header = self._decode_json(raw)
        self._index(header, data_start=8 + length, data_size=available - length)

    def _decode_json(self, raw: bytes) -> dict:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail("header is not UTF-8 text: corrupt, or not a safetensors file") from None
        try:
            header = json.loads(text, object_pairs_hook=_unique_keys)
        except RecursionError:
            raise self._fail("header JSON is nested too deeply: corrupt or hostile file") from None
        except ValueError as err:
            raise self._fail(
                f"header is not valid JSON ({one_line(err)}): corrupt, or not a safetensors file"
            ) from None
        if not isinstance(header, dict):
            raise self._fail(f"header is {_json_kind(header)}, not a JSON object: not a safetensors file")
        return header

    def _index(self, header: dict, data_start: int, data_size: int) -> None:
        meta = header.pop("__metadata__", None)
        if isinstance(meta, dict) and isinstance(meta.get("data_offsets"), list) and "dtype" in meta:
            raise self._fail("holds a tensor named '__metadata__', a name safetensors reserves: rename it and re-save")
        if meta is not None and not isinstance(meta, dict):
            raise self._fail(f"'__metadata__' is {_json_kind(meta)}; it must be an object of strings (or null)")
        # MLX writes null for no metadata; other writers may store non-strings: keep them as JSON text.
        self.metadata = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (meta or {}).items()}
        spans = []
        for name, entry in header.items():
            info, begin, end = self._check_entry(name, entry, data_size)
            spans.append((begin, end, name, info))
        spans.sort(key=lambda s: (s[0], s[1]))
        reach, holder = 0, ""
        for begin, end, name, _ in spans:
            if begin == end:
                continue  # zero-length tensors may share an offset
            if begin < reach:
                raise self._fail(
                    f"stages {brief(holder)} and {brief(name)} overlap in the data section: corrupt or hostile file"
                )
            reach, holder = end, name
        self._entries: dict[str, tuple[int, StageInfo]] = {s[2]: (data_start + s[0], s[3]) for s in spans}
        self.order, self.has_order = resolve_order(self.metadata, [s[2] for s in spans], self._prefix)

    def _check_entry(self, name: str, entry: object, data_size: int) -> tuple[StageInfo, int, int]:
        if not isinstance(entry, dict):
            raise self._bad(name, f"is {_json_kind(entry)}, not an object with dtype, shape and data_offsets")
        code, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(code, str) or code not in dtypes.NAMES_BY_CODE:
            known = ", ".join(dtypes.NAMES_BY_CODE)
            raise self._bad(name, f"has unknown dtype code {brief(code, 40)}; numtrace reads {known}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise self._bad(name, f"has shape {brief(shape)}, not a list of non-negative integers")
        if len(shape) > _MAX_NDIM:
            raise self._bad(name, f"has {len(shape)} dimensions, more than the {_MAX_NDIM} NumPy supports")
        if not (isinstance(offsets, list) and len(offsets) == 2 and type(offsets[0]) is type(offsets[1]) is int):
            raise self._bad(name, f"has data_offsets {brief(offsets)}, not two integers [begin, end]")
        begin, end = offsets
        if not 0 <= begin <= end:
            raise self._bad(name, f"has data_offsets [{begin}, {end}]; need 0 <= begin <= end")
        if end > data_size:
            raise self._bad(name, f"ends at byte {end} of a data section of {data_size} bytes: truncated file")
        dtype = dtypes.NAMES_BY_CODE[code]
        itemsize = dtypes.itemsize(dtype)
        # Python ints: a hostile shape like [2**40, 2**40] costs nothing to check and is never allocated.
        if math.prod(d for d in shape if d) * itemsize > _MAX_ARRAY_BYTES:
            raise self._bad(name, f"has shape {brief(shape)}, too large for any array")
        expected = math.prod(shape) * itemsize
        if expected != end - begin:
            raise self._bad(
                name,
                f"has shape {brief(shape)} of {dtype} ({expected} bytes) but its data_offsets span {end - begin} bytes",
            )
        return StageInfo(name, tuple(shape), dtype), begin, end

    def _bad(self, name: str, why: str) -> TraceFileError:
        return self._fail(f"stage {brief(name)} {why}")


#: bytes kept free for the header in front of the data while recording
HEADER_RESERVE = 64 * 1024
#: a trace with less data than this is rewritten without the unused reserve on close
COMPACT_BELOW = 8 << 20
_MOVE_CHUNK = 16 << 20


def _discard(file, path: str, staging: StagedWrites | None = None) -> None:
    if staging is not None:
        try:
            staging.close()
        except OSError:
            pass  # the trace is being dropped: its write error no longer matters
    file.close()
    remove_quietly(path)


def _header_entry_bytes(name: str, shape: tuple[int, ...]) -> int:
    """An upper bound of what a stage adds to the header: its entry plus its name in ``numtrace.order``."""
    quoted = len(json.dumps(name, ensure_ascii=False).encode("utf-8"))
    return 3 * quoted + 72 + 21 * len(shape)  # the order list quotes the name again, escaped


class SafetensorsWriter(TraceWriter[tuple[str, tuple[int, ...], int, int]]):
    """Write a safetensors trace stage by stage; the file appears atomically on ``close``.

    Each stage is encoded (contiguous, little-endian) and written at once into
    the final temp file ``.<name>.<random>.tmp`` beside the target, after a
    region reserved for the header, so a recording never holds the trace in
    memory and its data is written once. ``close`` writes the header into the
    reserve (padded with spaces, which JSON allows; a small trace is compacted
    instead), then renames the file onto the target. The reserve grows while
    little data follows it; a header that outgrows it anyway moves the data
    once. Refused names raise TapError.

    Example:
        >>> import numpy as np, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "t.st")
        >>> w = SafetensorsWriter(path)
        >>> w.add("b", np.ones(2, np.float32), "bfloat16"); w.add("a", np.arange(3), "int64")
        >>> w.close(order=["a", "b"], metadata={"model": "tiny"}) == path
        True
    """

    def __init__(self, path: "str | os.PathLike[str]", durable: bool | None = None, staged: bool | None = None) -> None:
        super().__init__(path, durable)
        self._size = 0  # bytes of data written
        self._reserve = HEADER_RESERVE
        self._header_bound = 512  # metadata keys numtrace adds, and the JSON around the entries
        self._tmp = temp_path(self.path, ".tmp")
        try:
            self._file = open(self._tmp, "x+b")
            self._file.seek(self._reserve)
        except OSError as err:
            raise RecordingError(f"cannot write trace {self.path!r}: {one_line(err)}") from None
        #: the writer thread's copies and writes (:mod:`numtrace.formats.staging`), None: written in the call
        self.staging = StagedWrites(self._file.fileno()) if (use_staging() if staged is None else staged) else None
        #: seconds spent writing in the caller's thread (without a writer thread)
        self.write_s = 0.0
        # Removes the temp file if the writer is dropped (or the interpreter exits) unclosed.
        self._cleanup = weakref.finalize(self, _discard, self._file, self._tmp, self.staging)

    @property
    def timings(self) -> dict[str, float]:
        """Where the recording's write time went: ``copy_s`` and ``wait_s`` (in the program, copying
        into staging buffers and waiting for a free one) and ``write_s`` (the writes themselves: in
        the writer thread with staging, else in the program), in seconds."""
        if self.staging is None:
            return {"copy_s": 0.0, "wait_s": 0.0, "write_s": self.write_s}
        staged = self.staging
        return {"copy_s": staged.copy_s, "wait_s": staged.wait_s, "write_s": staged.write_s}

    def _write(
        self, name: str, shape: tuple[int, ...], dtype: str, raw: Iterator[np.ndarray]
    ) -> tuple[str, tuple[int, ...], int, int]:
        if dtype in NOT_IN_SAFETENSORS:
            raise TapError(
                f"stage {brief(name)}: safetensors has no {dtype} (other readers would refuse the file); "
                "record it in an .h5 trace, or tap it as complex64 or as its real and imaginary parts"
            )
        self._make_room(_header_entry_bytes(name, shape))
        begin, count, itemsize = self._size, 0, dtypes.itemsize(dtype)
        try:
            for chunk in raw:
                flat = np.ascontiguousarray(chunk.reshape(-1))
                if self.staging is not None:
                    self.staging.write(flat, self._reserve + begin + count * itemsize)
                else:
                    start = time.perf_counter()
                    self._file.write(flat.view(np.uint8).data)
                    self.write_s += time.perf_counter() - start
                count += flat.size
            if count != math.prod(shape):
                raise TapError(f"stage {brief(name)}: {count} elements given for shape {shape}")
        except BaseException:
            self._drain(quiet=True)
            self._file.seek(self._reserve + begin)
            self._file.truncate()
            raise
        self._size = begin + count * itemsize
        self._header_bound += _header_entry_bytes(name, shape)
        return dtypes.SAFETENSORS_CODES[dtype], shape, begin, self._size

    def _make_room(self, more: int) -> None:
        """Grow the header reserve (4x) while moving the data written so far is cheap."""
        if self._header_bound + more > self._reserve and self._size <= COMPACT_BELOW:
            wanted = 4 * (self._header_bound + more)
            self._move_data(wanted + (-wanted % 8))

    def _drain(self, quiet: bool = False) -> None:
        """Wait for the writer thread to write what it was handed (``quiet``: keep its error for later)."""
        if self.staging is not None:
            try:
                self.staging.drain()
            except OSError:
                if not quiet:
                    raise

    def _move_data(self, new_reserve: int) -> None:
        """Move the data section to start at ``new_reserve`` (either way; the ranges may overlap)."""
        self._drain()
        self._file.flush()
        fd, old, size = self._file.fileno(), self._reserve, self._size
        starts = list(range(0, size, _MOVE_CHUNK))
        for first in starts if new_reserve < old else reversed(starts):
            block = os.pread(fd, min(_MOVE_CHUNK, size - first), old + first)
            os.pwrite(fd, block, new_reserve + first)
        self._reserve = new_reserve
        self._file.seek(new_reserve + size)
        self._file.truncate()

    def _publish(self, metadata: dict[str, str]) -> None:
        if self.staging is not None:
            self.staging.close()  # every stage written (or the writer thread's error raised)
        header: dict[str, object] = {"__metadata__": metadata}
        for name, (code, shape, begin, end) in self._stages.items():
            header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [begin, end]}
        blob = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if len(blob) > MAX_HEADER_BYTES:
            raise RecordingError(f"cannot write trace {self.path!r}: its header would exceed {MAX_HEADER_BYTES} bytes")
        needed = 8 + len(blob)
        if needed > self._reserve or self._size < COMPACT_BELOW:
            self._move_data(needed + (-needed % 8))  # data starts 8-byte aligned, as in safetensors' own writer
        blob += b" " * (self._reserve - needed)
        self._file.flush()
        os.pwrite(self._file.fileno(), struct.pack("<Q", len(blob)) + blob, 0)
        self._file.close()
        publish_file(self._tmp, self.path, self.durable)
        self._cleanup.detach()

    def _discard(self) -> None:
        self._cleanup()
