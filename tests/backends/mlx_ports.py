"""A small PyTorch model and its MLX port, for the parity tests (imported by test_mlx_parity.py).

The model has what ports get wrong: a conv, norms, attention with rotary embeddings, an MLP with
GELU. ``Model`` keeps every activation in (batch, time, channels) and calls its conv functionally, so
its stages line up without layout or name rules; ``StemModel`` adds a ``Sequential`` conv stem with
``nn.Conv1d``/``nn.GroupNorm`` children, whose activations are NCL in torch and NLC in MLX and whose
children are ``stem.0`` in torch and ``stem.layers.0`` in MLX.

``bug`` plants one port bug in the MLX model: ``eps`` (LayerNorm eps 1e-6 instead of torch's 1e-5),
``nhwc`` (the conv output, NLC in MLX, treated as NCL), ``rope`` (traditional RoPE instead of
rotate-half), ``gelu`` (the sigmoid approximation of GELU).
"""

from __future__ import annotations

import math

import numpy as np

DIM, HEADS, LAYERS, FEATURES, FRAMES = 32, 4, 2, 8, 24


def inputs(batch: int = 2, seed: int = 0) -> np.ndarray:
    """(batch, FRAMES, FEATURES) float32, small (std 0.05): the first norm's eps matters."""
    return (0.05 * np.random.default_rng(seed).standard_normal((batch, FRAMES, FEATURES))).astype(np.float32)


# ---------------------------------------------------------------------------------------- torch


def torch_models():
    import torch
    from torch import nn

    def rotate_half(x):
        half = x.shape[-1] // 2
        return torch.cat([-x[..., half:], x[..., :half]], dim=-1)

    class RoPE(nn.Module):
        def __init__(self, dims: int, base: float = 10000.0):
            super().__init__()
            self.dims, self.base = dims, base

        def forward(self, x):  # (B, H, T, D), rotate-half pairing (MLX's traditional=False)
            t = torch.arange(x.shape[-2], dtype=torch.float32)
            freqs = self.base ** (-torch.arange(0, self.dims, 2, dtype=torch.float32) / self.dims)
            angles = t[:, None] * freqs[None, :]
            cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)
            return x * cos + rotate_half(x) * sin

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj, self.k_proj = nn.Linear(DIM, DIM), nn.Linear(DIM, DIM)
            self.v_proj, self.o_proj = nn.Linear(DIM, DIM), nn.Linear(DIM, DIM)
            self.rope = RoPE(DIM // HEADS)

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = (p(x).view(b, t, HEADS, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
            q, k = self.rope(q), self.rope(k)
            out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
            return self.o_proj(out.transpose(1, 2).reshape(b, t, DIM))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.act, self.fc2 = nn.Linear(DIM, 2 * DIM), nn.GELU(), nn.Linear(2 * DIM, DIM)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1, self.attn = nn.LayerNorm(DIM), Attention()
            self.norm2, self.mlp = nn.LayerNorm(DIM), MLP()

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class ConvIn(nn.Module):
        """A conv over time on (B, T, C) activations, called functionally."""

        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(DIM, FEATURES, 3) * 0.3)
            self.bias = nn.Parameter(torch.randn(DIM) * 0.1)

        def forward(self, x):
            return torch.nn.functional.conv1d(x.transpose(1, 2), self.weight, self.bias, padding=1).transpose(1, 2)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv_in = ConvIn()
            self.blocks = nn.ModuleList([Block() for _ in range(LAYERS)])
            self.norm, self.head = nn.LayerNorm(DIM), nn.Linear(DIM, FEATURES)

        def forward(self, x):
            x = self.conv_in(x) * 0.05
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm(x))

    class StemModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv1d(FEATURES, DIM, 3, padding=1), nn.GroupNorm(4, DIM), nn.GELU())
            self.blocks = nn.ModuleList([Block() for _ in range(LAYERS)])
            self.head = nn.Linear(DIM, FEATURES)

        def forward(self, x):  # x: (B, T, C) like the port's; the stem runs in NCL
            x = self.stem(x.transpose(1, 2)).transpose(1, 2)
            for block in self.blocks:
                x = block(x)
            return self.head(x)

    return Model, StemModel


