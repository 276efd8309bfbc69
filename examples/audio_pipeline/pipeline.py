"""A small audio front end, tapped stage by stage with numtrace.

framing -> Hann window -> STFT magnitude -> power -> mel (64 bins) -> dB
-> standardize (crop or pad to a fixed number of frames).

Run it twice and compare:

    trace run -o reference.safetensors pipeline.py --dtype float64
    trace run -o candidate.safetensors pipeline.py --dtype float32 --pad-with zero
    trace diff reference.safetensors candidate.safetensors

The candidate runs in float32 (numtrace calls that MATCH: the tolerance follows
the coarser dtype) and pads the dB spectrogram with 0.0 dB instead of the
silence level: the bug of an orca-call detector's fastai-to-PyTorch port (fastai
padded with full scale).
"""

import argparse

import numpy as np

import numtrace

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 160
N_MELS = 64
N_FRAMES = 312  # the model expects 312 frames: shorter clips are padded


def synthesize(seconds: float, dtype) -> np.ndarray:
    """A deterministic test signal: a chirp, a tone and a little noise."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    chirp = 0.5 * np.sin(2 * np.pi * (200 * t + 900 * t**2))
    tone = 0.2 * np.sin(2 * np.pi * 1200 * t)
    noise = 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return (chirp + tone + noise).astype(dtype)


def frame(signal: np.ndarray) -> np.ndarray:
    padded = np.pad(signal, N_FFT // 2, mode="reflect")
    count = 1 + (padded.size - N_FFT) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(count)[:, None]
    return padded[index]


def mel_filterbank(dtype) -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) triangular filters on the HTK mel scale."""

    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def to_hz(mel):
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(0.0), to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    bins = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (center - lower)
    falling = (upper - bins) / (upper - center)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(dtype)


def power_to_db(power: np.ndarray, top_db: float = 80.0) -> np.ndarray:
    db = 10.0 * np.log10(np.maximum(power, 1e-10))
    return np.maximum(db, db.max() - top_db)


def standardize(db: np.ndarray, pad_with: str) -> np.ndarray:
    """Crop or pad the time axis to N_FRAMES; pad with silence (the minimum) or with 0.0 dB."""
    if db.shape[1] >= N_FRAMES:
        return db[:, :N_FRAMES]
    pad_value = db.min() if pad_with == "min" else 0.0
    return np.pad(db, ((0, 0), (0, N_FRAMES - db.shape[1])), constant_values=pad_value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--pad-with", choices=["min", "zero"], default="min")
    parser.add_argument("--seconds", type=float, default=2.5)
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)

    audio = numtrace.tap("audio", synthesize(args.seconds, dtype))
    with numtrace.scope("frontend"):
        frames = numtrace.tap("frames", frame(audio))
        windowed = numtrace.tap("windowed", frames * np.hanning(N_FFT + 1)[:-1].astype(dtype))
        magnitude = numtrace.tap("stft", np.abs(np.fft.rfft(windowed, axis=-1)))
        power = numtrace.tap("power", magnitude**2)
        mel = numtrace.tap("mel", mel_filterbank(dtype) @ power.T)
        db = numtrace.tap("db", power_to_db(mel))
        features = numtrace.tap("standardized", standardize(db, args.pad_with))
    print(f"{args.dtype}: features {features.shape}, range [{features.min():.2f}, {features.max():.2f}] dB")


if __name__ == "__main__":
    main()
