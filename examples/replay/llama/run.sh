#!/usr/bin/env bash
# HF transformers' Llama (PyTorch) against mlx-lm's (MLX), both unmodified, tiny random weights
# shared through safetensors, a traditional RoPE planted in layer 0 of the MLX side; then
# `trace replay` and `trace diff --replay`. Sets up its own venv (the packages are not in
# `make test`'s).
#   examples/replay/llama/run.sh            # venv in build/llama-venv, traces in build/llama_replay
#   LLAMA_VENV=/path/to/venv examples/replay/llama/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venv="${LLAMA_VENV:-$root/build/llama-venv}"
out="$root/build/llama_replay"
if [ ! -x "$venv/bin/trace" ] || ! "$venv/bin/python" -c "import transformers, mlx_lm" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet -e "$root" "torch==2.13.0" "mlx[cpu]" transformers mlx-lm safetensors pytest
fi
mkdir -p "$out"
cd "$out"
"$venv/bin/python" "$here/prepare.py" data
"$venv/bin/trace" run --backend torch --inputs --weights -o hf.safetensors "$here/infer_hf.py" data
"$venv/bin/trace" replay --backend mlx -o replay.safetensors --candidate-out mlx.safetensors \
    hf.safetensors "$here/infer_mlx.py" data --plant-rope
"$venv/bin/trace" diff hf.safetensors mlx.safetensors --replay replay.safetensors || status=$?
echo "(trace diff exited with status ${status:-0})"
