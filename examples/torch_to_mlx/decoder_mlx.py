"""The decoder of decoder_torch.py ported to MLX, with the port's bug planted (--fixed removes it).

Same modules, same names, same weights (loaded from the safetensors file the PyTorch script
wrote). Nothing here imports numtrace:

    trace run --backend mlx -o build/torch_to_mlx/mlx.safetensors examples/torch_to_mlx/decoder_mlx.py
    trace run --backend mlx -o build/torch_to_mlx/mlx_fixed.safetensors examples/torch_to_mlx/decoder_mlx.py --fixed

The bug: the port expresses the projection's dB relative to the vocoder's reference amplitude
(1.183) where the reference model uses 1.0, so every mel value comes out 20*log10(1.183) = 1.46 dB
darker.
"""

import argparse
import math
import os

import mlx.core as mx
import mlx.nn as nn
import numpy as np

TOKENS, HIDDEN, MELS, FRAMES = 32, 64, 80, 312
STEPS, GUIDANCE = 10, 0.7


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(TOKENS, HIDDEN)
        self.ff1, self.ff2 = nn.Linear(HIDDEN, 2 * HIDDEN), nn.Linear(2 * HIDDEN, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN)

    def __call__(self, tokens):
        h = self.embed(tokens)
        return self.norm(h + self.ff2(nn.gelu(self.ff1(h))))


class Estimator(nn.Module):
    def __init__(self):
        super().__init__()
        self.time = nn.Linear(1, HIDDEN)
        self.inp, self.out = nn.Linear(2 * HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN)

    def __call__(self, x, mu, t):
        return self.out(mx.tanh(self.inp(mx.concatenate([x, mu], axis=-1)) + self.time(t)))


class EulerStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.estimator = Estimator()

    def __call__(self, x, mu, t, dt):
        v_cond = self.estimator(x, mu, t)
        v_uncond = self.estimator(x, mx.zeros_like(mu), t)
        return x + dt * (v_cond + GUIDANCE * (v_cond - v_uncond))


class MelProjection(nn.Linear):
    """The final projection, in dB relative to ``reference`` amplitude."""

    def __init__(self, reference: float):
        super().__init__(HIDDEN, MELS)
        self.db_shift = -20.0 * math.log10(reference)

    def __call__(self, x):
        return super().__call__(x) + self.db_shift


class Decoder(nn.Module):
    def __init__(self, reference: float):
        super().__init__()
        self.encoder = Encoder()
        self.step = EulerStep()
        self.final_proj = MelProjection(reference)

    def __call__(self, tokens, noise):
        mu = self.encoder(tokens)
        x = noise
        for i in range(STEPS):
            x = self.step(x, mu, mx.full((1, 1, 1), i / STEPS), 1.0 / STEPS)
        return self.final_proj(x).transpose(0, 2, 1)  # (1, 80, 312)


def inputs():
    tokens = np.random.default_rng(0).standard_normal((1, FRAMES, TOKENS)).astype(np.float32)
    noise = np.random.default_rng(1).standard_normal((1, FRAMES, HIDDEN)).astype(np.float32)
    return tokens, noise


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="build/torch_to_mlx/decoder.safetensors")
    parser.add_argument("--fixed", action="store_true", help="use the reference model's amplitude 1.0")
    args = parser.parse_args()
    if not os.path.exists(args.weights):
        raise SystemExit(f"{args.weights} not found: run decoder_torch.py first, it writes the weights")
    model = Decoder(reference=1.0 if args.fixed else 1.183)  # 1.183: the vocoder's reference (the bug)
    model.load_weights(args.weights)
    tokens, noise = inputs()
    mel = model(mx.array(tokens), mx.array(noise))
    print(
        f"mel {tuple(mel.shape)}: range [{mel.min().item():.2f}, {mel.max().item():.2f}] dB, "
        f"mean {mel.mean().item():.2f} dB"
    )


if __name__ == "__main__":
    main()
