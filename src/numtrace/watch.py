"""Zero-edit module capture: ``numtrace.watch(model)`` records every module's output.

``watch`` finds the backend for the model's framework in the backend registry
(:data:`numtrace.backends.REGISTRY`: a framework is consulted only when the
program imported it) and attaches to the model. While attached,
each call of a selected module taps its output under its dotted path (as the
framework's ``named_modules()`` spells it), into whatever recording is active
at that moment: no recording, no cost beyond the hook. Call indices,
flattening of tuple/dict/dataclass outputs and scopes follow ``tap``.

Naming: children are ``prefix + dotted path`` (``encoder.0.conv``); the root
model's own output is ``prefix`` or, with no prefix, ``output``. With
``inputs=True`` a module's inputs are tapped as ``<path>.input`` before its
output; with ``weights=True`` each parameter is tapped once, when the watch
attaches, under its parameter name (``decoder.finalProj.weight``).

Example:
    with numtrace.record("run.safetensors"), numtrace.watch(model):
        model(x)
"""

from __future__ import annotations

from typing import Any, Callable

from . import backends
from .errors import UsageError


class Watch:
    """A handle on an attached watch: a context manager; ``detach()`` undoes everything.

    Backends create it with the callable that removes their hooks (or restores
    classes); detaching twice is harmless, and ``__exit__`` detaches even when
    the block raised.
    """

    def __init__(self, model: Any, detach: Callable[[], None], stages: list[str] | None = None) -> None:
        self.model = model
        self._detach: Callable[[], None] | None = detach
        self.stages = stages or []  # the module paths being watched

    @property
    def attached(self) -> bool:
        return self._detach is not None

    def detach(self) -> None:
        undo, self._detach = self._detach, None
        if undo is not None:
            undo()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return f"<Watch {type(self.model).__name__} {state}, {len(self.stages)} modules>"


def watch(
    model: Any,
    *,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    inputs: bool = False,
    weights: bool = False,
    prefix: str = "",
) -> Watch:
    """Attach to ``model`` (a torch ``nn.Module`` or an ``mlx.nn.Module``); returns a :class:`Watch`."""
    for backend in backends.loaded(models=True):
        if backend.watches(model):
            return backend.watch(model, include=include, exclude=exclude, inputs=inputs, weights=weights, prefix=prefix)
    frameworks = " or ".join(b.name for b in backends.REGISTRY if b.models)
    raise UsageError(
        f"numtrace cannot watch a {type(model).__module__}.{type(model).__qualname__}: "
        f"watch() takes a model of {frameworks} (tap other values with numtrace.tap)"
    )