def build_torch(kind: str = "model", seed: int = 0):
    import torch

    torch.manual_seed(seed)
    model_cls, stem_cls = torch_models()
    return (model_cls if kind == "model" else stem_cls)().eval()


def export_weights(model, path) -> str:
    """Torch weights in MLX's names and layouts (conv weights (O,I,K) -> (O,K,I), `stem.0` ->
    `stem.layers.0`), written as safetensors: what a port's weight converter does."""
    from safetensors.numpy import save_file

    out = {}
    for name, tensor in model.state_dict().items():
        array = tensor.detach().cpu().numpy()
        parts = name.split(".")
        if parts[0] == "stem":
            parts.insert(1, "layers")
        if array.ndim == 3:
            array = array.transpose(0, 2, 1)
        out[".".join(parts)] = np.ascontiguousarray(array)
    save_file(out, str(path))
    return str(path)


# ------------------------------------------------------------------------------------------ MLX


def mlx_models(bug: str | None = None):
    import mlx.core as mx
    import mlx.nn as nn

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj, self.k_proj = nn.Linear(DIM, DIM), nn.Linear(DIM, DIM)
            self.v_proj, self.o_proj = nn.Linear(DIM, DIM), nn.Linear(DIM, DIM)
            self.rope = nn.RoPE(DIM // HEADS, traditional=bug == "rope")

        def __call__(self, x):
            b, t, _ = x.shape
            projections = (self.q_proj, self.k_proj, self.v_proj)
            q, k, v = (p(x).reshape(b, t, HEADS, -1).transpose(0, 2, 1, 3) for p in projections)
            q, k = self.rope(q), self.rope(k)
            out = mx.fast.scaled_dot_product_attention(q, k, v, scale=1 / math.sqrt(DIM // HEADS))
            return self.o_proj(out.transpose(0, 2, 1, 3).reshape(b, t, DIM))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(DIM, 2 * DIM), nn.Linear(2 * DIM, DIM)
            self.act = nn.GELU(approx={"gelu": "fast", "gelu_tanh": "precise"}.get(bug, "none"))

        def __call__(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1 = nn.LayerNorm(DIM, eps=1e-6 if bug == "eps" else 1e-5)
            self.attn, self.norm2, self.mlp = Attention(), nn.LayerNorm(DIM), MLP()

        def __call__(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class ConvIn(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight, self.bias = mx.zeros((DIM, 3, FEATURES)), mx.zeros((DIM,))

        def __call__(self, x):
            y = mx.conv1d(x, self.weight, padding=1) + self.bias  # NLC in, NLC out
            if bug == "nhwc":  # the port believes conv1d returns NCL, as in torch
                b, t, c = y.shape
                y = y.reshape(b, c, t).transpose(0, 2, 1)
            return y

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv_in = ConvIn()
            self.blocks = [Block() for _ in range(LAYERS)]
            self.norm, self.head = nn.LayerNorm(DIM), nn.Linear(DIM, FEATURES)

        def __call__(self, x):
            x = self.conv_in(x) * 0.05
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm(x))

    class StemModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv1d(FEATURES, DIM, 3, padding=1), nn.GroupNorm(4, DIM, pytorch_compatible=True), nn.GELU()
            )
            self.blocks = [Block() for _ in range(LAYERS)]
            self.head = nn.Linear(DIM, FEATURES)

        def __call__(self, x):  # NLC throughout
            x = self.stem(x)
            for block in self.blocks:
                x = block(x)
            return self.head(x)

    return Model, StemModel


def build_mlx(weights_path, kind: str = "model", bug: str | None = None):
    model_cls, stem_cls = mlx_models(bug)
    model = (model_cls if kind == "model" else stem_cls)()
    model.load_weights(str(weights_path))
    return model
