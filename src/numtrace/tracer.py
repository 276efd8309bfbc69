"""The recording session: ``tap``, ``record``, ``scope`` and call indices.

``tap(name, x)`` records ``x`` into the innermost active recording and returns
``x`` unchanged; with no recording active it returns at once (no copy, no
conversion). Names are prefixed by the enclosing ``scope``s, joined with
``.``. A name tapped again in one recording gets a call index: the first call
keeps the bare name, later calls are ``name@1``, ``name@2``... (``@`` never
appears in module paths or flattened output keys, so it cannot collide).

Example:
    >>> import numpy as np, numtrace
    >>> with numtrace.record() as rec:            # in memory; pass a path to write a file
    ...     with numtrace.scope("ode"):
    ...         for _ in range(3):
    ...             _ = numtrace.tap("step", np.zeros(2))
    >>> rec.trace.order
    ['ode.step', 'ode.step@1', 'ode.step@2']
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime
import json
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from . import backends, distributed
from ._version import __version__
from .errors import RecordingError, TapError
from .formats import load, open_writer
from .probes import StageFilter
from .trace import MemoryTrace, Trace

CALL_INDEX_SEPARATOR = "@"

_active: list["Recording"] = []
_scope: contextvars.ContextVar[str] = contextvars.ContextVar("numtrace_scope", default="")
#: The stack of active recordings, for backend adapters: ``tap`` sends to ``ACTIVE[-1]`` and
#: tests the list for emptiness on every call (the fast path). An adapter that collects taps
#: itself for a while (MLX batches them into one evaluation) pushes a stand-in with
#: :func:`push_stand_in`; anything with a ``tap(name, x)`` method will do.
ACTIVE = _active


def tap(name: str, x: Any) -> Any:
    """Record ``x`` under ``name`` in the active recording; return ``x`` unchanged."""
    if _active:
        _active[-1].tap(name, x)
    return x


def is_recording() -> bool:
    """True while a recording is active (cheap: check it before building costly values)."""
    return bool(_active)


def active_recording() -> "Recording | None":
    return _active[-1] if _active else None


@contextmanager
def scope(name: str) -> Iterator[str]:
    """Prefix the names tapped inside with ``name.`` (scopes nest).

    Example:
        >>> with scope("decoder"), scope("ode"):
        ...     current_scope()
        'decoder.ode'
    """
    if not isinstance(name, str) or not name:
        raise TapError(f"a scope name must be a non-empty string, got {name!r}")
    outer = _scope.get()
    token = _scope.set(f"{outer}.{name}" if outer else name)
    try:
        yield _scope.get()
    finally:
        _scope.reset(token)


def current_scope() -> str:
    return _scope.get()


@contextmanager
def at_scope(prefix: str) -> Iterator[str]:
    """Tap as if inside ``prefix`` exactly (an adapter replaying taps where they were made).

    Example:
        >>> with scope("decoder"), at_scope("encoder.block"):
        ...     current_scope()
        'encoder.block'
    """
    if prefix == _scope.get():
        yield prefix
        return
    token = _scope.set(prefix)
    try:
        yield prefix
    finally:
        _scope.reset(token)


def push_stand_in(stand_in: Any) -> None:
    """Make ``stand_in`` receive the taps of this thread's program until :func:`remove_stand_in`."""
    _active.append(stand_in)


def remove_stand_in(stand_in: Any) -> None:
    """Remove ``stand_in`` (its topmost entry) from the stack; nothing if it is not there.

    Example:
        >>> class Collect:
        ...     def __init__(self): self.names = []
        ...     def tap(self, name, x): self.names.append(name)
        >>> c = Collect(); push_stand_in(c); _ = tap("x", 1.0); remove_stand_in(c)
        >>> c.names, is_recording()
        (['x'], False)
    """
    for i in range(len(_active) - 1, -1, -1):
        if _active[i] is stand_in:
            del _active[i]
            return


def flatten(value: Any) -> list[tuple[str, Any]]:
    """The arrays inside ``value`` with their key paths, as the trace format says (docs/trace-format.md).

    Tuples and lists give ``0``, ``1``...; dicts their keys; dataclasses their
    fields; anything that is neither an array nor a number (None, strings)
    is skipped.

    Example:
        >>> flatten((np.zeros(1), {"h": np.ones(1), "n": None}))[1][0]
        '1.h'
    """
    if backends.is_array(value):
        return [("", value)]
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, (tuple, list)):
        items = [(str(i), v) for i, v in enumerate(value)]
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    else:
        return []
    leaves: list[tuple[str, Any]] = []
    for key, item in items:
        leaves.extend((f"{key}.{sub}" if sub else key, leaf) for sub, leaf in flatten(item))
    return leaves


