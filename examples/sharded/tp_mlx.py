"""The same tensor-parallel MLP in mx.distributed (one process: the single-device reference).

mlx.launch --backend ring -n 2 -- tp_mlx.py [--swap] [--no-all-reduce] [--wrong-axis] [--other-data]
"""

import os
import sys

import mlx.core as mx
import mlx.nn as nn

BUGS = set(sys.argv[1:])
GROUP = mx.distributed.init() if "MLX_RANK" in os.environ else None
R = GROUP.size() if GROUP is not None else 1
RANK = GROUP.rank() if GROUP is not None else 0
SHARD = R - 1 - RANK if "--swap" in BUGS else RANK  # the shard this rank holds


def all_reduce(x):
    return mx.distributed.all_sum(x, group=GROUP) if R > 1 else x


def all_gather(x, axis):
    if R == 1:
        return x
    parts = mx.split(mx.distributed.all_gather(x, group=GROUP), R, axis=0)  # stacked along axis 0
    return mx.concatenate(parts, axis=axis)


class ColumnParallel(nn.Module):
    """Output features split across ranks; with gather=True, gathered back whole."""

    def __init__(self, full, gather=False):
        super().__init__()
        rows = full.weight.shape[0] // R
        self.weight = full.weight[SHARD * rows : (SHARD + 1) * rows]
        self.bias = full.bias[SHARD * rows : (SHARD + 1) * rows]
        self.gather = gather

    def __call__(self, x):
        y = x @ self.weight.T + self.bias
        if not self.gather:
            return y
        if "--wrong-axis" in BUGS and R > 1:
            return all_gather(y, 0).reshape(x.shape[0], -1)
        return all_gather(y, -1)


class RowParallel(nn.Module):
    """Input features split across ranks; the partial sums all-reduced, then the bias."""

    def __init__(self, full):
        super().__init__()
        cols = full.weight.shape[1] // R
        self.weight = full.weight[:, SHARD * cols : (SHARD + 1) * cols]
        self.bias = full.bias

    def __call__(self, x):
        y = x @ self.weight.T
        if "--no-all-reduce" not in BUGS:
            y = all_reduce(y)
        return y + self.bias


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        mx.random.seed(0)
        up, down, expand = nn.Linear(8, 16), nn.Linear(16, 8), nn.Linear(8, 16)
        self.up, self.act, self.down = ColumnParallel(up), nn.GELU(), RowParallel(down)
        self.expand, self.head = ColumnParallel(expand, gather=True), nn.Linear(16, 4)

    def __call__(self, x):
        x = x + self.down(self.act(self.up(x)))
        return self.head(self.expand(x))


model = Model()
x = mx.random.normal((6, 8), key=mx.random.key(1))
if "--other-data" in BUGS and RANK == 1:
    x = x + 0.5
out = model(x)
mx.eval(out)
print(f"rank {RANK} of {R}:", out.sum().item())
