"""openai-whisper (torch) against mlx-whisper (MLX), both unmodified: a real port nobody here wrote.

Opt-in: the two packages are not in `make test`'s environment (their declared dependencies pull
triton). `examples/whisper_pair/run.sh` sets up a venv with them and runs this file there:
    build/whisper-venv/bin/python -m pytest tests/backends/test_whisper_pair.py
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("mlx.core")
pytest.importorskip("whisper", reason="openai-whisper is not installed: examples/whisper_pair/run.sh")
pytest.importorskip("mlx_whisper", reason="mlx-whisper is not installed: examples/whisper_pair/run.sh")

import numtrace  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "whisper_pair"
pytestmark = pytest.mark.slow


def traced(tmp_path: Path, *plant: str):
    data = tmp_path / "data"
    run = [sys.executable, "-c", "from numtrace.cli import main; main()", "run"]
    for cmd in (
        [sys.executable, EXAMPLE / "prepare.py", data, *plant],
        [*run, "--backend", "torch", "-o", tmp_path / "torch.safetensors", EXAMPLE / "infer_torch.py", data],
        [*run, "--backend", "mlx", "-o", tmp_path / "mlx.safetensors", EXAMPLE / "infer_mlx.py", data],
    ):
        result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
    return numtrace.diff(tmp_path / "torch.safetensors", tmp_path / "mlx.safetensors")


# torch's MLP is a Sequential whose GELU is a module (`mlp.1`); mlx-whisper calls `nn.gelu` as a function
GELU_STAGES = [f"{side}.blocks.{n}.mlp.1" for side in ("encoder", "decoder") for n in (0, 1)]
# mlx-whisper's attention returns its logits (`q @ k`, masked, before the softmax) as a third output,
# blocks and decoder pass the cross-attention ones on; openai-whisper's SDPA path returns None there
ATTENTION_LOGITS = [
    "encoder.blocks.0.attn.2",
    "encoder.blocks.1.attn.2",
    "decoder.blocks.0.attn.2",
    "decoder.blocks.0.cross_attn.2",
    "decoder.blocks.0.2",
    "decoder.blocks.1.attn.2",
    "decoder.blocks.1.cross_attn.2",
    "decoder.blocks.1.2",
    "decoder.2.0",
    "decoder.2.1",
]


def test_the_clean_pair_has_no_divergent_stage_and_pairs_every_stage_with_a_counterpart(tmp_path):
    report = traced(tmp_path)
    assert report.counts == {"MATCH": 96, "SMALL": 0, "LARGE": 0, "MISSING": 14}
    # mlx-whisper's blocks do `x += y` on the previous block's output: still recorded as it was
    for name in ("encoder.blocks.0", "encoder.blocks.1", "decoder.blocks.0", "output"):
        assert report[name].verdict.value == "MATCH", name
    assert report.first_divergence is None and report.incomplete == []
    with (
        numtrace.load(tmp_path / "torch.safetensors") as torch_trace,
        numtrace.load(tmp_path / "mlx.safetensors") as mlx_trace,
    ):
        reference, candidate = list(torch_trace.order), list(mlx_trace.order)
    compared = [stage for stage in report.stages if stage.verdict.value != "MISSING"]
    # every reference stage is paired, but the four GELUs
    assert [stage.name for stage in report.stages if stage.only_in == "a"] == GELU_STAGES
    assert {stage.name for stage in compared} == set(reference) - set(GELU_STAGES)
    # every candidate stage is paired, but the attention logits: (batch, heads, queries, keys)
    only_b = [stage for stage in report.stages if stage.only_in == "b"]
    assert [stage.name for stage in only_b] == ATTENTION_LOGITS
    assert {stage.b.shape for stage in only_b} == {(1, 4, 50, 50), (1, 4, 6, 6), (1, 4, 6, 50)}
    assert {stage.name_b or stage.name for stage in compared} == set(candidate) - set(ATTENTION_LOGITS)
    # the renamed MLP halves are found by their values, the cached keys/values as the projections' twins
    assert report["encoder.blocks.0.mlp.0"].name_b == "encoder.blocks.0.mlp1"
    assert report["encoder.blocks.0.mlp.0"].pairing == "aligned"
    assert report["decoder.blocks.1.mlp.2"].name_b == "decoder.blocks.1.mlp2"
    assert report["decoder.blocks.1.cross_attn.1.1"].twin == ("b", "decoder.blocks.1.cross_attn.value")


def test_a_planted_bias_in_the_mlx_weights_is_found_where_it_is_born(tmp_path):
    report = traced(tmp_path, "--plant-bias")
    # the bias is mlp2's (torch: mlp.2) in encoder block 1: the divergence starts at that layer
    assert report.first_divergence == "encoder.blocks.1.mlp.2"
    assert report.root_cause == "encoder.blocks.1.mlp.2"
    assert report["encoder.blocks.1.mlp.0"].verdict.value == "MATCH"
    assert report["encoder.blocks.1.mlp.2"].verdict.value == "LARGE"
    assert report["encoder.blocks.1"].verdict.value == "LARGE"
    finding = report["encoder.blocks.1.mlp.2"].diagnosis[0]
    assert finding["kind"] == "offset" and finding["value"] == pytest.approx(0.5, rel=1e-3)
