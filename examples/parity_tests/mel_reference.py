"""The reference mel front end: the implementation everyone trusts (float64, written plainly).

framing (centred, zero-padded) -> Hann window -> power spectrum -> mel (40 bins)
-> dB (80 dB below the peak, floor -100 dB) -> standardize: crop or pad the time
axis to N_FRAMES frames, padding with silence (the dB floor).

Each stage is tapped under ``frontend.*``; ``numtrace.tap`` costs nothing when
no recording is active.
"""

import numpy as np

import numtrace

SAMPLE_RATE = 16000
N_FFT = 256
HOP = 128
N_MELS = 40
N_FRAMES = 312  # the model expects 312 frames: shorter clips are padded, longer ones cropped
TOP_DB = 80.0
FLOOR_DB = -100.0


def frame_count(n_samples: int) -> int:
    """Frames of a centred STFT: one every HOP samples, the first centred on sample 0."""
    return 1 + n_samples // HOP


def frames_of(audio: np.ndarray) -> np.ndarray:
    padded = np.pad(audio, N_FFT // 2)
    starts = HOP * np.arange(frame_count(audio.size))
    return padded[starts[:, None] + np.arange(N_FFT)[None, :]]


def mel_filterbank() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) triangular filters on the HTK mel scale."""
    to_mel = lambda hz: 2595.0 * np.log10(1.0 + hz / 700.0)  # noqa: E731
    to_hz = lambda mel: 700.0 * (10.0 ** (mel / 2595.0) - 1.0)  # noqa: E731
    edges = to_hz(np.linspace(to_mel(0.0), to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    bins = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0.0, np.minimum((bins - lower) / (center - lower), (upper - bins) / (upper - center)))


def silence_db(db: np.ndarray) -> float:
    """The level of silence in a dB spectrogram: the floor the values are clipped to."""
    return max(float(db.max()) - TOP_DB, FLOOR_DB)


def frontend(audio: np.ndarray) -> np.ndarray:
    """Features (N_MELS, N_FRAMES) of a mono clip sampled at SAMPLE_RATE."""
    audio = np.asarray(audio, dtype=np.float64)
    with numtrace.scope("frontend"):
        frames = numtrace.tap("frames", frames_of(audio))
        spectrum = np.fft.rfft(frames * np.hanning(N_FFT + 1)[:-1], axis=-1)
        power = numtrace.tap("power", np.abs(spectrum) ** 2)
        mel = numtrace.tap("mel", mel_filterbank() @ power.T)
        db = 10.0 * np.log10(np.maximum(mel, 10.0 ** (FLOOR_DB / 10)))
        db = numtrace.tap("db", np.maximum(db, silence_db(db)))
        if db.shape[1] >= N_FRAMES:
            features = db[:, :N_FRAMES]
        else:
            features = np.pad(db, ((0, 0), (0, N_FRAMES - db.shape[1])), constant_values=silence_db(db))
        return numtrace.tap("features", features)
