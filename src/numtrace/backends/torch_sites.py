"""Where a torch module call goes in a trace: its :class:`Site` (stage names, what is recorded), and
:func:`record`, which copies a value into the active recording at once.

Shared by the hooks of zero-edit capture and ``numtrace.watch``
(:mod:`numtrace.backends.torch_hooks`) and by the fastai backend. A copy is taken when the hook
fires, so what a module returned is what is recorded, whatever the program does to it later
(``ReLU(inplace=True)``, a cache written in place). Nothing is recorded in a forked child (a
DataLoader worker would write into the parent's trace file).

Example:
    >>> import torch
    >>> site = Site("", "encoder.0", torch.nn.Linear(2, 2))
    >>> site.stage, site.input_stage, module_path("_orig_mod.encoder.0")
    ('encoder.0', 'encoder.0.input', 'encoder.0')
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import torch
from torch import nn

from ..errors import TapError, warn_once
from ..probes import StageFilter
from ..tracer import active_recording, flatten
from .naming import ModuleSite, input_value, stage_name

COMPILED_PREFIX = "_orig_mod"

# In a forked child (a DataLoader worker) a tap would write into the parent's trace file: never.
forked_child = False


def _mark_child() -> None:
    global forked_child
    forked_child = True


os.register_at_fork(after_in_child=_mark_child)


def eager(hook: Any) -> Any:
    """``hook`` made opaque to torch.compile: traced, it would crash dynamo or be replayed wrongly."""
    return torch.compiler.disable(hook)


def record(name: str, value: Any) -> None:
    """Tap ``value`` into the active recording, if any; report (once) instead of raising."""
    recording = active_recording()
    if recording is None or forked_child or value is None:
        return
    try:
        recording.tap(name, value)
    except TapError as err:
        if flatten(value):  # an output holding no array at all (a cache object, a string) is skipped quietly
            warn_once(name, f"stage {name!r} not recorded: {err}")


# -- naming ------------------------------------------------------------------------------------


def is_compiled_wrapper(module: nn.Module) -> bool:
    """True for the ``OptimizedModule`` that ``torch.compile(model)`` returns."""
    return type(module).__name__ == "OptimizedModule" and isinstance(getattr(module, COMPILED_PREFIX, None), nn.Module)


def module_path(path: str) -> str:
    """A ``named_modules()`` path without ``torch.compile``'s ``_orig_mod`` components."""
    if COMPILED_PREFIX not in path:
        return path
    return ".".join(part for part in path.split(".") if part != COMPILED_PREFIX)


def named_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """``(path, module)`` of every module (shared ones once), compiled wrappers left out."""
    for path, module in model.named_modules():
        if not is_compiled_wrapper(module):
            yield module_path(path), module


def is_script_module(module: nn.Module) -> bool:
    return isinstance(module, torch.jit.ScriptModule)


class Site(ModuleSite):
    """One module's place in a trace: its names (:class:`~numtrace.backends.naming.ModuleSite`) and
    how its inputs and output are tapped."""

    __slots__ = ("record_output", "record_inputs")

    def __init__(
        self, prefix: str, path: str, module: nn.Module, selected: StageFilter | None = None, silent: bool = False
    ) -> None:
        super().__init__(prefix, path, frozenset(name for name, _ in module.named_children()) - {COMPILED_PREFIX})
        self.record_output = not silent and (selected is None or selected(self.stage))
        self.record_inputs = not silent and (selected is None or selected(self.input_stage))

    def output_name(self, output: Any) -> str:
        """The stage name the output is recorded under (``<stage>.output`` when its keys could meet a child's)."""
        if isinstance(output, torch.Tensor):
            return self.stage
        return self.output_for(key for key, _ in flatten(output))

    def tap_output(self, output: Any) -> None:
        if self.record_output:
            record(self.output_name(output), output)

    def tap_inputs(self, args: tuple, kwargs: dict | None) -> None:
        value = input_value(args, kwargs) if self.record_inputs else None
        if value:
            record(self.input_stage, value)


def weights_of(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Parameters and persistent buffers in ``state_dict`` order and naming (tied ones once)."""
    seen: set[int] = set()
    for path, module in named_modules(model):
        persistent_off: set[str] = getattr(module, "_non_persistent_buffers_set", set())
        tensors = list(module._parameters.items()) + [
            (n, b) for n, b in module._buffers.items() if n not in persistent_off
        ]
        for name, tensor in tensors:
            if tensor is not None and id(tensor) not in seen:
                seen.add(id(tensor))
                yield (f"{path}.{name}" if path else name), tensor


def module_filter(include: list[str] | None, exclude: list[str] | None) -> StageFilter:
    """Globs over stage names, applied per module before any call: ``step@9`` selects module ``step``.

    (Which call is kept is the recording's business: its filter sees the call index.)
    """
    return StageFilter([glob.split("@", 1)[0] for glob in include] if include else None, exclude)


def tap_weights(model: nn.Module, prefix: str, selected: StageFilter) -> None:
    for name, tensor in weights_of(model):
        stage = stage_name(prefix, name)
        if selected(stage):
            record(stage, tensor)
