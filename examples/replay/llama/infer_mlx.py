"""The candidate: mlx-lm's Llama (MLX), unmodified, on the same config and weights.

``--plant-rope`` gives layer 0's attention a traditional RoPE (rotating adjacent pairs of each
head's features, where HF's Llama rotates its two halves): a planted bug to find.

Usage: trace run --backend mlx -o mlx.safetensors infer_mlx.py DATA_DIR [--plant-rope]
"""

import json
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.models import llama

data = Path(sys.argv[1])
config = json.loads((data / "config.json").read_text())
args = llama.ModelArgs(
    model_type="llama",
    hidden_size=config["hidden_size"],
    num_hidden_layers=config["num_hidden_layers"],
    intermediate_size=config["intermediate_size"],
    num_attention_heads=config["num_attention_heads"],
    num_key_value_heads=config["num_key_value_heads"],
    rms_norm_eps=config["rms_norm_eps"],
    vocab_size=config["vocab_size"],
    rope_theta=config.get("rope_parameters", config)["rope_theta"],  # transformers 5 nests it
    max_position_embeddings=config["max_position_embeddings"],
    tie_word_embeddings=config["tie_word_embeddings"],
)
model = llama.Model(args)
model.load_weights(list(mx.load(str(data / "weights.safetensors")).items()))
if "--plant-rope" in sys.argv[2:]:
    attention = model.model.layers[0].self_attn
    attention.rope = nn.RoPE(attention.rope.dims, traditional=True, base=args.rope_theta)

tokens = mx.array([[1, 5, 9, 3, 7, 2]])
logits = model(tokens)
mx.eval(logits)
print("logits", tuple(logits.shape), round(logits.mean().item(), 4))
