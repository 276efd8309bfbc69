"""The port's audio frontend: plain PyTorch functions, one per fastai Transform."""

import torch
import torch.nn.functional as F
from clips import CLIPS, HOP, N_FFT, N_FRAMES, N_MELS, SAMPLE_RATE, TOP_DB


def synthesize_clip(i: int) -> torch.Tensor:
    seconds, pitch, _ = CLIPS[i]
    t = torch.arange(int(seconds * SAMPLE_RATE), dtype=torch.float64) / SAMPLE_RATE
    tone = sum(torch.sin(2 * torch.pi * k * pitch * t) / k for k in (1, 2, 3))
    noise = torch.randn(t.shape, generator=torch.Generator().manual_seed(i), dtype=torch.float64)
    return (0.3 * tone + 0.02 * noise).float()


def mel_filters() -> torch.Tensor:
    hz = torch.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1, dtype=torch.float64)
    top = 2595.0 * torch.log10(torch.tensor(1.0 + (SAMPLE_RATE / 2.0) / 700.0, dtype=torch.float64))
    edges = 700.0 * (10.0 ** (torch.linspace(0, float(top), N_MELS + 2, dtype=torch.float64) / 2595.0) - 1.0)
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising, falling = (hz - lower) / (center - lower), (upper - hz) / (upper - center)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


def mel_spectrogram(wave: torch.Tensor) -> torch.Tensor:
    spec = torch.stft(wave, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
    return mel_filters() @ spec.abs() ** 2


def power_to_db(power: torch.Tensor) -> torch.Tensor:
    db = 10.0 * torch.log10(torch.clamp(power, min=1e-10) / power.max())
    return torch.clamp(db, min=-TOP_DB)


def pad_spectrogram(db: torch.Tensor) -> torch.Tensor:
    """Crop or pad to N_FRAMES, padding with silence (the spectrogram's minimum)."""
    if db.shape[-1] >= N_FRAMES:
        return db[..., :N_FRAMES]
    return F.pad(db, (0, N_FRAMES - db.shape[-1]), value=float(db.min()))
