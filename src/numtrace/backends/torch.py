"""PyTorch backend: tensors to NumPy (``ADAPTER``), ``watch(model)`` and ``capture()`` for ``nn.Module``s.

The adapter converts a tensor of any device and dtype: it is detached, moved
to the CPU and resolved (conjugate/negative views); bfloat16 and float8 keep
their recorded dtype name (their values are exact float32 values, see
``numtrace.dtypes``); float16 stays float16. The recording copies what it is
given at once, so an in-place op after a hook (``ReLU(inplace=True)``) or an
``nn.Identity`` sharing its input's storage cannot change what was recorded.

``watch(model)`` registers a forward hook (and, with ``inputs=True``, a
forward pre-hook) on every selected module; ``capture()`` (``trace run
--backend torch``) records every module call of every model through torch's
process-wide hooks. Both live in :mod:`numtrace.backends.torch_hooks`. Hooks
never return a value (that would replace the module's output) and a stage
numtrace cannot record is reported once as a warning, never raised into the
model. Naming follows ``numtrace.watch``; a ``torch.compile``'d model is
named as the model it wraps (``_orig_mod.`` is dropped).

Example:
    >>> import torch, numtrace
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU())
    >>> with numtrace.record() as rec, numtrace.watch(model, weights=True):
    ...     _ = model(torch.ones(1, 3))
    >>> rec.trace.order
    ['0.weight', '0.bias', '0', '1', 'output']
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..errors import TapError
from ..watch import Watch

#: torch dtype -> recorded dtype name (the others are refused with a hint)
DTYPE_NAMES: dict[torch.dtype, str] = {
    torch.bool: "bool",
    torch.uint8: "uint8",
    torch.int8: "int8",
    torch.int16: "int16",
    torch.int32: "int32",
    torch.int64: "int64",
    torch.uint16: "uint16",
    torch.uint32: "uint32",
    torch.uint64: "uint64",
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
    torch.float32: "float32",
    torch.float64: "float64",
    torch.complex64: "complex64",
    torch.complex128: "complex128",
}
for _name in ("float8_e4m3fn", "float8_e5m2"):
    if hasattr(torch, _name):
        DTYPE_NAMES[getattr(torch, _name)] = _name
# Held as exact float32 values: NumPy has no such dtype.
_AS_FLOAT32 = {torch.bfloat16} | {d for d, n in DTYPE_NAMES.items() if n.startswith("float8")}


class TorchAdapter:
    name = "torch"

    def handles(self, x: Any) -> bool:
        return isinstance(x, torch.Tensor)

    def to_numpy(self, x: torch.Tensor) -> tuple[np.ndarray, str]:
        if x.is_quantized:
            raise TapError("cannot record a quantized tensor; record x.dequantize() or x.int_repr()")
        dtype = DTYPE_NAMES.get(x.dtype)
        if dtype is None:
            raise TapError(
                f"cannot record a torch tensor of dtype {x.dtype}; convert it first "
                f"(e.g. .float() or .to(torch.complex64)); recorded dtypes: {', '.join(DTYPE_NAMES.values())}"
            )
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

# -- the public surface: watch and capture (the hooks live in torch_hooks) ---------------------


def watches(model: Any) -> bool:
    return isinstance(model, nn.Module)


def watch(model: nn.Module, **options: Any) -> Watch:
    """Hook every selected module of ``model`` (see ``numtrace.watch``)."""
    from .torch_hooks import watch_model

    return watch_model(model, **options)


def capture(
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    *,
    inputs: bool = False,
    weights: bool = False,
    replay: Any = None,
) -> Callable[[], None]:
    """Record every module call of every model from now on (``trace run --backend torch``); returns
    the callable that undoes it. ``replay``: a :class:`numtrace.replay.session.Replayer` that makes
    each recorded call again on the reference's inputs (``trace replay``)."""
    from .torch_hooks import capture as start

    return start(include, exclude, inputs=inputs, weights=weights, replay=replay)
