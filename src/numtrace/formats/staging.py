"""Writes done beside the program: copies into bounded staging buffers, written by one thread.

A recording must keep each value as it was when tapped, so the copy has to happen in the
program's time; the write to the file need not. :class:`StagedWrites` copies each piece of a
stage into one of a few reusable buffers (no page faults after the first use) and returns at
once; a writer thread ``pwrite``\\ s the buffers at their file positions and hands them back.
When every buffer is in flight the program waits for one (``wait_s``): memory stays bounded by
``buffers * buffer_bytes`` whatever the trace size. A failed write (disk full) is raised by the
next :meth:`write`, :meth:`drain` or :meth:`close`, so nothing fails silently.

It can pay only where a core is free for the writer thread (a forward that leaves cores idle, a
laptop with 8-16 cores); on the 2-core benchmark machine it did not (benchmarks/README.md), so it
is off unless ``NUMTRACE_WRITER_THREAD=1`` (:func:`use_staging`).

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> fd = os.open(os.path.join(tempfile.mkdtemp(), "data.bin"), os.O_RDWR | os.O_CREAT)
    >>> staged = StagedWrites(fd, buffer_bytes=4, buffers=2)
    >>> staged.write(np.arange(3, dtype=np.uint32), 0)  # 12 bytes: three buffers' worth, in turn
    >>> staged.close()
    >>> np.frombuffer(os.pread(fd, 12, 0), np.uint32).tolist(), staged.copied
    ([0, 1, 2], 12)
    >>> os.close(fd)
"""

from __future__ import annotations

import os
import queue
import threading
import time

import numpy as np

#: bytes per staging buffer, and buffers in the pool (64 MiB at most in flight)
BUFFER_BYTES = 8 << 20
BUFFERS = 8


def use_staging() -> bool:
    """Whether a safetensors recording writes through a writer thread: ``NUMTRACE_WRITER_THREAD=1``.

    Off by default: on the 2-core machine of benchmarks/README.md it was slower than writing in
    the forward, with the forward on both cores and with a core left free (a ``pwrite`` beside a
    running forward moved 155 MB at a fifth of the speed of one made in the forward).
    """
    return os.environ.get("NUMTRACE_WRITER_THREAD", "").strip().lower() in ("1", "true", "yes", "on")


class StagedWrites:
    """Positioned writes to ``fd`` of copies of the data, by one background thread."""

    def __init__(self, fd: int, buffer_bytes: int = BUFFER_BYTES, buffers: int = BUFFERS) -> None:
        self._fd = fd
        self._size = max(1, int(buffer_bytes))
        self._free: queue.Queue = queue.Queue()
        for _ in range(max(1, int(buffers))):
            self._free.put(np.empty(self._size, np.uint8))
        self._todo: queue.Queue = queue.Queue()
        self._error: OSError | None = None
        self._closed = False
        #: bytes copied, and seconds the program spent copying and waiting for a free buffer
        self.copied, self.copy_s, self.wait_s = 0, 0.0, 0.0
        #: seconds the writer thread spent in pwrite
        self.write_s = 0.0
        self._thread = threading.Thread(target=self._run, name="numtrace-writer", daemon=True)
        self._thread.start()

    def write(self, data: np.ndarray, position: int) -> None:
        """Copy ``data`` (contiguous) and have it written at byte ``position``; returns before the write."""
        self._check()
        flat = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        for first in range(0, flat.size, self._size):
            part = flat[first : first + self._size]
            start = time.perf_counter()
            buffer = self._free.get()
            copying = time.perf_counter()
            np.copyto(buffer[: part.size], part)
            self.wait_s += copying - start
            self.copy_s += time.perf_counter() - copying
            self.copied += part.size
            self._todo.put((buffer, part.size, position + first))

    def drain(self) -> None:
        """Wait until everything handed over is written; raises the writer thread's error, if any."""
        self._todo.join()
        self._raise_error()

    def close(self) -> None:
        """:meth:`drain`, then stop the writer thread (again: nothing)."""
        if self._closed:
            return
        try:
            self._todo.join()
        finally:
            self._closed = True
            self._todo.put(None)
            self._thread.join()
        self._raise_error()

    def _check(self) -> None:
        self._raise_error()
        if self._closed:
            raise ValueError("staged writes are closed")

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            item = self._todo.get()
            if item is None:
                self._todo.task_done()
                return
            buffer, count, position = item
            try:
                if self._error is None:
                    start = time.perf_counter()
                    _pwrite_all(self._fd, memoryview(buffer)[:count], position)
                    self.write_s += time.perf_counter() - start
            except OSError as err:
                self._error = err
            finally:
                self._free.put(buffer)
                self._todo.task_done()


def _pwrite_all(fd: int, view: memoryview, position: int) -> None:
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], position + done)
