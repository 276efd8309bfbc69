"""The trace: named stages in execution order, read lazily, stage by stage.

A trace is a safetensors file (``.safetensors``/``.st``) or an HDF5 file
(``.h5``/``.hdf5``) holding one tensor per stage, plus metadata. Opening a
trace reads only its header; :meth:`Trace.read` and :meth:`Trace.iter_chunks`
read one stage at a time, so no command ever holds a whole trace in memory.

Reading and writing files is :mod:`numtrace.formats` (``load``, ``save``,
``open_writer``, ``convert``; ``numtrace.load`` and ``numtrace.save``).

Example:
    >>> import numpy as np, tempfile, os
    >>> from numtrace.formats import load, save
    >>> path = os.path.join(tempfile.mkdtemp(), "t.safetensors")
    >>> _ = save(path, {"step.10": np.ones(3), "step.2": np.zeros(2)})
    >>> with load(path) as t:
    ...     t.order, t.info("step.2").shape, t.read("step.10").tolist()
    (['step.10', 'step.2'], (2,), [1.0, 1.0, 1.0])
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Iterator, Mapping, TypeVar

import numpy as np

from . import dtypes
from .errors import TraceFileError

ORDER_KEY = "numtrace.order"
FORMAT_KEY = "numtrace.format"
FORMAT_VERSION = "1"
SAFETENSORS_SUFFIXES = (".safetensors", ".st")
HDF5_SUFFIXES = (".h5", ".hdf5")


@dataclass(frozen=True)
class StageInfo:
    """What the header says about one stage, without reading its data."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # recorded dtype name, e.g. "bfloat16"

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * dtypes.itemsize(self.dtype)


_Trace = TypeVar("_Trace", bound="Trace")


class Trace:
    """Read access to a trace. Subclasses implement ``_info`` and ``_read_flat``.

    ``order`` is the execution order: ``numtrace.order`` when the writer stored
    it (``has_order`` is then True), else the natural sort of the names.
    """

    label: str
    order: list[str]
    has_order: bool
    metadata: dict[str, str]

    def info(self, name: str) -> StageInfo:
        """Shape and recorded dtype of a stage; KeyError names the trace if absent."""
        raise NotImplementedError

    def read(self, name: str) -> np.ndarray:
        """The whole stage as a value array (bfloat16/float8 decoded to float32)."""
        info = self.info(name)
        chunks = list(self.iter_chunks(name, max(info.size, 1)))
        flat = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        return flat.reshape(info.shape)

    def read_many(self, names: list[str]) -> list[np.ndarray]:
        """Several whole stages, as :meth:`read` gives each (a file reader fetches neighbours at once)."""
        return [self.read(name) for name in names]

    def iter_chunks(self, name: str, max_elements: int) -> Iterator[np.ndarray]:
        """The stage's values, flattened in C order, in chunks of at most ``max_elements``.

        Always yields at least one chunk (an empty one for a zero-size stage).
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release the file handle (reads afterwards reopen nothing and fail)."""

    @property
    def user_metadata(self) -> dict[str, str]:
        """Metadata keys that are not numtrace's own (``numtrace.*``)."""
        return {k: v for k, v in self.metadata.items() if not k.startswith("numtrace.")}

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)

    def __enter__(self: _Trace) -> _Trace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label!r}: {len(self)} stages>"

    def _names(self) -> set[str]:
        names = getattr(self, "_name_set", None)
        if names is None:
            names = self._name_set = set(self.order)
        return names


def natural_key(name: str) -> tuple:
    """Sort key that puts ``step.2`` before ``step.10``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part)


def natural_sorted(names) -> list[str]:
    return sorted(names, key=natural_key)


def resolve_order(metadata: Mapping[str, str], names: list[str], label: str) -> tuple[list[str], bool]:
    """Execution order from ``numtrace.order`` if present and valid, else natural sort.

    Names in the file but missing from the stored order are appended in natural
    order; names in the order but not in the file are an error (a corrupt trace).
    """
    raw = metadata.get(ORDER_KEY)
    if raw is None:
        return natural_sorted(names), False
    try:
        order = json.loads(raw)
    except ValueError:
        raise TraceFileError(f"{label}: metadata {ORDER_KEY!r} is not valid JSON") from None
    if not isinstance(order, list) or not all(isinstance(n, str) for n in order):
        raise TraceFileError(f"{label}: metadata {ORDER_KEY!r} must be a JSON array of stage names")
    present = set(names)
    unknown = [n for n in order if n not in present]
    if unknown:
        raise TraceFileError(
            f"{label}: {ORDER_KEY!r} names {len(unknown)} stage(s) the file does not hold, e.g. {unknown[0]!r}"
        )
    if len(set(order)) != len(order):
        raise TraceFileError(f"{label}: {ORDER_KEY!r} lists a stage twice")
    listed = set(order)
    return order + natural_sorted(n for n in names if n not in listed), True


class MemoryTrace(Trace):
    """A trace held in memory: what an in-memory recording yields, and a test fixture.

    Stage values may be plain arrays or ``(values, recorded_dtype)`` pairs.

    Example:
        >>> t = MemoryTrace({"x": np.arange(3.0)}, metadata={"seed": "0"})
        >>> t.info("x"), t.read("x").tolist()
        (StageInfo(name='x', shape=(3,), dtype='float64'), [0.0, 1.0, 2.0])
    """

    def __init__(
        self,
        stages: Mapping[str, "np.ndarray | tuple[np.ndarray, str]"],
        order: list[str] | None = None,
        metadata: Mapping[str, str] | None = None,
        label: str = "<memory>",
    ) -> None:
        self.label = label
        self.metadata = dict(metadata or {})
        self._stages: dict[str, tuple[np.ndarray, str]] = {}
        for name, value in stages.items():
            if isinstance(value, tuple):
                values, dtype = value
            else:
                values, dtype = dtypes.to_values(np.asarray(value))
            self._stages[name] = (np.asarray(values), dtype)
        if order is not None:
            missing = set(self._stages) - set(order)
            if missing or len(order) != len(self._stages):
                raise ValueError(f"order must list every stage exactly once; missing {sorted(missing)}")
        self.order = list(order) if order is not None else list(self._stages)
        self.has_order = True  # the order it was given: ``order``, or the mapping's own (insertion) order

    def info(self, name: str) -> StageInfo:
        values, dtype = self._lookup(name)
        return StageInfo(name, tuple(values.shape), dtype)

    def iter_chunks(self, name: str, max_elements: int) -> Iterator[np.ndarray]:
        flat = self._lookup(name)[0].reshape(-1)
        if flat.size == 0:
            yield flat
            return
        for start in range(0, flat.size, max(1, max_elements)):
            yield flat[start : start + max_elements]

    def _lookup(self, name: str) -> tuple[np.ndarray, str]:
        try:
            return self._stages[name]
        except KeyError:
            raise KeyError(f"{self.label} has no stage {name!r}") from None
