"""examples/torch_to_mlx: a PyTorch decoder and its MLX port, unmodified scripts traced with `trace run`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("mlx.core")

import numtrace  # noqa: E402

pytestmark = pytest.mark.slow  # three `trace run` subprocesses (torch and mlx imports)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "torch_to_mlx"


def trace_run(tmp_path, backend, script, out, *args):
    cmd = [
        sys.executable,
        "-c",
        "from numtrace.cli import main; main()",
        "run",
        "--backend",
        backend,
        "-o",
        str(tmp_path / out),
        str(EXAMPLE / script),
        "--weights",
        str(tmp_path / "decoder.safetensors"),
        *args,
    ]
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT / "src")}
    )
    assert result.returncode == 0, result.stderr
    return tmp_path / out, result.stdout


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("torch_to_mlx")
    reference, said = trace_run(tmp, "torch", "decoder_torch.py", "torch.safetensors")
    assert "mean -5.79 dB" in said
    port, said = trace_run(tmp, "mlx", "decoder_mlx.py", "mlx.safetensors")
    assert "mean -7.25 dB" in said
    fixed, _ = trace_run(tmp, "mlx", "decoder_mlx.py", "mlx_fixed.safetensors", "--fixed")
    return reference, port, fixed


def test_the_traces_hold_every_stage_in_execution_order(traces):
    reference, port, _ = traces
    with numtrace.load(reference) as a, numtrace.load(port) as b:
        assert a.order == b.order
        assert len(a.order) == 97
        assert a.order[:5] == ["encoder.embed", "encoder.ff1", "encoder.ff2", "encoder.norm", "encoder"]
        # 10 Euler steps, each calling the estimator twice (conditional, unconditional)
        assert "step@9" in a.order and "step@10" not in a.order and "step.estimator@19" in a.order
        assert a.order[-2:] == ["final_proj", "output"]
        assert b.info("output").shape == (1, 80, 312)


def test_the_buggy_port_diverges_at_final_proj_by_minus_1_46_db(traces):
    reference, port, _ = traces
    report = numtrace.diff(reference, port)
    assert report.first_divergence == "final_proj"
    assert report.counts == {"MATCH": 95, "SMALL": 0, "LARGE": 2, "MISSING": 0}
    stage = report["final_proj"]
    assert stage.b.mean - stage.a.mean == pytest.approx(-1.46, abs=0.005)
    assert stage.diff.abs_mean == pytest.approx(1.46, abs=0.005)
    assert stage.diff.abs_max == pytest.approx(1.46, abs=0.005)  # the same everywhere: an offset
    assert not report


def test_the_buggy_port_is_diagnosed_as_an_offset(traces):
    reference, port, _ = traces
    findings = numtrace.diff(reference, port)["final_proj"].diagnosis
    offsets = [f for f in findings if f["kind"] == "offset"]
    assert offsets and offsets[0]["value"] == pytest.approx(-1.46, abs=0.005)


def test_the_fixed_port_matches_everywhere(traces):
    reference, _, fixed = traces
    report = numtrace.diff(reference, fixed)
    assert report.counts == {"MATCH": 97, "SMALL": 0, "LARGE": 0, "MISSING": 0}
    assert report.first_divergence is None and report
