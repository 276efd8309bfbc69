"""One small model written twice: a NumPy reference and a "port" with classic porting bugs.

The computation: audio -> frames -> Hann window -> |STFT| -> power -> mel ->
dB -> standardize to a fixed number of frames -> an encoder block (square
input projection, LayerNorm, GELU, output projection with a residual) -> an
ODE (Euler steps of a time-conditioned velocity field) -> a final projection.

The reference is written as plain functions with snake_case stage names; the
port as a class with its own style and names (``frontEnd/...``, MLX's
``encoder.layers.0.inProj``, ``decoder.finalProj``), so that every diff also
exercises name alignment. Both compute in float64; without bugs every stage
matches. Each bug in :data:`BUGS` changes the port in one place.
"""

from __future__ import annotations

import math

import numpy as np

import numtrace

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 160
N_MELS = 64
N_FRAMES = 200  # standardize pads 161 frames to 200
DIM = 64
ODE_STEPS = 4
DT = 0.25
GAIN = 10.0  # loud enough that a float16 power overflows

#: bug name -> what the port does wrong
BUGS = {
    "pad_zero": "pads the dB spectrogram with 0.0 dB instead of its minimum (silence)",
    "extra_frame": "frames one more window at the end (162 vs 161 frames), pads one frame less",
    "frame_shift": "starts framing one hop late (every frame is the reference's next one)",
    "wrong_window": "uses a symmetric Hann window instead of the periodic one",
    "float16_power": "computes the power spectrum in float16, which overflows",
    "wrong_filter_band": "builds mel filters 40-43 from the wrong FFT bins",
    "log_not_log10": "takes the natural log in the dB conversion",
    "db_reference": "converts to dB relative to the maximum instead of 1.0",
    "transposed_weight": "loads the square input projection transposed",
    "dropped_bias": "drops the input projection's bias",
    "layernorm_eps": "uses eps = 1e-2 in LayerNorm instead of 1e-5",
    "norm_gain_init": "initialises the LayerNorm gain to 0.01 (the encoder is suppressed 100x)",
    "gelu_tanh": "uses GELU's tanh approximation instead of erf",
    "dropped_residual": "forgets the encoder block's residual connection",
    "velocity_sign": "computes the ODE velocity with its sign flipped",
    "doubled_step": "takes a doubled Euler step (2 dt) at step 1",
    "mel_layout": "records the mel spectrogram as (frames, mels): a layout difference, not a bug",
}


def make_audio() -> np.ndarray:
    t = np.arange(int(1.6 * SAMPLE_RATE)) / SAMPLE_RATE
    chirp = 0.5 * np.sin(2 * np.pi * (200 * t + 1500 * t**2))
    tone = 0.2 * np.sin(2 * np.pi * 1200 * t) * (t > 0.4)
    noise = 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return GAIN * (chirp + tone + noise)


def make_weights() -> dict:
    rng = np.random.default_rng(1)
    return {
        "w_in": rng.standard_normal((DIM, N_MELS)) / math.sqrt(N_MELS),
        "b_in": 0.5 * rng.standard_normal(DIM),
        "gain": 1.0 + 0.1 * rng.standard_normal(DIM),
        "shift": np.zeros(DIM),  # LayerNorm bias as initialised
        "w_out": rng.standard_normal((DIM, DIM)) / math.sqrt(DIM),
        "b_out": 0.1 * rng.standard_normal(DIM),
        "w_v": rng.standard_normal((DIM, DIM)) / math.sqrt(DIM),
        "w_final": rng.standard_normal((DIM, N_MELS)) / math.sqrt(DIM),
        "b_final": rng.standard_normal(N_MELS),
    }


def mel_filterbank() -> np.ndarray:
    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def to_hz(mel):
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(0.0), to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    bins = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0.0, np.minimum((bins - lower) / (center - lower), (upper - bins) / (upper - center)))


# ----------------------------------------------------------------------------- reference


