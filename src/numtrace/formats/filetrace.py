"""What the file readers share: a trace whose stages are entries of an index built on open.

A reader subclass fills ``self._entries`` (name -> (location, StageInfo)), ``order``,
``has_order`` and ``metadata`` while opening, and implements ``_raw_chunks`` (the stored bits of
one entry, flat, in chunks) and ``close``. Names, labels, error prefixes, lookups and the decoding
of stored bits into values live here once.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import StageInfo
    >>> class Listed(FileTrace):
    ...     def __init__(self, arrays):
    ...         self._start("listed.bin", "reference trace")
    ...         self._entries = {k: (v, StageInfo(k, v.shape, "float32")) for k, v in arrays.items()}
    ...         self.order, self.has_order, self.metadata = list(arrays), True, {}
    ...     def _raw_chunks(self, where, info, step):
    ...         flat = where.reshape(-1)
    ...         return (flat[i:i + step] for i in range(0, flat.size, step))
    ...     def close(self): pass
    >>> t = Listed({"x": np.arange(5, dtype=np.float32)})
    >>> [c.tolist() for c in t.iter_chunks("x", 2)], t.info("x").shape
    ([[0.0, 1.0], [2.0, 3.0], [4.0]], (5,))
    >>> t.info("y")
    Traceback (most recent call last):
    ...
    KeyError: "listed.bin has no stage 'y'"
    >>> t._fail("is broken")
    TraceFileError("reference trace 'listed.bin': is broken")
"""

from __future__ import annotations

import os
from typing import Generic, Iterator, TypeVar

import numpy as np

from ..errors import TraceFileError
from ..trace import StageInfo, Trace
from .common import decode

#: where a reader finds an entry's stored bits (an offset, a dataset...)
Where = TypeVar("Where")


class FileTrace(Trace, Generic[Where]):
    """A trace read lazily from one file through an index of its stages."""

    _entries: dict[str, tuple[Where, StageInfo]]

    def _start(self, path: "str | os.PathLike[str]", role: str) -> None:
        self.path = self.label = os.fspath(path)
        self.role = role
        self._prefix = f"{role} {self.path!r}"

    def info(self, name: str) -> StageInfo:
        return self._lookup(name)[1]

    def iter_raw_chunks(self, name: str, max_elements: int) -> Iterator[np.ndarray]:
        """The stage's stored bits (``dtypes.storage_dtype``), flat, in chunks of at most ``max_elements``."""
        where, info = self._lookup(name)
        return self._raw_chunks(where, info, max(1, int(max_elements)))

    def iter_chunks(self, name: str, max_elements: int) -> Iterator[np.ndarray]:
        dtype = self.info(name).dtype
        return (decode(raw, dtype) for raw in self.iter_raw_chunks(name, max_elements))

    def _raw_chunks(self, where: Where, info: StageInfo, step: int) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def _lookup(self, name: str) -> tuple[Where, StageInfo]:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"{self.label} has no stage {name!r}") from None

    def _fail(self, why: str) -> TraceFileError:
        return TraceFileError(f"{self._prefix}: {why}")
