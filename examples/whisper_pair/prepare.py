"""Build a tiny random-weight Whisper in PyTorch and write both sides' weights and the test audio.

openai-whisper's model (torch) is the reference, mlx-whisper's (MLX) the candidate. No hub
download: the weights are random (seeded) and shared through safetensors. The torch state dict is
saved as it is; for MLX each tensor is renamed and laid out the way mlx-whisper's model holds it
(our own mapping, written from the two models' source):

- Conv1d weights (out, in, kernel) become (out, kernel, in): MLX convolutions are channels-last;
- the MLP `blocks.N.mlp.0` / `mlp.2` (a torch Sequential) become `blocks.N.mlp1` / `mlp2`;
- the encoder's sinusoidal positional embedding is computed by both models, not loaded.

Usage: python prepare.py OUT_DIR [--plant-bias]
(``--plant-bias`` adds 0.5 to the MLX side's ``encoder.blocks.1.mlp2.bias``: a planted bug to find.)
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from whisper.model import ModelDimensions, Whisper

DIMS = dict(
    n_mels=80,
    n_audio_ctx=50,
    n_audio_state=64,
    n_audio_head=4,
    n_audio_layer=2,
    n_vocab=96,
    n_text_ctx=16,
    n_text_state=64,
    n_text_head=4,
    n_text_layer=2,
)
SAMPLE_RATE = 16000


def random_model(seed: int = 0) -> Whisper:
    torch.manual_seed(seed)
    model = Whisper(ModelDimensions(**DIMS))
    with torch.no_grad():
        for name, p in model.named_parameters():  # some are torch.empty: give every one a value
            if name.endswith("bias"):
                p.normal_(0.0, 0.02)
            elif "ln" in name.split(".")[-2]:
                p.normal_(1.0, 0.05)
            else:
                p.normal_(0.0, 1.0 / np.sqrt(p.shape[-1] if p.ndim > 1 else 64))
    return model.eval()


def mlx_name_and_value(name: str, value: np.ndarray) -> tuple[str, np.ndarray] | None:
    if name in ("encoder.positional_embedding", "alignment_heads"):
        return None
    if name.endswith(("conv1.weight", "conv2.weight")):
        value = value.transpose(0, 2, 1)
    name = name.replace(".mlp.0.", ".mlp1.").replace(".mlp.2.", ".mlp2.")
    return name, np.ascontiguousarray(value)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model = random_model()
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(out / "torch_weights.safetensors"))
    (out / "dims.json").write_text(json.dumps(DIMS))
    mlx_dir = out / "mlx_model"
    mlx_dir.mkdir(exist_ok=True)
    mapped = dict(filter(None, (mlx_name_and_value(k, v) for k, v in state.items())))
    if "--plant-bias" in sys.argv:
        mapped["encoder.blocks.1.mlp2.bias"] = mapped["encoder.blocks.1.mlp2.bias"] + np.float32(0.5)
    save_file(mapped, str(mlx_dir / "weights.safetensors"))
    (mlx_dir / "config.json").write_text(json.dumps(DIMS))
    # one second of a chirp with a little noise: 100 mel frames, the encoder's 2 x n_audio_ctx
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    rng = np.random.default_rng(1)
    audio = 0.4 * np.sin(2 * np.pi * (200 + 1800 * t) * t) + 0.02 * rng.standard_normal(t.size)
    np.save(out / "audio.npy", audio.astype(np.float32))
    print(f"wrote {out}: torch_weights.safetensors, mlx_model/, audio.npy")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(Path(args[0] if args else "build/whisper_pair"))
