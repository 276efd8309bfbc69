#!/usr/bin/env bash
# openai-whisper (PyTorch) against mlx-whisper (MLX): a real third-party port, both unmodified,
# traced with tiny random weights. Sets up its own venv (the packages are not in `make test`'s).
#   examples/whisper_pair/run.sh            # venv in build/whisper-venv, traces in build/whisper_pair
#   WHISPER_VENV=/path/to/venv examples/whisper_pair/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${WHISPER_VENV:-$root/build/whisper-venv}"
out="$root/build/whisper_pair"
if [ ! -x "$venv/bin/trace" ] || ! "$venv/bin/python" -c "import whisper, mlx_whisper" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet -e "$root" "torch==2.13.0" "mlx[cpu]" pytest
    # their declared dependencies pull triton (GBs, GPU only): install them without, then what they import
    "$venv/bin/python" -m pip install --quiet --no-deps openai-whisper mlx-whisper
    "$venv/bin/python" -m pip install --quiet tiktoken more-itertools numba tqdm scipy huggingface_hub safetensors
fi
mkdir -p "$out"
"$venv/bin/python" "$here/prepare.py" "$out"
"$venv/bin/trace" run --backend torch -o "$out/torch.safetensors" "$here/infer_torch.py" "$out"
"$venv/bin/trace" run --backend mlx -o "$out/mlx.safetensors" "$here/infer_mlx.py" "$out"
"$venv/bin/trace" diff "$out/torch.safetensors" "$out/mlx.safetensors" || status=$?
echo "(trace diff exited with status ${status:-0})"
