"""MLX backend: the array adapter, ``numtrace.watch`` for ``mlx.nn.Module``, and zero-edit capture.

**Arrays.** MLX arrays convert to NumPy through the buffer protocol (no
copy); bfloat16 arrays keep ``"bfloat16"`` as their recorded dtype and are
held as exact float32 values (their raw bits are read through the buffer,
so no extra MLX op is evaluated).

**Watching.** MLX modules have no hooks and ``__call__`` is looked up on the
class, so an instance cannot be patched and patching the class would touch
every instance. ``watch`` instead gives each selected module instance its
own generated subclass (same name, same module) whose ``__call__`` records
the output and calls the original: parameter names, ``isinstance``,
``parameters()``, ``load_weights`` and ``update`` are unchanged, and
``detach()`` puts the original classes back (also when the forward raised).
Watching an instance twice stacks the two watches on one generated class.

**Laziness.** Captured outputs are graph nodes. They are not evaluated one by
one: everything recorded during the outermost watched call (module outputs,
inputs, and explicit ``numtrace.tap`` calls made inside it, kept in order) is
evaluated in one ``mx.eval`` together with that call's output, then written.
See :mod:`numtrace.backends.mlx_batch` for the details and for
``mx.compile``.

Example:
    >>> import mlx.core as mx, mlx.nn as nn, numtrace
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> with numtrace.record() as rec, numtrace.watch(model):
    ...     y = model(mx.ones((1, 4)))
    >>> rec.trace.order
    ['layers.0', 'layers.1', 'layers.2', 'output']
    >>> type(model).__name__, type(model) is nn.Sequential
    ('Sequential', True)
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

import numpy as np

from .. import tracer
from ..errors import TapError
from ..probes import StageFilter
from ..watch import Watch
from . import mlx_batch
from .mlx_batch import GENERATED, Site, module_paths, run_captured, weights_of
from .naming import stage_name

__all__ = ["ADAPTER", "watches", "watch", "capture"]

_NAMES = {
    "bool_": "bool",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "float32": "float32",
    "float64": "float64",
    "complex64": "complex64",
}


class MlxAdapter:
    name = "mlx"

    def __init__(self) -> None:
        self._dtypes: dict | None = None

    def handles(self, x: Any) -> bool:
        mx = sys.modules.get("mlx.core")
        return mx is not None and isinstance(x, mx.array)

    def to_numpy(self, x: Any) -> tuple[np.ndarray, str]:
        import mlx.core as mx

        if self._dtypes is None:
            self._dtypes = {getattr(mx, attr): name for attr, name in _NAMES.items() if hasattr(mx, attr)}
        name = self._dtypes.get(x.dtype)
        if name is None:
            raise TapError(f"cannot record an MLX array of dtype {x.dtype}")
        if name != "bfloat16":
            return np.asarray(x), name
        view = memoryview(x)  # evaluates x if it is still lazy
        if view.c_contiguous:
            bits = np.frombuffer(view.cast("B"), dtype=np.uint16).reshape(view.shape)
            return (bits.astype(np.uint32) << 16).view(np.float32), name
        return np.asarray(x.astype(mx.float32)), name  # a strided view: exact, one small op

    def version(self) -> str:
        import mlx.core as mx

        return mx.__version__  # type: ignore[attr-defined]  # set at run time, absent from mlx's stubs


ADAPTER = MlxAdapter()


class _WatchState:
    def __init__(self, model: Any, prefix: str, selected: StageFilter, weights: bool) -> None:
        self.attached = True
        self._weights = (model, prefix, selected) if weights else None
        self._done: weakref.WeakSet = weakref.WeakSet()

    def weights(self) -> list[tuple[str, Any]]:
        """The selected weights, once per recording (at attach time, or on the first call in it)."""
        if self._weights is None:
            return []
        rec = mlx_batch.recording()
        if rec is None or rec in self._done:
            return []
        self._done.add(rec)
        model, prefix, selected = self._weights
        return [(stage_name(prefix, name), p) for name, p in weights_of(model) if selected(stage_name(prefix, name))]


def _watched_call(self, *args: Any, **kwargs: Any) -> Any:
    cls = type(self)
    call = cls._numtrace_base.__call__
    if not mlx_batch.ACTIVE:
        return call(self, *args, **kwargs)
    sites, pre = [], []
    for state, site in cls._numtrace_entries:
        if state.attached:
            sites.append(site)
            pre.extend(state.weights())
    if not sites:
        return call(self, *args, **kwargs)
    return run_captured(self, call, args, kwargs, tuple(sites), None, pre)


def _generated_class(module: Any) -> type:
    """The watch class of ``module``, generated and installed on first use."""
    cls = type(module)
    if GENERATED in cls.__dict__:
        return cls
    namespace = {
        "__call__": _watched_call,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        GENERATED: True,
        "_numtrace_base": cls,
        "_numtrace_entries": [],
    }
    watched = type(cls.__name__, (cls,), namespace)
    module.__class__ = watched
    return watched


def _release(module: Any, entry: tuple) -> None:
    cls = type(module)
    entries = cls.__dict__.get("_numtrace_entries")
    if entries is None:
        return
    if entry in entries:
        entries.remove(entry)
    if not entries:
        module.__class__ = cls._numtrace_base


def capture(include: list[str] | None = None, **options: Any) -> Any:
    """Zero-edit capture for ``trace run --backend mlx``; see :mod:`numtrace.backends.mlx_capture`."""
    from .mlx_capture import capture as start

    return start(include, **options)


def watches(model: Any) -> bool:
    nn = sys.modules.get("mlx.nn")
    return nn is not None and isinstance(model, nn.Module)


def watch(
    model: Any,
    *,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    inputs: bool = False,
    weights: bool = False,
    prefix: str = "",
) -> Watch:
    """Record the output of every selected module of ``model`` (see :func:`numtrace.watch`).

    Example:
        >>> import mlx.core as mx, mlx.nn as nn, numtrace
        >>> m = nn.Sequential(nn.Linear(2, 2), nn.GELU())
        >>> with numtrace.record() as rec, numtrace.watch(m, include=["*.1"], prefix="mlp"):
        ...     _ = m(mx.ones((1, 2)))
        >>> rec.trace.order
        ['mlp.layers.1']
    """
    import mlx.core as mx

    selected = StageFilter(include, exclude)
    state = _WatchState(model, prefix, selected, weights)
    attached: list[tuple[Any, tuple]] = []

    def detach() -> None:
        state.attached = False
        while attached:
            module, entry = attached.pop()
            _release(module, entry)

    stages = []
    try:
        for path, module in module_paths(model):
            stage = stage_name(prefix, path)
            if not selected(stage):
                continue
            entry = (state, Site(prefix, path, module, inputs))
            _generated_class(module)._numtrace_entries.append(entry)  # type: ignore[attr-defined]  # generated class
            attached.append((module, entry))
            stages.append(stage)
        if weights and tracer.is_recording():
            taps = state.weights()
            mx.eval([p for _, p in taps])
            for name, p in taps:
                tracer.tap(name, p)
    except BaseException:
        detach()
        raise
    return Watch(model, detach, stages)
