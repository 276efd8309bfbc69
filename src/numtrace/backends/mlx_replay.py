"""An MLX module call made again on the reference's inputs (``trace replay``), without disturbing
the live run: the module's arrays (parameters and any array it keeps, such as a cache it stores
on itself) are put back when the call replaced them. MLX's global random key is not put back: a
replayed module that draws random numbers (dropout in training mode) advances it.

Example:
    >>> import mlx.core as mx, mlx.nn as nn
    >>> class Counter(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.seen = mx.zeros(1)
    ...     def __call__(self, x):
    ...         self.seen = self.seen + 1                   # state kept on the module
    ...         return x * 2
    >>> counter = Counter()
    >>> rerun(counter, type(counter).__call__, (mx.ones(2),), {}).tolist(), counter.seen.tolist()
    ([2.0, 2.0], [0.0])
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import numpy as np

from ..tracer import flatten
from . import to_numpy


class MlxArrays:
    """MLX arrays, as :mod:`numtrace.replay.inputs` needs them."""

    def handles(self, x: Any) -> bool:
        return isinstance(x, mx.array)

    def to_numpy(self, x: Any) -> tuple[np.ndarray, str]:
        return to_numpy(x)

    def from_numpy(self, values: np.ndarray, like: Any) -> Any:
        return mx.array(np.ascontiguousarray(values)).astype(like.dtype)

    def plain(self, x: Any) -> bool:
        return isinstance(x, (mx.Dtype, mx.Device, mx.Stream))


ARRAYS = MlxArrays()


def rerun(module: Any, call: Any, args: tuple, kwargs: dict) -> Any:
    """``call(module, *args, **kwargs)`` with the module's arrays put back (module docstring)."""
    from mlx.utils import tree_flatten, tree_unflatten

    before = tree_flatten(module.parameters())
    try:
        return call(module, *args, **kwargs)
    finally:
        after = tree_flatten(module.parameters())
        if [(k, id(v)) for k, v in before] != [(k, id(v)) for k, v in after]:
            module.update(tree_unflatten(before))


def replay_call(replayer: Any, module: Any, call: Any, site: Any, args: tuple, kwargs: dict, output: Any) -> None:
    """Hand a recorded live call to the replayer (:meth:`numtrace.replay.session.Replayer.after_call`)."""
    leaves = flatten(output) if output is not None else []
    if not leaves:
        return
    keys = [""] if len(leaves) == 1 else [key for key, _ in leaves]
    replayer.after_call(
        site.output_name(output, leaves), keys, args, kwargs, ARRAYS, lambda a, k: rerun(module, call, a, k)
    )