def _gelu_erf(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def reference(audio: np.ndarray, w: dict) -> None:
    tap = numtrace.tap
    tap("audio", audio)
    padded = np.pad(audio, N_FFT // 2, mode="reflect")
    count = 1 + (padded.size - N_FFT) // HOP
    frames = tap("frontend.frames", padded[np.arange(N_FFT)[None, :] + HOP * np.arange(count)[:, None]])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    windowed = tap("frontend.windowed", frames * window)
    spec = tap("frontend.spec", np.abs(np.fft.rfft(windowed, axis=-1)))
    power = tap("frontend.power", spec**2)
    mel = tap("frontend.mel", mel_filterbank() @ power.T)
    db = tap("frontend.log", 10.0 * np.log10(np.maximum(mel, 1e-10)))
    db = tap("frontend.db", np.maximum(db, db.max() - 80.0))
    pad = np.full((N_MELS, N_FRAMES - db.shape[1]), db.min())
    x = tap("frontend.standardized", np.concatenate([db[:, :N_FRAMES], pad], axis=1)[:, :N_FRAMES])
    tap("encoder.0.in_proj.weight", w["w_in"])
    h = tap("encoder.0.in_proj", x.T @ w["w_in"].T + w["b_in"])
    mean = h.mean(axis=1, keepdims=True)
    var = h.var(axis=1, keepdims=True)
    normed = tap("encoder.0.norm", (h - mean) / np.sqrt(var + 1e-5) * w["gain"] + w["shift"])
    act = tap("encoder.0.act", _gelu_erf(normed))
    state = tap("encoder.0.out", act @ w["w_out"].T + w["b_out"] + h)
    trajectory = []
    for k in range(ODE_STEPS):
        velocity = tap("ode.velocity", np.tanh(state @ w["w_v"] + 0.3 * k) - state)
        state = tap("ode.state", state + DT * velocity)
        trajectory.append(state)
    tap("ode.trajectory", np.stack(trajectory))
    tap("decoder.final_proj", (state @ w["w_final"] + w["b_final"]).T)


# ----------------------------------------------------------------------------- the port


class Port:
    """The same model as a port would write it; ``bugs`` switches the planted bugs on."""

    def __init__(self, weights: dict, bugs=()):
        unknown = set(bugs) - set(BUGS)
        if unknown:
            raise ValueError(f"unknown bugs {sorted(unknown)}")
        self.w, self.bugs = weights, set(bugs)
        fb = mel_filterbank()
        if "wrong_filter_band" in self.bugs:
            fb[40:44] = np.roll(fb[40:44], 3, axis=1)
        self.filters = fb

    def tap(self, name, value):
        return numtrace.tap(name, value)

    def frontend(self, audio):
        bug = self.bugs
        left = N_FFT // 2 + (-HOP if "frame_shift" in bug else 0)
        right = N_FFT // 2 + (HOP if "frame_shift" in bug else 0) + (HOP if "extra_frame" in bug else 0)
        padded = np.concatenate([audio[1 : left + 1][::-1], audio, audio[-right - 1 : -1][::-1]])
        n = (padded.size - N_FFT) // HOP + 1
        frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n]
        self.tap("frontEnd/frames", frames)
        if "wrong_window" in bug:
            window = np.hanning(N_FFT)
        else:
            window = np.sin(np.pi * np.arange(N_FFT) / N_FFT) ** 2
        windowed = self.tap("frontEnd/windowed", np.einsum("fn,n->fn", frames, window))
        spec = self.tap(
            "frontEnd/spec",
            np.hypot(*np.fft.rfft(windowed).view(np.float64).reshape(*windowed.shape[:1], -1, 2).transpose(2, 0, 1)),
        )
        power = spec.astype(np.float16) ** 2 if "float16_power" in bug else spec * spec
        power = self.tap("frontEnd/power", power)
        mel = np.einsum("mk,fk->mf", self.filters, power.astype(np.float64))
        self.tap("frontEnd/mel", mel.T if "mel_layout" in bug else mel)
        log = np.log if "log_not_log10" in bug else np.log10
        ref = mel.max() if "db_reference" in bug else 1.0
        db = self.tap("frontEnd/log", 10.0 * log(np.clip(mel, 1e-10, None) / ref))
        db = self.tap("frontEnd/db", np.clip(db, db.max() - 80.0, None))
        frames_kept = min(db.shape[1], N_FRAMES)
        out = np.full((N_MELS, N_FRAMES), 0.0 if "pad_zero" in bug else db.min())
        out[:, :frames_kept] = db[:, :frames_kept]
        return self.tap("frontEnd/standardized", out)

    def encoder(self, x):
        w, bug = self.w, self.bugs
        weight = w["w_in"].T.copy() if "transposed_weight" in bug else w["w_in"]
        self.tap("encoder.layers.0.inProj.weight", weight)
        h = np.einsum("td,ed->te", x.T, weight)
        if "dropped_bias" not in bug:
            h = h + w["b_in"]
        h = self.tap("encoder.layers.0.inProj", h)
        centered = h - h.mean(axis=-1, keepdims=True)
        eps = 1e-2 if "layernorm_eps" in bug else 1e-5
        gain = np.full(DIM, 0.01) * w["gain"] if "norm_gain_init" in bug else w["gain"]
        normed = centered / np.sqrt(np.mean(centered**2, axis=-1, keepdims=True) + eps) * gain + w["shift"]
        normed = self.tap("encoder.layers.0.norm", normed)
        if "gelu_tanh" in bug:
            act = 0.5 * normed * (1 + np.tanh(math.sqrt(2 / math.pi) * (normed + 0.044715 * normed**3)))
        else:
            act = _gelu_erf(normed)
        act = self.tap("encoder.layers.0.act", act)
        out = act @ w["w_out"].T + w["b_out"]
        if "dropped_residual" not in bug:
            out = out + h
        return self.tap("encoder.layers.0.out", out)

    def ode(self, state):
        w, bug = self.w, self.bugs
        states = []
        for k in range(ODE_STEPS):
            velocity = np.tanh(state @ w["w_v"] + 0.3 * k) - state
            if "velocity_sign" in bug:
                velocity = -velocity
            velocity = self.tap("ode.velocity", velocity)
            step = 2 * DT if "doubled_step" in bug and k == 1 else DT
            state = self.tap("ode.state", state + step * velocity)
            states.append(state)
        self.tap("ode.trajectory", np.stack(states))
        return state

    def __call__(self, audio):
        self.tap("audio", audio)
        state = self.ode(self.encoder(self.frontend(audio)))
        return self.tap("decoder.finalProj", (state @ self.w["w_final"] + self.w["b_final"]).T)


def traces(bugs=()) -> tuple:
    """``(reference trace, port trace)`` in memory, the port with ``bugs``."""
    audio, weights = make_audio(), make_weights()
    with numtrace.record() as ref:
        reference(audio, weights)
    with np.errstate(over="ignore"), numtrace.record() as port:
        Port(weights, bugs)(audio)
    return ref.trace, port.trace
