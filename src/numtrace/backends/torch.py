"""PyTorch backend: tensors to NumPy, and ``numtrace.watch(model)`` for ``nn.Module``s.

The adapter converts a tensor of any device and dtype: it is detached, moved
to the CPU and resolved (conjugate/negative views); bfloat16 and float8 keep
their recorded dtype name (their values are exact float32 values, see
``numtrace.dtypes``); float16 stays float16. The recording copies what it is
given at once, so an in-place op after a hook (``ReLU(inplace=True)``) or an
``nn.Identity`` sharing its input's storage cannot change what was recorded.

``watch(model)`` (implemented in ``torch_capture.watch_model``) registers a forward hook (and, with ``inputs=True``, a
forward pre-hook) on every selected module. Hooks never return a value (that
would replace the module's output) and a stage numtrace cannot record is
reported once as a warning, never raised into the model. Naming follows
``numtrace.watch``; a ``torch.compile``'d model is named as the model it wraps
(``_orig_mod.`` is dropped). Zero-edit capture of every model a script calls
(``trace run --backend torch``) lives in ``torch_capture``.

Example:
    >>> import torch, numtrace
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU())
    >>> with numtrace.record() as rec, numtrace.watch(model, weights=True):
    ...     _ = model(torch.ones(1, 3))
    >>> rec.trace.order
    ['0.weight', '0.bias', '0', '1', 'output']
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from ..errors import TapError
from ..probes import StageFilter
from ..tracer import active_recording, flatten
from ..watch import Watch, stage_name

#: torch dtype -> recorded dtype name (the others are refused with a hint)
DTYPE_NAMES: dict[torch.dtype, str] = {
    torch.bool: "bool", torch.uint8: "uint8", torch.int8: "int8", torch.int16: "int16",
    torch.int32: "int32", torch.int64: "int64", torch.uint16: "uint16", torch.uint32: "uint32",
    torch.uint64: "uint64", torch.float16: "float16", torch.bfloat16: "bfloat16",
    torch.float32: "float32", torch.float64: "float64", torch.complex64: "complex64",
    torch.complex128: "complex128",
}
for _name in ("float8_e4m3fn", "float8_e5m2"):
    if hasattr(torch, _name):
        DTYPE_NAMES[getattr(torch, _name)] = _name
# Held as exact float32 values: NumPy has no such dtype.
_AS_FLOAT32 = {torch.bfloat16} | {d for d, n in DTYPE_NAMES.items() if n.startswith("float8")}

COMPILED_PREFIX = "_orig_mod"


class NumtraceWarning(UserWarning):
    """A stage numtrace could not record, or a part of a model it cannot see."""


class TorchAdapter:
    name = "torch"

    def handles(self, x: Any) -> bool:
        return isinstance(x, torch.Tensor)

    def to_numpy(self, x: torch.Tensor) -> tuple[np.ndarray, str]:
        if x.is_quantized:
            raise TapError("cannot record a quantized tensor; record x.dequantize() or x.int_repr()")
        dtype = DTYPE_NAMES.get(x.dtype)
        if dtype is None:
            raise TapError(f"cannot record a torch tensor of dtype {x.dtype}; convert it first "
                           f"(e.g. .float() or .to(torch.complex64)); recorded dtypes: {', '.join(DTYPE_NAMES.values())}")
        if x.device.type == "meta":
            raise TapError("cannot record a tensor on the meta device: it holds no values")
        t = x.detach()
        if type(t) is not torch.Tensor:  # subclasses (fastai's TensorBase...) cost a __torch_function__ per op
            t = t.as_subclass(torch.Tensor)
        if t.layout != torch.strided:
            t = t.to_dense()
        if t.dtype in _AS_FLOAT32:
            t = t.float()
        try:
            values = t.cpu().resolve_conj().resolve_neg().numpy()
        except RuntimeError as err:  # functorch-wrapped tensors (inside vmap/grad) cannot leave the transform
            raise TapError(f"cannot copy this tensor out ({err}); tap outside torch.func transforms") from None
        return values, dtype

    def version(self) -> str:
        return str(torch.__version__)


ADAPTER = TorchAdapter()

# In a forked child (a DataLoader worker) a tap would write into the parent's trace file: never.
_forked_child = False


def _mark_child() -> None:
    global _forked_child
    _forked_child = True


os.register_at_fork(after_in_child=_mark_child)

_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """One warning line per ``key`` per process."""
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, NumtraceWarning, stacklevel=3)


def eager(hook: Any) -> Any:
    """``hook`` made opaque to torch.compile: traced, it would crash dynamo or be replayed wrongly."""
    return torch.compiler.disable(hook)


def record(name: str, value: Any) -> None:
    """Tap ``value`` into the active recording, if any; report (once) instead of raising."""
    recording = active_recording()
    if recording is None or _forked_child or value is None:
        return
    try:
        recording.tap(name, value)
    except TapError as err:
        if flatten(value):  # an output holding no array at all (a cache object, a string) is skipped quietly
            warn_once(name, f"numtrace: stage {name!r} not recorded: {err}")


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


class Site:
    """One module's place in a trace: its stage name and how its inputs and output are tapped."""

    __slots__ = ("stage", "input_stage", "children", "record_output", "record_inputs")

    def __init__(self, prefix: str, path: str, module: nn.Module, selected: StageFilter | None = None,
                 silent: bool = False) -> None:
        self.stage = stage_name(prefix, path)
        # the root's inputs are `input` (or `<prefix>.input`), not `output.input`
        self.input_stage = f"{self.stage}.input" if path else stage_name(prefix, "input")
        self.children = frozenset(name for name, _ in module.named_children()) - {COMPILED_PREFIX}
        self.record_output = not silent and (selected is None or selected(self.stage))
        self.record_inputs = not silent and (selected is None or selected(self.input_stage))

    def tap_output(self, output: Any) -> None:
        if self.record_output:
            record(self._output_name(output), output)

    def tap_inputs(self, args: tuple, kwargs: dict | None) -> None:
        value = input_value(args, kwargs) if self.record_inputs else None
        if value:
            record(self.input_stage, value)

    def _output_name(self, output: Any) -> str:
        # `seq.0` is both a Sequential's first child and element 0 of its tuple output: when
        # flattened keys could meet a child's path, the output goes under `seq.output` instead.
        if not self.children or isinstance(output, torch.Tensor):
            return self.stage
        leaves = flatten(output)
        if len(leaves) > 1 and any(key.split(".", 1)[0] in self.children for key, _ in leaves):
            suffix = "output"
            while suffix in self.children:
                suffix += "_"
            return f"{self.stage}.{suffix}"
        return self.stage


def input_value(args: tuple, kwargs: dict | None) -> Any:
    """A module's inputs as one tappable value: positional ``0``, ``1``... and keyword names.

    Python numbers and flags (``use_cache=False``) are left out: they are arguments, not data.
    """
    def data(v: Any) -> bool:
        return v is not None and not isinstance(v, (bool, int, float, complex, str))

    value = {str(i): a for i, a in enumerate(args) if data(a)}
    value.update((k, v) for k, v in (kwargs or {}).items() if data(v))
    return value


def weights_of(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Parameters and persistent buffers in ``state_dict`` order and naming (tied ones once)."""
    seen: set[int] = set()
    for path, module in named_modules(model):
        persistent_off = getattr(module, "_non_persistent_buffers_set", set())
        tensors = list(module._parameters.items()) + [
            (n, b) for n, b in module._buffers.items() if n not in persistent_off]
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


# -- watch ---------------------------------------------------------------------------------


def watches(model: Any) -> bool:
    return isinstance(model, nn.Module)


def watch(model: nn.Module, **options: Any) -> Watch:
    """Hook every selected module of ``model`` (see ``numtrace.watch``); the hooks live in ``torch_capture``."""
    from .torch_capture import watch_model

    return watch_model(model, **options)
