"""A text-to-speech decoder in PyTorch: the reference that decoder_mlx.py ports to MLX.

encoder -> ODE solver, 10 Euler steps with classifier-free guidance -> final_proj to an 80-bin
mel spectrogram in dB, shape (1, 80, 312). Nothing here imports numtrace: `trace run` records the
output of every module, named by its path (`encoder.ff1`, `step.estimator@3`, `final_proj`).

    trace run --backend torch -o build/torch_to_mlx/torch.safetensors examples/torch_to_mlx/decoder_torch.py

The weights (random, seeded) are written to --weights as safetensors, for the port to load.
"""

import argparse
import os

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

TOKENS, HIDDEN, MELS, FRAMES = 32, 64, 80, 312
STEPS, GUIDANCE = 10, 0.7


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(TOKENS, HIDDEN)
        self.ff1, self.ff2 = nn.Linear(HIDDEN, 2 * HIDDEN), nn.Linear(2 * HIDDEN, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(self, tokens):
        h = self.embed(tokens)
        return self.norm(h + self.ff2(nn.functional.gelu(self.ff1(h))))


class Estimator(nn.Module):
    """The velocity field v(x, mu, t) of the flow."""

    def __init__(self):
        super().__init__()
        self.time = nn.Linear(1, HIDDEN)
        self.inp, self.out = nn.Linear(2 * HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN)

    def forward(self, x, mu, t):
        return self.out(torch.tanh(self.inp(torch.cat([x, mu], dim=-1)) + self.time(t)))


class EulerStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.estimator = Estimator()

    def forward(self, x, mu, t, dt):
        v_cond = self.estimator(x, mu, t)
        v_uncond = self.estimator(x, torch.zeros_like(mu), t)
        return x + dt * (v_cond + GUIDANCE * (v_cond - v_uncond))


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.step = EulerStep()
        self.final_proj = nn.Linear(HIDDEN, MELS)  # to a mel in dB (reference amplitude 1.0)

    def forward(self, tokens, noise):
        mu = self.encoder(tokens)
        x = noise
        for i in range(STEPS):
            x = self.step(x, mu, torch.full((1, 1, 1), i / STEPS), 1.0 / STEPS)
        return self.final_proj(x).transpose(1, 2)  # (1, 80, 312)


def inputs():
    """Token features and the ODE's initial noise: NumPy, seeded, shared with the port."""
    tokens = np.random.default_rng(0).standard_normal((1, FRAMES, TOKENS)).astype(np.float32)
    noise = np.random.default_rng(1).standard_normal((1, FRAMES, HIDDEN)).astype(np.float32)
    return tokens, noise


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="build/torch_to_mlx/decoder.safetensors")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = Decoder().eval()
    with torch.no_grad():
        model.final_proj.bias.fill_(-5.8)  # a mel around -5.8 dB
    os.makedirs(os.path.dirname(args.weights) or ".", exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, args.weights)
    tokens, noise = inputs()
    with torch.no_grad():
        mel = model(torch.from_numpy(tokens), torch.from_numpy(noise))
    print(f"mel {tuple(mel.shape)}: range [{mel.min():.2f}, {mel.max():.2f}] dB, mean {mel.mean():.2f} dB")


if __name__ == "__main__":
    main()
