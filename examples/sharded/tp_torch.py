"""A tensor-parallel MLP in torch.distributed (one process: the single-device reference).

torchrun --standalone --nproc-per-node 2 tp_torch.py [--swap] [--no-all-reduce] [--wrong-axis] [--other-data]
"""

import os
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

BUGS = set(sys.argv[1:])
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    dist.init_process_group("gloo")
R = dist.get_world_size() if dist.is_initialized() else 1
RANK = dist.get_rank() if dist.is_initialized() else 0
SHARD = R - 1 - RANK if "--swap" in BUGS else RANK  # the shard this rank holds


def all_reduce(x):
    if R > 1:
        dist.all_reduce(x)
    return x


def all_gather(x, dim):
    if R == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(R)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim)


class ColumnParallel(nn.Module):
    """Output features split across ranks; with gather=True, gathered back whole."""

    def __init__(self, full, gather=False):
        super().__init__()
        rows = full.out_features // R
        self.weight = nn.Parameter(full.weight[SHARD * rows : (SHARD + 1) * rows].detach().clone())
        self.bias = nn.Parameter(full.bias[SHARD * rows : (SHARD + 1) * rows].detach().clone())
        self.gather = gather

    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)
        if not self.gather:
            return y
        if "--wrong-axis" in BUGS and R > 1:
            return all_gather(y, 0).reshape(x.shape[0], -1)
        return all_gather(y, -1)


class RowParallel(nn.Module):
    """Input features split across ranks; the partial sums all-reduced, then the bias."""

    def __init__(self, full):
        super().__init__()
        cols = full.in_features // R
        self.weight = nn.Parameter(full.weight[:, SHARD * cols : (SHARD + 1) * cols].detach().clone())
        self.bias = nn.Parameter(full.bias.detach().clone())

    def forward(self, x):
        y = F.linear(x, self.weight)
        if "--no-all-reduce" not in BUGS:
            y = all_reduce(y)
        return y + self.bias


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        up, down, expand = nn.Linear(8, 16), nn.Linear(16, 8), nn.Linear(8, 16)
        self.up, self.act, self.down = ColumnParallel(up), nn.GELU(), RowParallel(down)
        self.expand, self.head = ColumnParallel(expand, gather=True), nn.Linear(16, 4)

    def forward(self, x):
        x = x + self.down(self.act(self.up(x)))
        return self.head(self.expand(x))


model = Model().eval()
torch.manual_seed(1)
x = torch.randn(6, 8)
if "--other-data" in BUGS and RANK == 1:
    x = x + 0.5
with torch.no_grad():
    print(f"rank {RANK} of {R}:", float(model(x).sum()))
if dist.is_initialized():
    dist.destroy_process_group()
