"""The candidate: mlx-whisper (MLX), unmodified, on the same weights (mapped) and audio.

Usage: trace run --backend mlx -o mlx.safetensors infer_mlx.py DATA_DIR
"""

import json
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx.utils import tree_unflatten
from mlx_whisper.audio import log_mel_spectrogram
from mlx_whisper.whisper import ModelDimensions, Whisper

data = Path(sys.argv[1]) / "mlx_model"
model = Whisper(ModelDimensions(**json.loads((data / "config.json").read_text())), mx.float32)
model.update(tree_unflatten(list(mx.load(str(data / "weights.safetensors")).items())))
mx.eval(model.parameters())

audio = mx.array(np.load(data.parent / "audio.npy"))
mel = log_mel_spectrogram(audio, n_mels=model.dims.n_mels)  # (frames, 80): channels last
tokens = mx.array([[1, 5, 9, 17, 33, 65]])
logits = model(mel[None], tokens)
print("logits", tuple(logits.shape), logits.mean().item())
