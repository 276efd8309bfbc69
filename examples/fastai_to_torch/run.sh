#!/usr/bin/env bash
# Trace the fastai reference and its PyTorch port (neither script imports numtrace), then diff them.
# Usage: examples/fastai_to_torch/run.sh [OUTDIR [--pad-with min]]   (default OUTDIR: build/fastai_to_torch)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:-build/fastai_to_torch}"
shift || true  # what is left goes to the fastai script: `--pad-with min` runs it with the fix
TRACE="${TRACE:-trace}"
mkdir -p "$OUT"

"$TRACE" run --backend fastai -o "$OUT/fastai.safetensors" \
    "$HERE/fastai_pipeline.py" --state-dict "$OUT/weights.pt" "$@"

# The port's frontend functions are recorded under the names of the fastai Transforms they port.
"$TRACE" run --backend torch -o "$OUT/port.safetensors" \
    --probe-function port_frontend:synthesize_clip=data.x.SynthesizeClip \
    --probe-function port_frontend:mel_spectrogram=data.x.MelSpectrogram \
    --probe-function port_frontend:power_to_db=data.x.PowerToDb \
    --probe-function port_frontend:pad_spectrogram=data.x.PadSpectrogram \
    "$HERE/torch_port.py" --state-dict "$OUT/weights.pt"

# Exit status 1 here means a stage is LARGE: the point of this example.
"$TRACE" diff "$OUT/fastai.safetensors" "$OUT/port.safetensors"
