"""Small torch models with random weights for the torch and fastai backend tests, and a `trace` runner."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

from report_schema import check_cli_output

SRC = Path(__file__).resolve().parents[2] / "src"


def trace_cli(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    """Run the `trace` command line in a fresh process (the package from src/, installed or not)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "COLUMNS": "200",
    }
    result = subprocess.run(
        [sys.executable, "-c", "from numtrace.cli import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )
    check_cli_output(args, result.stdout, result.returncode)
    return result


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class TinyResNet(nn.Module):
    """A ResNet-style net: stem, two stages of BasicBlocks (Identity and conv shortcuts), pooled head."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, stride=2), BasicBlock(16, 16))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layer2(self.layer1(self.stem(x)))), 1))


class TransformerBlock(nn.Module):
    """Pre-norm self-attention block returning a tuple (hidden, attention weights), HF style."""

    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x, attn_mask=None):
        h = self.norm1(x)
        attended, weights = self.attn(h, h, h, attn_mask=attn_mask, need_weights=True)
        x = x + attended
        return x + self.mlp(self.norm2(x)), weights


@dataclasses.dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor
    attentions: tuple


class Encoder(nn.Module):
    """Two transformer blocks; returns a dataclass like transformers' ModelOutput."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Linear(4, dim)
        self.layers = nn.ModuleList([TransformerBlock(dim), TransformerBlock(dim)])

    def forward(self, x):
        h, attentions = self.embed(x), []
        for layer in self.layers:
            h, weights = layer(h)
            attentions.append(weights)
        return EncoderOutput(h, tuple(attentions))


def module_hooks(model: nn.Module) -> list[str]:
    """Paths of modules that still carry any forward hook or pre-hook."""
    return [
        path or "<root>"
        for path, m in model.named_modules()
        if m._forward_hooks or m._forward_pre_hooks or m._forward_hooks_with_kwargs or m._forward_pre_hooks_with_kwargs
    ]


def global_hooks() -> dict[str, int]:
    """Sizes of torch's process-wide hook tables (all must go back to what they were)."""
    from torch.nn.modules import module as m

    return {
        name: len(getattr(m, name))
        for name in (
            "_global_forward_hooks",
            "_global_forward_pre_hooks",
            "_global_forward_hooks_always_called",
            "_global_forward_hooks_with_kwargs",
            "_global_backward_hooks",
            "_global_backward_pre_hooks",
        )
    }
