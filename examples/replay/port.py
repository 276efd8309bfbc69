"""The port: the same encoder rewritten by hand, loading the reference's weights. Two bugs hide
in it: the frontend's weight is loaded scaled (a units mix-up, 100x too small), and layer 1
multiplies by its weight matrix untransposed.

    python port.py [--weights weights.safetensors] [--fixed]
"""

import argparse

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn


class Dense(nn.Module):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, transposed: bool = False) -> None:
        super().__init__()
        self.weight, self.bias, self.transposed = nn.Parameter(weight), nn.Parameter(bias), transposed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ (self.weight if self.transposed else self.weight.T) + self.bias


class Layer(nn.Module):
    def __init__(self, weights: dict, prefix: str, transposed: bool) -> None:
        super().__init__()
        self.fc = Dense(weights[f"{prefix}.fc.weight"], weights[f"{prefix}.fc.bias"], transposed)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(weights[f"{prefix}.norm.weight"].shape[0])
        self.norm.load_state_dict({"weight": weights[f"{prefix}.norm.weight"], "bias": weights[f"{prefix}.norm.bias"]})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.act(self.fc(x)))


class Encoder(nn.Module):
    def __init__(self, weights: dict, fixed: bool) -> None:
        super().__init__()
        scale = 1.0 if fixed else 0.01
        self.frontend = Dense(weights["frontend.weight"] * scale, weights["frontend.bias"])
        self.layers = nn.ModuleList([Layer(weights, f"layers.{i}", transposed=i == 1 and not fixed) for i in range(3)])
        self.head = Dense(weights["head.weight"], weights["head.bias"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.frontend(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="weights.safetensors")
    parser.add_argument("--fixed", action="store_true", help="without the two bugs")
    args = parser.parse_args()
    model = Encoder(load_file(args.weights), args.fixed).eval()
    x = torch.from_numpy(np.random.default_rng(7).standard_normal((2, 48, 8)).astype(np.float32))
    with torch.no_grad():
        print("port:     ", model(x).mean(dim=(0, 1)).numpy().round(4))


if __name__ == "__main__":
    main()
