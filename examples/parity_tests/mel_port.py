"""The port of the mel front end: float32, vectorised differently, as it runs on the device.

Plant the bugs of a real fastai-to-PyTorch port of an audio classifier with the BUG
environment variable:

- ``BUG=frames``: the frame count is rounded up (``1 + ceil(n / HOP)``, the
  clip zero-padded to fit), so a clip the reference cuts into 312 frames
  gives 313 here;
- ``BUG=padding``: short clips are padded with 0.0 dB (full scale) instead of
  silence, as fastai did.
"""

import os

import numpy as np
from mel_reference import FLOOR_DB, HOP, N_FFT, N_FRAMES, TOP_DB, mel_filterbank
from numpy.lib.stride_tricks import sliding_window_view

import numtrace

BUG = os.environ.get("BUG", "")


def frontend(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if BUG == "frames":
        count = 1 + -(-audio.size // HOP)  # rounds up: one frame too many unless HOP divides the length
    else:
        count = 1 + audio.size // HOP
    extra = HOP * count - audio.size  # zeros after the clip, so that every frame is complete
    padded = np.pad(audio, (N_FFT // 2, N_FFT // 2 + max(extra, 0)))
    with numtrace.scope("frontend"):
        frames = numtrace.tap("frames", sliding_window_view(padded, N_FFT)[::HOP][:count])
        window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
        spectrum = np.fft.rfft(frames * window, axis=-1)
        power = numtrace.tap("power", (spectrum.real**2 + spectrum.imag**2).astype(np.float32))
        mel = numtrace.tap("mel", np.einsum("mf,tf->mt", mel_filterbank().astype(np.float32), power))
        db = np.float32(10.0) * np.log10(np.maximum(mel, np.float32(10.0 ** (FLOOR_DB / 10))))
        floor = max(db.max() - np.float32(TOP_DB), np.float32(FLOOR_DB))
        db = numtrace.tap("db", np.maximum(db, floor))
        missing = N_FRAMES - db.shape[1]
        pad_value = 0.0 if BUG == "padding" else floor
        features = np.pad(db, ((0, 0), (0, max(missing, 0))), constant_values=pad_value)[:, :N_FRAMES]
        return numtrace.tap("features", features)