class Recording:
    """An active-or-finished recording of tapped stages.

    ``path=None`` keeps the stages in memory (``rec.trace`` after it stops);
    otherwise each stage is written to disk as it is tapped and the file is
    completed atomically when the recording stops, also after an exception,
    so a crashed run keeps everything it tapped.

    ``stats=True`` records a sketch of each stage instead of its values
    (statistics, per-channel means along ``stats_axis``, a hash of the bytes;
    see :mod:`numtrace.compare.sketches.format`): a whole long run traced cheaply, compared by
    ``trace diff`` sketch against sketch (or against a full trace).

    In a run of several ranks (``torchrun``, ``mlx.launch``: :mod:`numtrace.distributed`) the
    trace is ``PATH`` with the rank before its extension (``tp.rank1.safetensors``), and its
    metadata says ``numtrace.rank``, ``numtrace.world_size`` and ``numtrace.launcher``.

    Example:
        >>> rec = Recording(backend="numpy").start()
        >>> _ = tap("x", 1.5)
        >>> rec.stop().read("x").item()
        1.5
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        backend: str = "numpy",
        metadata: Mapping[str, Any] | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        max_calls: int | None = None,
        context: Mapping[str, str] | None = None,
        stats: bool = False,
        stats_axis: int | None = None,
    ) -> None:
        if backend not in backends.names():
            raise RecordingError(f"unknown backend {backend!r}; choose one of {', '.join(backends.names())}")
        if max_calls is not None and max_calls < 1:
            raise RecordingError(f"max_calls must be at least 1, got {max_calls}")
        self.path = os.fspath(path) if path is not None else None
        self.backend = backend
        self.metadata: dict[str, str] = {}
        for key, value in (metadata or {}).items():
            self.set_metadata(key, value)
        self.filter = StageFilter(include, exclude)
        self.max_calls = max_calls
        if stats_axis is not None and (isinstance(stats_axis, bool) or not isinstance(stats_axis, int)):
            raise RecordingError(f"stats_axis must be an integer axis or None, got {stats_axis!r}")
        self.stats, self.stats_axis = bool(stats), stats_axis
        self._sketches: dict[str, str] = {}  # stats mode: numtrace.sketch.<stage> -> the sketch's JSON
        self.status = "complete"
        self._internal = {f"numtrace.{key}": value for key, value in (context or {}).items()}
        self.path, ranked = distributed.per_rank(self.path)  # one trace per rank, each written by its own process
        self._internal.update(ranked)
        self._calls: dict[str, int] = {}
        self._names: list[str] = []
        self._taken: set[str] = set()
        self._memory: dict[str, tuple[np.ndarray, str]] = {}
        self._writer = None
        self._lock = threading.RLock()
        self._state = "new"
        #: bytes of values recorded so far, and ``on_stage(stage, stages, nbytes)``, called after each stage
        #: (``trace run``'s progress bar)
        self.nbytes = 0
        self.on_stage: Callable[[str, int, int], None] | None = None
        self.trace: Trace | None = None
        #: after :meth:`stop`, where a safetensors recording's write time went (``copy_s``, ``wait_s``,
        #: ``write_s``: :attr:`numtrace.formats.safetensors.SafetensorsWriter.timings`); None otherwise
        self.write_timings: dict[str, float] | None = None

    def set_metadata(self, key: str, value: Any) -> None:
        """Attach user metadata (strings; other values are stored as JSON)."""
        if not isinstance(key, str) or key.startswith("numtrace."):
            raise RecordingError(f"metadata key {key!r} is not allowed: keys starting with 'numtrace.' are reserved")
        self.metadata[key] = value if isinstance(value, str) else json.dumps(value, default=str)

    @property
    def names(self) -> list[str]:
        """Stage names recorded so far, in order."""
        return list(self._names)

    def set_context(self, key: str, value: Any) -> None:
        """numtrace-owned metadata (``numtrace.<key>``), such as what a replay did."""
        self._internal[f"numtrace.{key}"] = value if isinstance(value, str) else json.dumps(value, default=str)

    def start(self, active: bool = True) -> "Recording":
        """Begin; ``active=False``: only what is tapped into this recording by its own ``tap``
        method is recorded (a replay's), ``numtrace.tap`` does not reach it."""
        if self._state != "new":
            raise RecordingError("a recording can be started only once; create a new one")
        if self.path is not None:
            self._writer = open_writer(self.path)
        self._internal.update(
            {
                "numtrace.version": __version__,
                "numtrace.backend": self.backend,
                "numtrace.created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            }
        )
        self._pid = os.getpid()
        self._state = "active"
        if active:
            _active.append(self)
        return self

    def stop(self, status: str | None = None) -> Trace:
        """Finish: write the trace (atomically) or build the in-memory one; return it."""
        if self._state != "active":
            raise RecordingError(f"cannot stop a recording that is {self._state}")
        if self in _active:
            _active.remove(self)
        self._state = "stopped"
        if status is not None:
            self.status = status
        if "numtrace.rank" in self._internal and "numtrace.dist_backend" not in self._internal:
            self._internal.update(distributed.backend_metadata())
        metadata = {
            **self.metadata,
            **self._internal,
            "numtrace.status": self.status,
            "numtrace.frameworks": json.dumps(backends.framework_versions()),
        }
        if self.stats:
            from .compare.sketches.format import SKETCH_KEY, SKETCH_VERSION

            metadata.update({SKETCH_KEY: SKETCH_VERSION, **self._sketches})
        if self._writer is not None:
            self._writer.close(order=self._names, metadata=metadata)
            self.write_timings = getattr(self._writer, "timings", None)
            self.trace = load(self.path)
        else:
            self.trace = MemoryTrace(self._memory, order=self._names, metadata=metadata)
        return self.trace

    def tap(self, name: str, x: Any) -> Any:
        """Record ``x`` under ``name`` (scoped, call-indexed) in this recording."""
        if self._state != "active":
            raise RecordingError(f"cannot tap {name!r}: the recording is {self._state}")
        if os.getpid() != self._pid:
            # A forked child (a DataLoader worker) shares the parent's open temp file:
            # writing there would corrupt the trace, so its taps are not recorded.
            return x
        if not isinstance(name, str) or not name:
            raise TapError(f"a stage name must be a non-empty string, got {name!r}")
        prefix = _scope.get()
        full = f"{prefix}.{name}" if prefix else name
        leaves = flatten(x)
        if not leaves:
            raise TapError(
                f"cannot record stage {full!r}: a {type(x).__qualname__} holds no array numtrace can record "
                "(NumPy arrays, Python numbers, and torch or mlx arrays with their backends)"
            )
        with self._lock:
            call = self._calls.get(full, 0)
            self._calls[full] = call + 1
            if self.max_calls is not None and call >= self.max_calls:
                return x
            stage = full if call == 0 else f"{full}{CALL_INDEX_SEPARATOR}{call}"
            if not self.filter.is_everything and not self.filter(stage, full):
                return x
            for key, leaf in leaves:
                self._add(f"{stage}.{key}" if key and len(leaves) > 1 else stage, leaf)
        return x

    def _add(self, stage: str, leaf: Any) -> None:
        if stage in self._taken or stage == "__metadata__":
            raise TapError(f"stage {stage!r} was already recorded; give it another name")
        values, dtype = backends.to_numpy(leaf)
        if self.stats:  # a sketch instead of the values: channel means as the tensor, the rest as metadata
            from .compare.sketches.format import STAGE_PREFIX, encode_info, make_sketch

            values, info = make_sketch(values, dtype, self.stats_axis)
            self._sketches[STAGE_PREFIX + stage], dtype = encode_info(info), "float64"
        if self._writer is not None:
            self._writer.add(stage, values, dtype)
        else:
            self._memory[stage] = (np.array(values, copy=True), dtype)
        self._taken.add(stage)
        self._names.append(stage)
        if "numtrace.rank" in self._internal and "numtrace.dist_backend" not in self._internal:
            self._internal.update(distributed.backend_metadata())  # while the process group is up
        self.nbytes += int(getattr(values, "nbytes", 0))
        if self.on_stage is not None:
            self.on_stage(stage, len(self._names), self.nbytes)

    def __enter__(self) -> "Recording":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        status = None if exc_type is None else f"error: {exc_type.__name__}: {exc}"
        self.stop(status)

    def __repr__(self) -> str:
        return f"<Recording {self.path or '<memory>'} {self._state}, {len(self._names)} stages>"


def record(path: str | os.PathLike | None = None, **options: Any) -> Recording:
    """A recording to use as ``with numtrace.record("out.safetensors") as rec:``.

    Options: ``backend``, ``metadata``, ``include``/``exclude`` globs,
    ``max_calls`` (per stage name), ``context`` (numtrace-owned metadata
    such as the command line of ``trace run``, stored as ``numtrace.<key>``),
    ``stats``/``stats_axis`` (record sketches, not values).
    See :class:`Recording`.
    """
    return Recording(path, **options)
