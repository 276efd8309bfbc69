"""Test clips: a deterministic one for the golden trace, and a hypothesis strategy for the rest.

A :class:`Clip` is a small recipe (length, kind, amplitude, seed) rather than
an array, so that hypothesis shrinks it and prints it readably:
``Clip(samples=1, kind='tone', amplitude=1.0, seed=0)``.
"""

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from mel_reference import SAMPLE_RATE

KINDS = ("tone", "silence", "noise", "square", "click", "chirp")
#: amplitudes: full scale, and the extremes (near silence, far beyond full scale)
AMPLITUDES = (1.0, 1e-6, 1e-3, 1e4)


@dataclass(frozen=True)
class Clip:
    samples: int
    kind: str = "tone"
    amplitude: float = 1.0
    seed: int = 0

    def audio(self) -> np.ndarray:
        t = np.arange(self.samples) / SAMPLE_RATE
        rng = np.random.default_rng(self.seed)
        if self.kind == "silence":
            x = np.zeros(self.samples)
        elif self.kind == "tone":
            x = np.sin(2 * np.pi * 440.0 * t) + 0.01 * rng.standard_normal(self.samples)
        elif self.kind == "noise":
            x = rng.standard_normal(self.samples)
        elif self.kind == "square":  # full scale all the time
            x = np.sign(np.sin(2 * np.pi * 220.0 * t + 0.1))
        elif self.kind == "click":  # one sample, silence elsewhere
            x = np.zeros(self.samples)
            x[self.seed % max(self.samples, 1)] = 1.0
        elif self.kind == "chirp":
            x = 0.5 * np.sin(2 * np.pi * (200.0 * t + 900.0 * t**2)) + 0.2 * np.sin(2 * np.pi * 1200.0 * t)
        else:
            raise ValueError(f"unknown clip kind {self.kind!r}")
        return self.amplitude * x


#: half a second and one sample: 63 frames, so the features are padded (to 312 frames)
GOLDEN_CLIP = Clip(samples=8001, kind="chirp")
#: a clip the reference cuts into exactly 312 frames (its length is not a multiple of the hop)
FULL_CLIP = Clip(samples=39_873, kind="chirp")


def clips(max_samples: int = 48_001) -> st.SearchStrategy:
    """Odd lengths from 1 sample to 3 s (shorter and longer than 312 frames), every kind and amplitude."""
    return st.builds(
        Clip,
        samples=st.integers(0, max_samples // 2).map(lambda k: 2 * k + 1),
        kind=st.sampled_from(KINDS),
        amplitude=st.sampled_from(AMPLITUDES),
        seed=st.integers(0, 2**16 - 1),
    )
