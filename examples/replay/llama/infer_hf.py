"""The reference: HF transformers' Llama (PyTorch), unmodified, on the prepared weights.

Usage: trace run --backend torch --inputs --weights -o hf.safetensors infer_hf.py DATA_DIR
"""

import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

data = Path(sys.argv[1])
model = LlamaForCausalLM(LlamaConfig.from_json_file(str(data / "config.json")))
model.load_state_dict(load_file(str(data / "weights.safetensors")))
model.eval()

tokens = torch.tensor([[1, 5, 9, 3, 7, 2]])
with torch.no_grad():
    logits = model(tokens).logits
print("logits", tuple(logits.shape), round(float(logits.mean()), 4))
