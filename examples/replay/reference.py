"""The reference: a small encoder in PyTorch, random weights saved for its port.

python reference.py [--save weights.safetensors]
"""

import argparse

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn


class Layer(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.act(self.fc(x)))


class Encoder(nn.Module):
    def __init__(self, width: int = 32, depth: int = 3) -> None:
        super().__init__()
        self.frontend = nn.Linear(8, width)
        self.layers = nn.ModuleList([Layer(width) for _ in range(depth)])
        self.head = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.frontend(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def features() -> torch.Tensor:
    """The input both programs see: 2 sequences of 48 frames of 8 features."""
    return torch.from_numpy(np.random.default_rng(7).standard_normal((2, 48, 8)).astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", default="weights.safetensors", help="where to write the weights")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = Encoder().eval()
    save_file({name: value.contiguous() for name, value in model.state_dict().items()}, args.save)
    with torch.no_grad():
        print("reference:", model(features()).mean(dim=(0, 1)).numpy().round(4))


if __name__ == "__main__":
    main()
