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


def test_the_clean_pair_has_no_divergent_stage(tmp_path):
    report = traced(tmp_path)
    counts = report.counts
    assert counts["LARGE"] == 0 and counts["SMALL"] == 0 and counts["MATCH"] >= 50
    # mlx-whisper's blocks do `x += y` on the previous block's output: still recorded as it was
    for name in ("encoder.blocks.0", "encoder.blocks.1", "decoder.blocks.0", "output"):
        assert report[name].verdict.value == "MATCH", name
    assert report.first_divergence is None and report.incomplete == []


def test_a_planted_bias_in_the_mlx_weights_is_found_where_it_is_born(tmp_path):
    report = traced(tmp_path, "--plant-bias")
    assert report.first_divergence == "encoder.blocks.1" and report.root_cause == "encoder.blocks.1"
    assert report["encoder.blocks.0"].verdict.value == "MATCH"
    assert report["encoder.blocks.1"].verdict.value == "LARGE"
    finding = report["encoder.blocks.1"].diagnosis[0]
    assert finding["kind"] == "offset" and finding["value"] == pytest.approx(0.5, rel=1e-3)
