"""A PyTorch model and its MLX port, same weights through safetensors: all MATCH; planted bugs localized."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
mx = pytest.importorskip("mlx.core")

import numtrace  # noqa: E402
from numtrace.compare import ToleranceTable  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # mlx_ports.py, beside this file, whatever pytest's import mode
import mlx_ports as ports  # noqa: E402

SRC = HERE.parents[1] / "src"


@pytest.fixture(scope="module")
def torch_traces(tmp_path_factory):
    """{kind: (weights path, torch trace)} for the plain model and the one with a Sequential conv stem."""
    out = {}
    x = torch.from_numpy(ports.inputs())
    for kind in ("model", "stem"):
        model = ports.build_torch(kind)
        weights = ports.export_weights(model, tmp_path_factory.mktemp(kind) / "weights.safetensors")
        with numtrace.record() as rec, numtrace.watch(model), torch.no_grad():
            model(x)
        out[kind] = (weights, rec.trace)
    return out


def mlx_trace(weights, kind="model", bug=None):
    model = ports.build_mlx(weights, kind, bug)
    with numtrace.record() as rec, numtrace.watch(model):
        model(mx.array(ports.inputs()))
    return rec.trace


def test_the_port_matches_stage_by_stage(torch_traces):
    weights, reference = torch_traces["model"]
    report = numtrace.diff(reference, mlx_trace(weights))
    assert report.counts == {"MATCH": 32, "SMALL": 0, "LARGE": 0, "MISSING": 0}
    assert report.first_divergence is None
    # conv, norms, attention with RoPE, MLP all compared, and well inside float32's tolerance
    names = [stage.name for stage in report.stages]
    for stage in ("conv_in", "blocks.0.norm1", "blocks.0.attn.rope@1", "blocks.0.attn", "blocks.1.mlp.act", "output"):
        assert stage in names
    assert max(stage.diff.max_ratio for stage in report.stages) < 0.05


def test_the_port_with_a_sequential_conv_stem_matches_with_no_options(torch_traces):
    # torch `stem.0` (N, C, L) pairs with MLX `stem.layers.0` (N, L, C): the compare engine's
    # name rule (`layers.N` <-> `N`) and layout rule (an axis permutation) do it, with no option.
    weights, reference = torch_traces["stem"]
    report = numtrace.diff(reference, mlx_trace(weights, "stem"))
    assert report.counts == {"MATCH": 34, "SMALL": 0, "LARGE": 0, "MISSING": 0}
    assert report.first_divergence is None
    conv = report["stem.0"]
    assert conv.name_b == "stem.layers.0"
    assert conv.a.shape == (2, ports.DIM, ports.FRAMES) and conv.b.shape == (2, ports.FRAMES, ports.DIM)
    assert {"kind": "layout", "perm": [0, 2, 1]} in conv.diagnosis


@pytest.mark.parametrize(
    "bug, module",
    [
        ("eps", "blocks.0.norm1"),  # LayerNorm eps 1e-6 instead of 1e-5
        ("nhwc", "conv_in"),  # NLC conv output treated as NCL (reshape instead of transpose)
        ("rope", "blocks.0.attn.rope"),  # traditional (interleaved) RoPE instead of rotate-half
        ("gelu", "blocks.0.mlp.act"),  # GELU's sigmoid approximation instead of erf
    ],
)
def test_a_planted_port_bug_is_reported_at_its_module(torch_traces, bug, module):
    weights, reference = torch_traces["model"]
    report = numtrace.diff(reference, mlx_trace(weights, bug=bug))
    assert report.first_divergence == module
    assert report[module].verdict.value == "LARGE"
    before = [s for s in report.stages[: [s.name for s in report.stages].index(module)]]
    assert all(s.verdict.value == "MATCH" for s in before)
    assert not report


def test_the_tanh_gelu_approximation_hides_in_float32_tolerance_but_not_in_a_tight_one(torch_traces):
    weights, reference = torch_traces["model"]
    candidate = mlx_trace(weights, bug="gelu_tanh")
    assert numtrace.diff(reference, candidate).first_divergence is None  # |error| < 5e-4: within sqrt(eps)
    tight = ToleranceTable.from_options(["1e-5"], None)
    assert numtrace.diff(reference, candidate, tolerances=tight).first_divergence == "blocks.0.mlp.act"


# -- both as unmodified scripts through `trace run` --------------------------------------------------

TORCH_SCRIPT = """
import sys, torch
sys.path.insert(0, {here!r})
import mlx_ports as ports
model = ports.build_torch("model")
ports.export_weights(model, sys.argv[1])
with torch.no_grad():
    print(model(torch.from_numpy(ports.inputs())).abs().max().item())
"""

MLX_SCRIPT = """
import sys
import mlx.core as mx
sys.path.insert(0, {here!r})
import mlx_ports as ports
model = ports.build_mlx(sys.argv[1], "model", sys.argv[2] if len(sys.argv) > 2 else None)
print(model(mx.array(ports.inputs())).abs().max().item())
"""


def run_script(tmp_path, backend, source, *args):
    script = tmp_path / f"{backend}_port.py"
    script.write_text(source.format(here=str(HERE)))
    out = tmp_path / f"{backend}{'_' + args[-1] if len(args) > 1 else ''}.safetensors"
    cmd = [
        sys.executable,
        "-c",
        "from numtrace.cli import main; main()",
        "run",
        "--backend",
        backend,
        "-o",
        str(out),
        str(script),
        *map(str, args),
    ]
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(SRC)}
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.slow
def test_unmodified_torch_and_mlx_scripts_traced_with_trace_run_match(tmp_path):
    weights = tmp_path / "weights.safetensors"
    reference = run_script(tmp_path, "torch", TORCH_SCRIPT, weights)
    port = run_script(tmp_path, "mlx", MLX_SCRIPT, weights)
    report = numtrace.diff(reference, port)
    assert report.counts == {"MATCH": 32, "SMALL": 0, "LARGE": 0, "MISSING": 0}
    with numtrace.load(port) as trace:
        assert trace.order[:2] == ["conv_in", "blocks.0.norm1"] and trace.order[-1] == "output"
    buggy = run_script(tmp_path, "mlx", MLX_SCRIPT, weights, "rope")
    assert numtrace.diff(reference, buggy).first_divergence == "blocks.0.attn.rope"
