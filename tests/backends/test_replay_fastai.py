"""Replay within one framework: a fastai Learner (the reference) against its plain-PyTorch port,
examples/fastai_to_torch, both unmodified. The reference's data pipeline pads with 0 dB and the
port's with silence, so every module of the port is LARGE; replayed on the reference's inputs,
each one's own error is MATCH: the model is ported right and its error is inherited. A scaled
weight planted in the port is then the one own error, and named as such. The other way round,
the Learner is the candidate (``trace replay --backend fastai``), replayed on the port's inputs."""

from pathlib import Path

import pytest

pytest.importorskip("fastai")

from torch_models import trace_cli  # noqa: E402

import numtrace  # noqa: E402

pytestmark = pytest.mark.slow  # each test starts `trace` processes that import torch and fastai

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastai_to_torch"

SCALED_PORT = """
import sys, torch
sys.path.insert(0, sys.argv.pop(1))
import torch_port

load = torch.load

def scaled(*args, **kwargs):
    weights = load(*args, **kwargs)
    weights["7.weight"] = weights["7.weight"] * 1.5  # the port's first Linear, scaled
    return weights

torch_port.torch.load = scaled
torch_port.main()
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay_fastai")
    out = root / "fastai.safetensors"
    args = ("run", "--backend", "fastai", "--inputs", "--weights", "-o", out, EXAMPLE / "fastai_pipeline.py")
    result = trace_cli(*args, "--state-dict", root / "weights.pt", cwd=root)
    assert result.returncode == 0, result.stderr
    return root, out


def _replay(root, reference, script, name):
    replayed, port = root / f"{name}.replay.safetensors", root / f"{name}.safetensors"
    args = ("replay", "--backend", "torch", "-o", replayed, "--candidate-out", port, reference, script)
    result = trace_cli(*args, *(() if name == "port" else (EXAMPLE,)), "--state-dict", root / "weights.pt", cwd=root)
    assert result.returncode == 0, result.stderr
    return result, numtrace.diff(reference, port, replay=replayed)


def test_every_module_of_a_correct_port_only_inherits(reference):
    root, out = reference
    result, report = _replay(root, out, EXAMPLE / "torch_port.py", "port")
    assert "replayed 22 of 22 module calls" in result.stderr
    replayed = [stage for stage in report.stages if stage.own is not None]
    assert len(replayed) == 22
    assert all(stage.own.verdict.value == "MATCH" for stage in replayed)
    assert report["0"].verdict.value == "LARGE" and report["0"].own.inherited  # fed the 0 dB padding
    assert report.own_errors == []


def test_a_scaled_weight_in_the_port_is_its_own_error(reference):
    root, out = reference
    (root / "scaled_port.py").write_text(SCALED_PORT)
    _, report = _replay(root, out, root / "scaled_port.py", "scaled")
    assert report.own_errors == ["7"]
    assert report.root_cause == "7"
    scale = report["7"].own.diagnosis[0]
    assert scale.kind == "weight_scale" and scale["factor"] == pytest.approx(1.5, rel=1e-4)
    assert report["8"].own.verdict.value == "MATCH" and report["output"].own.within == "7"


def test_a_fastai_candidate_is_replayed_on_the_ports_inputs(reference):
    root, _ = reference
    port = root / "port_reference.safetensors"
    args = ("run", "--backend", "torch", "--inputs", "--weights", "-o", port, EXAMPLE / "torch_port.py")
    result = trace_cli(*args, "--state-dict", root / "weights.pt", cwd=root)
    assert result.returncode == 0, result.stderr
    replayed, learner = root / "learner.replay.safetensors", root / "learner.safetensors"
    args = ("replay", "--backend", "fastai", "-o", replayed, "--candidate-out", learner, port)
    result = trace_cli(*args, EXAMPLE / "fastai_pipeline.py", "--state-dict", root / "again.pt", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "replayed 22 of 22 module calls" in result.stderr
    report = numtrace.diff(port, learner, replay=replayed)
    with numtrace.load(learner) as candidate:  # run as fastai: its callback recorded the data pipeline
        assert "data.x.PadSpectrogram" in candidate.order
    own = [stage for stage in report.stages if stage.own is not None]
    assert len(own) == 22 and all(stage.own.verdict.value == "MATCH" for stage in own)
    # the Learner's 0 dB padding makes its first module LARGE in total: inherited, not its own
    assert report["0"].verdict.value == "LARGE" and report["0"].own.inherited
    assert report.own_errors == [] and report.root_cause == "0"
