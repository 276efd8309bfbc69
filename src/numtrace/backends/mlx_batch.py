"""How MLX module outputs are recorded: batched evaluation, snapshots, and what ``mx.compile`` allows.

MLX arrays are lazy, so a module's output is a graph node when the module
returns. Converting each capture as it comes would evaluate the graph piece
by piece (one ``mx.eval`` per module). Instead the outermost captured call of
a forward opens a **batch**:

1. While it runs, every capture goes into the batch, in execution order,
   with its scope: module outputs (and inputs, and weights), and also
   explicit ``numtrace.tap`` calls made inside the forward. For that, the
   batch puts a small proxy on top of the tracer's stack of active
   recordings, so module captures and explicit taps keep their order. MLX
   arrays are *not* immutable from Python (``x += y`` and ``x[0] = 5``
   update the array object in place: mlx-whisper's blocks do it to the
   previous block's output), so the batch never holds the program's array
   but a snapshot of it (:func:`snapshot`: a new graph node, no copy); a tap
   of a mutable array of another framework (NumPy) first writes what is
   pending, then is recorded at once.
2. When the outermost call returns, the whole batch is evaluated with **one**
   ``mx.eval(output, captures)`` and handed to the recording through
   ``Recording.tap``: names, call indices, include/exclude globs and scopes
   are exactly those of every other backend. Each top-level call is its own
   batch, so a loop calling the model once per step (a solver, a decoder)
   evaluates and releases every step: graphs stay bounded.
3. If the forward raises, what was captured before the error is still
   evaluated and written (a crashed run keeps its partial trace), and the
   error propagates unchanged.

``mx.compile`` and ``mx.vmap`` run the Python body only while tracing, on
placeholders that can never be evaluated. Zero-edit capture
(:mod:`numtrace.backends.mlx_capture`) makes the captures of functions compiled
while it is active extra compiled outputs, recorded on every call. Anywhere
else the captures are dropped with one line on stderr: placeholders are
never recorded.

Naming (``Site``) follows the torch backend: a root's inputs are ``input``,
other modules' ``<stage>.input``; a tuple output whose keys would meet a
child's path goes under ``<stage>.output``.

Example:
    >>> import mlx.core as mx, mlx.nn as nn, numtrace
    >>> m = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    >>> with numtrace.record() as rec, numtrace.watch(m):
    ...     for _ in range(2):
    ...         _ = m(mx.ones((1, 3)))
    >>> rec.trace.order[-3:]
    ['layers.0@1', 'layers.1@1', 'output@1']
"""

from __future__ import annotations

import threading
from typing import Any

import mlx.core as mx
import numpy as np

from .. import tracer
from ..errors import TapError, warn_once
from .naming import ModuleSite, input_value

#: marks the classes that ``numtrace.watch`` generates (zero-edit capture leaves them alone)
GENERATED = "_numtrace_watch_class"
#: the tracer's stack of active recordings (tested for emptiness on every call: the fast path)
ACTIVE = tracer.ACTIVE


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.stack: list[tuple[Any, Any]] = []  # (module, zero-edit root or None) per captured call
        self.sink: Any = None  # where captures go now: a Batch, a compiled function's captures, or None


STATE = _ThreadState()


def say(key: str, message: str) -> None:
    """A :class:`~numtrace.errors.NumtraceWarning` once per ``key`` (``trace run``: one line on stderr)."""
    warn_once(key, message, stacklevel=4)


def module_paths(root: Any) -> list[tuple[str, Any]]:
    """``(dotted path, module)`` for ``root`` ('') and every submodule, pre-order, in definition
    order; a module reachable by two paths keeps the first (as torch's ``named_modules``)."""
    from mlx.nn import Module
    from mlx.utils import tree_flatten

    seen: set[int] = set()
    out = []
    pending = [("", root)]
    while pending:
        path, module = pending.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        out.append((path, module))
        children = tree_flatten(module.children(), is_leaf=Module.is_module)
        pending.extend((f"{path}.{key}" if path else key, child) for key, child in reversed(children))
    return out


class Site(ModuleSite):
    """One module's place in a trace: its names (:class:`~numtrace.backends.naming.ModuleSite`), and
    whether inputs/output are recorded."""

    __slots__ = ("inputs", "record_output")

    def __init__(self, prefix: str, path: str, module: Any, inputs: bool = False, record_output: bool = True) -> None:
        super().__init__(prefix, path, _child_names(module))
        self.inputs = inputs
        self.record_output = record_output

    def output_name(self, output: Any, leaves: list) -> str:
        """The stage the output (flattened to ``leaves``) is recorded under."""
        return self.output_for(key for key, _ in leaves)


def _child_names(module: Any) -> frozenset:
    """Names an output key must not take: children, and ``N`` for ``layers.N`` (torch's spelling)."""
    from mlx.nn import Module
    from mlx.utils import tree_flatten

    paths = [key for key, _ in tree_flatten(module.children(), is_leaf=Module.is_module)]
    return frozenset([p.split(".", 1)[0] for p in paths] + [p.split(".")[1] for p in paths if p.startswith("layers.")])


def mlx_leaves(value: Any) -> list[Any]:
    return [leaf for _, leaf in tracer.flatten(value) if isinstance(leaf, mx.array)]


def replay(target: Any, scope: str, name: str, value: Any) -> None:
    """``target.tap(name, value)`` as if tapped inside ``scope``; a refusal is said, not raised."""
    with tracer.at_scope(scope):
        try:
            target.tap(name, value)
        except TapError as error:
            say(f"refused:{name}", f"stage {name!r} not recorded: {error}")


