"""The reference: openai-whisper (PyTorch), unmodified, on the prepared weights and audio.

Usage: trace run --backend torch -o torch.safetensors infer_torch.py DATA_DIR
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from whisper.audio import log_mel_spectrogram
from whisper.model import ModelDimensions, Whisper

data = Path(sys.argv[1])
model = Whisper(ModelDimensions(**json.loads((data / "dims.json").read_text())))
model.load_state_dict(load_file(str(data / "torch_weights.safetensors")))
model.eval()

audio = torch.from_numpy(np.load(data / "audio.npy"))
mel = log_mel_spectrogram(audio, n_mels=model.dims.n_mels)  # (80, frames)
tokens = torch.tensor([[1, 5, 9, 17, 33, 65]])
with torch.no_grad():
    logits = model(mel[None], tokens)
print("logits", tuple(logits.shape), float(logits.mean()))
