"""``mx.compile`` that records: captures made while MLX traces a function become compiled outputs.

MLX runs a compiled function's Python body only while tracing it, on
placeholders; a capture taken then could never be evaluated. But MLX lets a
compiled function update a container of arrays on every call
(``mx.compile(fun, outputs=box)``). So while zero-edit capture is active,
``mx.compile`` is replaced by :func:`compile_recording`'s version: while MLX
traces ``fun``, every capture (module outputs and explicit ``numtrace.tap``
calls) goes into ``box`` with its name, in trace order; MLX then returns
their values with every call, and after each call they are evaluated
together with the call's output and recorded in that order (call indices as
usual). A retrace (new shapes) starts the list afresh. A function traced
while no recording was active records nothing later: one line says so.

Example:
    >>> import mlx.core as mx, numtrace
    >>> compile = compile_recording(mx.compile, lambda: True)
    >>> square = compile(lambda x: numtrace.tap("sq", x * x))
    >>> with numtrace.record() as rec:
    ...     _ = [square(mx.array(float(i))) for i in range(3)]
    >>> [rec.trace.read(n).item() for n in rec.trace.order]
    [0.0, 1.0, 4.0]
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import mlx.core as mx

from .. import tracer
from .mlx_batch import ACTIVE, STATE, mlx_leaves, pop, push, replay, say


class _CompiledCaptures:
    """Captures of one compiled function: names in trace order, arrays in ``box`` (refilled by MLX)."""

    def __init__(self) -> None:
        self.box: list[Any] = []
        self.entries: list[tuple[str, str, list]] = []
        self.scope = ""
        self.idle_trace = False

    def add(self, scope: str, name: str, value: Any, leaves: list) -> None:
        base = self.scope
        rel = "" if scope == base else scope[len(base) + 1 :] if base and scope.startswith(base + ".") else scope
        refs: list[tuple[str, int | None, Any]] = []
        for key, leaf in leaves:
            if isinstance(leaf, mx.array):
                refs.append((key, len(self.box), None))
                self.box.append(leaf)
            else:
                refs.append((key, None, leaf))
        self.entries.append((rel, name, refs))

    def record(self, output: Any) -> None:
        if STATE.sink is None:
            try:
                mx.eval(mlx_leaves(output), self.box)
            except Exception as error:
                if "transformation" not in str(error):
                    raise
                say(
                    "transform-compiled",
                    "a compiled function called inside mx.compile or mx.vmap: its modules are not recorded",
                )
                return
        target, base = ACTIVE[-1], tracer.current_scope()
        for rel, name, refs in self.entries:
            values = [(key, self.box[i] if i is not None else const) for key, i, const in refs]
            value = values[0][1] if len(values) == 1 else dict(values)
            replay(target, f"{base}.{rel}" if base and rel else base or rel, name, value)


def compile_recording(original: Any, on: Callable[[], bool]) -> Any:
    """``mx.compile`` (``original``) made to record the captures of the functions it compiles while
    ``on()`` is true."""

    def compile(fun: Any, inputs: Any = None, outputs: Any = None, shapeless: bool = False) -> Any:
        caps = _CompiledCaptures()

        def traced(*args: Any, **kwargs: Any) -> Any:
            if not on():
                return fun(*args, **kwargs)
            caps.box.clear()
            caps.entries.clear()
            if not ACTIVE:
                caps.idle_trace = True
                return fun(*args, **kwargs)
            caps.idle_trace, caps.scope = False, tracer.current_scope()
            saved, STATE.sink = STATE.sink, caps
            proxy = push(caps)
            try:
                return fun(*args, **kwargs)
            finally:
                pop(proxy)
                STATE.sink = saved

        compiled = original(
            traced, inputs=inputs, outputs=caps.box if outputs is None else [outputs, caps.box], shapeless=shapeless
        )

        def call(*args: Any, **kwargs: Any) -> Any:
            output = compiled(*args, **kwargs)
            if ACTIVE and on():
                if caps.entries:
                    caps.record(output)
                elif caps.idle_trace:
                    say(
                        f"idle:{id(caps)}",
                        f"{getattr(fun, '__qualname__', fun)!s} was compiled (traced) before the "
                        "recording started; MLX does not run its Python body again, so the modules it calls, if "
                        "any, are not recorded",
                    )
            return output

        try:
            functools.update_wrapper(call, fun, updated=())
        except (AttributeError, TypeError):
            pass
        return call

    compile.__doc__ = original.__doc__
    compile._numtrace_original = original  # type: ignore[attr-defined]
    return compile
