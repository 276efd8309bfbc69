"""A torch module call made again on the reference's inputs (``trace replay``), without
disturbing the live run: no gradient is recorded, and the random generators and the module's
buffers (a BatchNorm's running statistics) are put back as they were.

Example:
    >>> import torch
    >>> bn = torch.nn.BatchNorm1d(2)                        # training mode: a call updates its statistics
    >>> before = bn.running_mean.clone()
    >>> _ = rerun(bn, (torch.ones(4, 2) * 5,), {})
    >>> bool((bn.running_mean == before).all())
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..tracer import flatten
from . import to_numpy


class TorchArrays:
    """torch tensors, as :mod:`numtrace.replay.inputs` needs them."""

    def handles(self, x: Any) -> bool:
        return isinstance(x, torch.Tensor)

    def to_numpy(self, x: Any) -> tuple[np.ndarray, str]:
        return to_numpy(x)

    def from_numpy(self, values: np.ndarray, like: Any) -> Any:
        return torch.from_numpy(np.ascontiguousarray(values)).to(dtype=like.dtype, device=like.device)

    def plain(self, x: Any) -> bool:
        return isinstance(x, (torch.dtype, torch.device, torch.Size, torch.layout, torch.memory_format))


ARRAYS = TorchArrays()


def rerun(module: nn.Module, args: tuple, kwargs: dict) -> Any:
    """``module(*args, **kwargs)`` with nothing of the live run changed (module docstring)."""
    buffers = [(b, b.detach().clone()) for b in module.buffers()]  # kernels update some in place, unversioned
    cpu_state = torch.random.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        with torch.no_grad():
            return module(*args, **kwargs)
    finally:
        torch.random.set_rng_state(cpu_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)


def replay_call(replayer: Any, module: nn.Module, stage: str, args: tuple, kwargs: dict | None, output: Any) -> None:
    """Hand a recorded live call to the replayer (:meth:`numtrace.replay.session.Replayer.after_call`)."""
    leaves = flatten(output)
    if not leaves:
        return
    keys = [""] if len(leaves) == 1 else [key for key, _ in leaves]
    replayer.after_call(stage, keys, args, kwargs or {}, ARRAYS, lambda a, k: rerun(module, a, k))
