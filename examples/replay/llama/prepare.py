"""Write a tiny Llama's config and random (seeded) weights, for HF transformers and mlx-lm alike.

The model is HF transformers' ``LlamaForCausalLM`` (2 layers, width 64, 4 query heads, 2
key/value heads): its config goes to ``config.json`` and every parameter, drawn from a seeded
normal distribution, to ``weights.safetensors``. mlx-lm's ``llama.Model`` names its parameters
as HF does, so both scripts load the same file. No hub download.

Usage: python prepare.py OUT_DIR
"""

import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from transformers import LlamaConfig, LlamaForCausalLM

CONFIG = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    rms_norm_eps=1e-6,
    tie_word_embeddings=False,
)


def random_weights(model: LlamaForCausalLM, seed: int = 0) -> dict[str, np.ndarray]:
    """Every parameter drawn anew: the norms' gains around 1, the matrices scaled by their width."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, p in sorted(model.state_dict().items()):
        if name.endswith("norm.weight"):
            value = 1.0 + 0.05 * rng.standard_normal(p.shape)
        else:
            value = rng.standard_normal(p.shape) / np.sqrt(p.shape[-1])
        weights[name] = value.astype(np.float32)
    return weights


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    config = LlamaConfig(**CONFIG)
    save_file(random_weights(LlamaForCausalLM(config)), str(out / "weights.safetensors"))
    config.to_json_file(str(out / "config.json"))
    print(f"wrote {out}: config.json, weights.safetensors")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "build/llama_replay"))
