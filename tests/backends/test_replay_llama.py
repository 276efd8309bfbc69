"""HF transformers' Llama (torch) against mlx-lm's (MLX), both unmodified, with a traditional RoPE
planted in layer 0 of the MLX side: examples/replay/llama.

Opt-in: the two packages are not in `make test`'s environment. `examples/replay/llama/run.sh`
sets up a venv with them; run this file there:
    build/llama-venv/bin/python -m pytest tests/backends/test_replay_llama.py
"""

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("mlx.core")
pytest.importorskip("transformers", reason="transformers is not installed: examples/replay/llama/run.sh")
pytest.importorskip("mlx_lm", reason="mlx-lm is not installed: examples/replay/llama/run.sh")

import numtrace  # noqa: E402
from numtrace.compare.pairing.module_inputs import is_recorded_input  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "replay" / "llama"
TRACE = [sys.executable, "-c", "from numtrace.cli import main; main()"]
ROPE = "model.layers.0.self_attn.Func.Func."
pytestmark = pytest.mark.slow


def _ok(*command) -> None:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    root = tmp_path_factory.mktemp("llama")
    _ok(sys.executable, EXAMPLE / "prepare.py", root / "data")
    hf, mlx = root / "hf.safetensors", root / "mlx.safetensors"
    _ok(*TRACE, "run", "--backend", "torch", "--inputs", "--weights", "-o", hf, EXAMPLE / "infer_hf.py", root / "data")
    replay = ("replay", "--backend", "mlx", "-o", root / "replay.safetensors", "--candidate-out", mlx, hf)
    _ok(*TRACE, *replay, EXAMPLE / "infer_mlx.py", root / "data", "--plant-rope")
    return root, hf, mlx


def test_the_rotations_are_the_own_errors_and_every_other_module_inherits(traces):
    root, hf, mlx = traces
    report = numtrace.diff(hf, mlx, replay=root / "replay.safetensors")
    assert report.own_errors == [ROPE + "0", ROPE + "1"] and report.root_cause == ROPE + "0"
    assert report[ROPE + "0"].name_b == "model.layers.0.self_attn.rope"
    own = {stage.name: stage.own for stage in report.stages if stage.own is not None}
    assert Counter(o.verdict.value for o in own.values()) == {"MATCH": 27, "LARGE": 6}
    within = {name: o.within for name, o in own.items() if o.within is not None}
    assert within == {
        "model.layers.0.self_attn": ROPE + "0",
        "model.layers.0": "model.layers.0.self_attn",
        "model": "model.layers.0",
        "output": "model",
    }
    assert report["model.layers.1.self_attn.Func.Func.0"].verdict.value == "LARGE"  # in total: inherited


def test_a_plain_diff_pairs_no_recorded_input_with_an_output(traces):
    _, hf, mlx = traces
    report = numtrace.diff(hf, mlx)
    assert report.first_divergence == report.root_cause == ROPE + "0"
    assert not [stage.name for stage in report.stages if is_recorded_input(stage.name)]
    left_out = report.ignored["a"]  # the MLX run recorded no inputs: the reference's are left out, and listed
    assert len(left_out) == 61 and all(map(is_recorded_input, left_out)) and report.ignored["b"] == []
    assert report[ROPE + "0"].name_b == "model.layers.0.self_attn.rope"