class Proxy:
    """Stands in for the active recording while a sink collects: ``numtrace.tap`` lands in the sink."""

    def __init__(self, sink: Any, target: Any) -> None:
        self._sink, self._target, self._thread = sink, target, threading.get_ident()

    def tap(self, name: str, x: Any) -> Any:
        if threading.get_ident() != self._thread:
            return self._target.tap(name, x)
        if not isinstance(name, str) or not name:
            raise TapError(f"a stage name must be a non-empty string, got {name!r}")
        leaves = tracer.flatten(x)
        if not leaves:
            raise TapError(f"cannot record stage {name!r}: a {type(x).__qualname__} holds no array numtrace can record")
        self._sink.add(tracer.current_scope(), name, x, leaves)
        return x

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._target, attr)


def push(sink: Any) -> Proxy:
    proxy = Proxy(sink, ACTIVE[-1])
    tracer.push_stand_in(proxy)
    return proxy


def pop(proxy: Proxy) -> None:
    tracer.remove_stand_in(proxy)


def recording() -> Any:
    """The real active recording (under any proxies), or None."""
    target = ACTIVE[-1] if ACTIVE else None
    while isinstance(target, Proxy):
        target = target._target
    return target


def snapshot(leaves: list) -> tuple[Any, list]:
    """``(value, leaves)`` holding each MLX array as it is now, whatever the program does to it later.

    ``x += y`` rebinds the array object ``x`` to a new graph node, so a held
    ``x`` would later read the sum; ``mx.stop_gradient(x)`` is a node of its
    own that keeps the value at this moment and shares ``x``'s buffer when
    evaluated (no copy). The value flattens to the same keys as the original.

    Example:
        >>> x = mx.array([1.0, 2.0])
        >>> value, _ = snapshot([("", x)])
        >>> x += 10
        >>> value.tolist(), x.tolist()
        ([1.0, 2.0], [11.0, 12.0])
    """
    held = [(key, mx.stop_gradient(leaf) if isinstance(leaf, mx.array) else leaf) for key, leaf in leaves]
    return (held[0][1] if len(held) == 1 else dict(held)), held


class Batch:
    """The captures of one outermost call, evaluated together with its output (module docstring)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, Any, list]] = []
        self.proxy = push(self)
        self.target = self.proxy._target

    def add(self, scope: str, name: str, value: Any, leaves: list) -> None:
        if all(isinstance(leaf, (mx.array, bool, int, float, complex, np.generic)) for _, leaf in leaves):
            self.items.append((scope, name, *snapshot(leaves)))
        else:
            self.flush([])
            replay(self.target, scope, name, value)

    def close(self, output: Any, failed: bool) -> None:
        pop(self.proxy)
        try:
            self.flush([] if failed else mlx_leaves(output))
        except Exception as error:  # never mask the forward's own error
            if not failed:
                raise
            say("partial", f"could not write the captures of a failed forward: {error}")

    def flush(self, outputs: list) -> None:
        items, self.items = self.items, []
        if not items:
            return
        arrays = [leaf for *_, leaves in items for _, leaf in leaves if isinstance(leaf, mx.array)]
        try:
            mx.eval(outputs, arrays)
        except Exception as error:
            if "transformation" in str(error):
                say(
                    "transform",
                    "MLX module outputs inside mx.compile or mx.vmap cannot be recorded (the Python "
                    "body runs only while tracing, on placeholders): not recorded. Call the model uncompiled, or "
                    "run the script with `trace run --backend mlx`, which records functions compiled while it runs",
                )
                return
            # Keep what evaluates; the output's own error reaches the program when it evaluates it.
            items = [item for item in items if _evaluates(item[3])]
        for scope, name, value, _ in items:
            replay(self.target, scope, name, value)


def _evaluates(leaves: list) -> bool:
    try:
        mx.eval([leaf for _, leaf in leaves if isinstance(leaf, mx.array)])
        return True
    except Exception:
        return False


def run_captured(
    module: Any, call: Any, args: tuple, kwargs: dict, sites: tuple, root: Any = None, pre: list | None = None
) -> Any:
    """``call(module, *args, **kwargs)``, recording inputs/output for each :class:`Site`.

    The outermost captured call opens the batch; ``pre`` holds ``(name, value)`` pairs recorded
    before the call (weights); ``root`` is the zero-edit root the call belongs to (None for watch).
    """
    state = STATE
    own = Batch() if state.sink is None else None
    if own is not None:
        state.sink = own
    state.stack.append((module, root))
    failed, output = True, None
    try:
        sink, scope = state.sink, tracer.current_scope()
        for name, value in pre or ():
            sink.add(scope, name, value, tracer.flatten(value))
        for site in sites:
            if site.inputs:
                value = input_value(args, kwargs)
                leaves = tracer.flatten(value)
                if leaves:
                    sink.add(scope, site.input_stage, value, leaves)
        output = call(module, *args, **kwargs)
        leaves = tracer.flatten(output) if output is not None else []
        if leaves:
            for site in sites:
                if site.record_output:
                    sink.add(scope, site.output_name(output, leaves), output, leaves)
        failed = False
        return output
    finally:
        state.stack.pop()
        if own is not None:
            state.sink = None
            own.close(output, failed)


def weights_of(model: Any) -> list[tuple[str, Any]]:
    """``(name, array)`` of every parameter, as ``load_weights`` names them (tied ones once)."""
    from mlx.utils import tree_flatten

    seen: set[int] = set()
    out = []
    for name, array in tree_flatten(model.parameters()):
        if id(array) not in seen:
            seen.add(id(array))
            out.append((name, array))
    return out
