"""The reference: a fastai audio classifier (Datasets + Transforms, Learner.get_preds).

Its PadSpectrogram transform pads the dB spectrogram with 0.0 dB, which is
full scale (the loudest value after ``ref=max``), not silence: the bug of
the orca-call detector's real port. Written as plain fastai, with no numtrace in it; trace it with

    trace run --backend fastai -o fastai.safetensors fastai_pipeline.py --state-dict weights.pt
"""

import argparse

import torch
from clips import CLIPS, HOP, N_FFT, N_FRAMES, N_MELS, SAMPLE_RATE, TOP_DB
from fastai.data.core import Datasets
from fastai.layers import AdaptiveConcatPool2d
from fastai.learner import Learner
from fasttransform.transform import Transform
from torch import nn


class SynthesizeClip(Transform):
    """Clip index -> waveform: a tone with two harmonics and a little noise."""

    def encodes(self, i: int) -> torch.Tensor:
        seconds, pitch, _ = CLIPS[i]
        t = torch.arange(int(seconds * SAMPLE_RATE), dtype=torch.float64) / SAMPLE_RATE
        tone = sum(torch.sin(2 * torch.pi * k * pitch * t) / k for k in (1, 2, 3))
        noise = torch.randn(t.shape, generator=torch.Generator().manual_seed(i), dtype=torch.float64)
        return (0.3 * tone + 0.02 * noise).float()


class MelSpectrogram(Transform):
    """Waveform -> mel power spectrogram (n_mels, frames), HTK mel scale."""

    order = 1

    def __init__(self):
        super().__init__()
        hz = torch.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1, dtype=torch.float64)
        mel = lambda f: 2595.0 * torch.log10(1.0 + f / 700.0)  # noqa: E731
        edges = 700.0 * (
            10.0
            ** (
                torch.linspace(0, float(mel(torch.tensor(SAMPLE_RATE / 2.0))), N_MELS + 2, dtype=torch.float64) / 2595.0
            )
            - 1.0
        )
        lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
        rising, falling = (hz - lower) / (center - lower), (upper - hz) / (upper - center)
        self.filters = torch.clamp(torch.minimum(rising, falling), min=0.0).float()

    def encodes(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
        return self.filters @ spec.abs() ** 2


class PowerToDb(Transform):
    """Power -> dB relative to the clip's maximum, floored at -TOP_DB."""

    order = 2

    def encodes(self, power: torch.Tensor) -> torch.Tensor:
        db = 10.0 * torch.log10(torch.clamp(power, min=1e-10) / power.max())
        return torch.clamp(db, min=-TOP_DB)


class PadSpectrogram(Transform):
    """Crop or pad the time axis to N_FRAMES frames, padding with 0.0 dB (the bug) or the minimum."""

    order = 3

    def __init__(self, pad_with: str = "zero"):
        super().__init__()
        self.pad_with = pad_with

    def encodes(self, db: torch.Tensor) -> torch.Tensor:
        if db.shape[-1] >= N_FRAMES:
            return db[..., :N_FRAMES]
        value = float(db.min()) if self.pad_with == "min" else 0.0
        return nn.functional.pad(db, (0, N_FRAMES - db.shape[-1]), value=value)


def label(i: int) -> str:
    return CLIPS[i][2]


def build_model() -> nn.Module:
    """A small CNN with fastai's concat-pool head (as in the orca-call detector, scaled down)."""
    return nn.Sequential(
        nn.Unflatten(1, (1, N_MELS)),
        nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2)),
        nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True)),
        AdaptiveConcatPool2d(),
        nn.Flatten(),
        nn.BatchNorm1d(32),
        nn.Dropout(0.25),
        nn.Linear(32, 16),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(16),
        nn.Dropout(0.5),
        nn.Linear(16, 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dict", default="weights.pt", help="where to save the model's weights for the port")
    parser.add_argument("--pad-with", choices=["zero", "min"], default="zero", help="zero: the bug; min: the fix")
    args = parser.parse_args()

    torch.manual_seed(0)
    index = list(range(len(CLIPS)))
    # Transforms are listed out of order on purpose: fastai sorts them by `order`.
    dsets = Datasets(
        index,
        tfms=[[PadSpectrogram(args.pad_with), SynthesizeClip(), PowerToDb(), MelSpectrogram()], [label]],
        splits=[index, index],
    )
    dls = dsets.dataloaders(bs=len(CLIPS), num_workers=0)
    learn = Learner(dls, build_model(), loss_func=nn.CrossEntropyLoss())
    torch.save(learn.model.state_dict(), args.state_dict)

    preds, _ = learn.get_preds(dl=dls.test_dl(index, num_workers=0))
    for (seconds, pitch, _), p in zip(CLIPS, preds.softmax(-1)):
        print(f"fastai: {seconds:.1f} s at {pitch:.0f} Hz -> p(call) = {p[0]:.3f}")


if __name__ == "__main__":
    main()
