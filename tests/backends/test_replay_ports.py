"""Own error vs inherited error on ports of our own: a PyTorch model and its MLX port (weights
shared through safetensors), both run unmodified, with bugs planted in the port. The reference is
recorded with ``trace run --inputs``; ``trace replay`` runs the candidate's modules on its inputs.
"""

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("mlx.core")

import numtrace
from numtrace.compare.own import below_tolerance
from numtrace.replay.command import replay_script
from numtrace.run import run_script
from report_schema import check_report  # noqa: E402

TORCH = """
import sys
import torch
from safetensors.torch import load_file, save_file
from torch import nn

BUGS = set(sys.argv[2:])

class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.act = nn.GELU(approximate="tanh" if "--gelu-tanh" in BUGS else "none")
        self.norm = nn.LayerNorm(d, eps=0.1 if "--eps" in BUGS else 1e-5)
    def forward(self, x):
        return self.norm(x + self.act(self.fc(x)))

class Model(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3, padding=1)
        self.embed = nn.Linear(4, d)
        self.blocks = nn.ModuleList([Block(d) for _ in range(3)])
        self.head = nn.Linear(d, 2)
    def forward(self, x):  # x: (batch, channels, length), as torch convolutions take it
        x = self.embed(self.conv(x).transpose(1, 2))
        for block in self.blocks:
            x = block(x)
        return self.head(x)

torch.manual_seed(0)
model = Model().eval()
if sys.argv[1].startswith("save="):
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, sys.argv[1][5:])
else:
    weights = load_file(sys.argv[1])
    if weights["conv.weight"].shape[1] != 4:  # saved by the MLX side: (out, kernel, in)
        weights["conv.weight"] = weights["conv.weight"].permute(0, 2, 1).contiguous()
    model.load_state_dict(weights)
with torch.no_grad():
    if "--no-bias" in BUGS:
        model.embed.bias.zero_()
    if "--transpose" in BUGS:
        model.blocks[1].fc.weight.copy_(model.blocks[1].fc.weight.T.clone())
    x = __import__("numpy").random.default_rng(1).standard_normal((2, 24, 4)).astype("float32")
    model(torch.from_numpy(x).transpose(1, 2))
"""

MLX = """
import sys
import mlx.core as mx
import mlx.nn as nn
import numpy as np

BUGS = set(sys.argv[2:])

class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.act = nn.GELU(approx="precise" if "--gelu-tanh" in BUGS else "none")
        self.norm = nn.LayerNorm(d, eps=0.1 if "--eps" in BUGS else 1e-5)
    def __call__(self, x):
        return self.norm(x + self.act(self.fc(x)))

class Model(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3, padding=1)
        self.embed = nn.Linear(4, d)
        self.blocks = [Block(d) for _ in range(3)]
        self.head = nn.Linear(d, 2)
    def __call__(self, x):  # x: (batch, length, channels), as MLX convolutions take it
        x = self.embed(self.conv(x))
        for block in self.blocks:
            x = block(x)
        return self.head(x)

model = Model()
weights = mx.load(sys.argv[1])
weights["conv.weight"] = weights["conv.weight"].transpose(0, 2, 1)  # torch's (out, in, kernel)
model.load_weights(list(weights.items()))
if "--no-bias" in BUGS:
    model.embed.bias = mx.zeros_like(model.embed.bias)
if "--transpose" in BUGS:
    model.blocks[1].fc.weight = model.blocks[1].fc.weight.T
x = mx.array(np.random.default_rng(1).standard_normal((2, 24, 4)).astype("float32"))
mx.eval(model(x))
"""


@pytest.fixture(scope="module")
def ports(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay_ports")
    (root / "torch_model.py").write_text(TORCH)
    (root / "mlx_model.py").write_text(MLX)
    weights = root / "weights.safetensors"
    reference = root / "reference.safetensors"
    result = run_script(
        str(root / "torch_model.py"), [f"save={weights}"], str(reference), backend="torch", inputs=True, weights=True
    )
    assert result.exit_code == 0
    return root, weights, reference


def _replay(root, reference, script, backend, args, name):
    replayed, candidate = root / f"{name}.replay.safetensors", root / f"{name}.safetensors"
    result = replay_script(
        str(reference), str(root / script), args, str(replayed), backend=backend, candidate_out=str(candidate)
    )
    assert result.exit_code == 0, result.status
    report = numtrace.diff(str(reference), str(candidate), replay=str(replayed))
    return result, report


def _own(report):
    return {stage.name: stage.own.verdict.value for stage in report.stages if stage.own is not None}


def test_a_correct_port_replays_to_match_everywhere(ports):
    root, weights, reference = ports
    result, report = _replay(root, reference, "mlx_model.py", "mlx", [str(weights)], "correct")
    assert result.skipped == {} and result.differing == []
    assert len(result.replayed) == 16  # conv, embed, 3 x (fc, act, norm, block), head, the model
    assert set(_own(report).values()) == {"MATCH"}
    assert report.own_errors == [] and report.first_divergence is None


def test_an_early_bug_is_own_there_and_inherited_after(ports):
    root, weights, reference = ports
    _, report = _replay(root, reference, "mlx_model.py", "mlx", [str(weights), "--no-bias"], "early")
    own = _own(report)
    assert own["embed"] == "LARGE"
    later = [s for s in report.stages if s.own is not None and s.name not in ("conv", "embed", "output")]
    assert len(later) == 13  # 3 x (fc, act, norm, the block), head
    assert all(stage.verdict.value == "LARGE" for stage in later)  # every later total error is LARGE...
    assert all(own[stage.name] == "MATCH" and stage.own.inherited for stage in later)  # ...and inherited
    assert report.root_cause == "embed" and report.own_errors == ["embed"]
    assert report["output"].own.within == "embed"  # the whole model is wrong because embed is
    bias = [f for f in report["embed"].own.diagnosis if f.kind == "bias"]
    assert bias and bias[0]["dropped"] is True


def test_two_independent_bugs_are_both_named(ports):
    root, weights, reference = ports
    _, report = _replay(root, reference, "mlx_model.py", "mlx", [str(weights), "--no-bias", "--eps"], "two")
    # every block's norm uses the wrong eps: each is a bug of its own, and embed's bias another
    assert report.own_errors == ["embed", "blocks.0.norm", "blocks.1.norm", "blocks.2.norm"]
    eps = report["blocks.1.norm"].own.diagnosis[0]
    assert eps.kind == "norm" and (eps["reference_eps"], eps["candidate_eps"]) == (1e-5, 0.1)
    assert _own(report)["blocks.1.fc"] == "MATCH"
    assert report["blocks.1"].own.within == "blocks.1.norm"
    data = json.loads(json.dumps(report.to_dict()))
    check_report(data)
    assert data["own_errors"] == report.own_errors and data["root_cause"] == "embed"
    stage = next(s for s in data["stages"] if s["name"] == "blocks.1.fc")
    assert stage["own"]["verdict"] == "MATCH" and stage["own"]["inherited"] is True


def test_a_transposed_square_weight_is_diagnosed(ports):
    root, weights, reference = ports
    _, report = _replay(root, reference, "mlx_model.py", "mlx", [str(weights), "--transpose"], "transpose")
    assert report.own_errors == ["blocks.1.fc"]
    assert [f.kind for f in report["blocks.1.fc"].own.diagnosis][0] == "transposed_weight"


def test_another_activation_is_named(ports):
    root, weights, reference = ports
    _, report = _replay(root, reference, "mlx_model.py", "mlx", [str(weights), "--gelu-tanh"], "gelu")
    assert report.first_divergence is None and report.own_errors == []  # under the tolerance...
    assert below_tolerance(report.stages) == ["blocks.0.act", "blocks.1.act", "blocks.2.act"]  # ...yet named
    finding = report["blocks.0.act"].own.diagnosis[0]
    assert (finding.kind, finding["reference"], finding["candidate"]) == ("function", "gelu", "gelu_tanh")
    assert all(not s.own.below_tolerance for s in report.stages if s.own is not None and not s.name.endswith("act"))


@pytest.fixture(scope="module")
def mlx_reference(ports):
    """The MLX port recorded as the reference (``--inputs --weights``): the torch model is the candidate."""
    root, weights, _ = ports
    reference = root / "mlx_reference.safetensors"
    run = run_script(
        str(root / "mlx_model.py"), [str(weights)], str(reference), backend="mlx", inputs=True, weights=True
    )
    assert run.exit_code == 0
    return reference


def test_mlx_reference_torch_candidate(ports, mlx_reference, tmp_path):
    root, weights, _ = ports
    args = [str(weights), "--transpose"]
    _, report = _replay(tmp_path, mlx_reference, str(root / "torch_model.py"), "torch", args, "t")
    assert report.own_errors == ["blocks.1.fc"]
    assert report["blocks.1.fc"].own.diagnosis[0].kind == "transposed_weight"
    later = [stage for stage in report.stages if stage.name.startswith("blocks.2.") and stage.own is not None]
    assert len(later) == 3 and all(stage.own.verdict.value == "MATCH" for stage in later)


def test_an_early_bug_in_a_torch_candidate_is_own_there_and_inherited_after(ports, mlx_reference, tmp_path):
    root, weights, _ = ports
    args = [str(weights), "--no-bias"]
    _, report = _replay(tmp_path, mlx_reference, str(root / "torch_model.py"), "torch", args, "early")
    own = _own(report)
    assert own["conv"] == "MATCH" and own["embed"] == "LARGE"
    later = [s for s in report.stages if s.own is not None and s.name not in ("conv", "embed", "output")]
    assert len(later) == 13  # 3 x (fc, act, norm, the block), head
    assert all(stage.verdict.value == "LARGE" for stage in later)  # every later total error is LARGE...
    assert all(own[stage.name] == "MATCH" and stage.own.inherited for stage in later)  # ...and inherited
    assert report.root_cause == "embed" and report.own_errors == ["embed"]
    assert report["output"].own.within == "embed"
    bias = [f for f in report["embed"].own.diagnosis if f.kind == "bias"]
    assert bias and bias[0]["dropped"] is True


def test_a_torch_candidates_eps_and_tanh_gelu_are_named(ports, mlx_reference, tmp_path):
    root, weights, _ = ports
    args = [str(weights), "--eps", "--gelu-tanh"]
    _, report = _replay(tmp_path, mlx_reference, str(root / "torch_model.py"), "torch", args, "eps_gelu")
    # each module's own error is measured on the reference's inputs: the two bugs do not mix
    assert report.own_errors == ["blocks.0.norm", "blocks.1.norm", "blocks.2.norm"]
    eps = report["blocks.2.norm"].own.diagnosis[0]
    assert eps.kind == "norm" and (eps["reference_eps"], eps["candidate_eps"]) == (1e-5, 0.1)
    assert "gain_rel_diff" not in eps.params and "bias_max_diff" not in eps.params
    # tanh GELU is under the tolerance (every act's own error MATCH), yet named
    assert [_own(report)[f"blocks.{n}.act"] for n in range(3)] == ["MATCH"] * 3
    assert below_tolerance(report.stages) == ["blocks.0.act", "blocks.1.act", "blocks.2.act"]
    finding = report["blocks.1.act"].own.diagnosis[0]
    assert (finding.kind, finding["reference"], finding["candidate"]) == ("function", "gelu", "gelu_tanh")
    assert report["blocks.0.act"].verdict.value == "MATCH" and report["blocks.1.act"].verdict.value == "LARGE"


def test_the_candidates_own_run_is_not_disturbed(ports, tmp_path):
    root, weights, reference = ports
    plain = tmp_path / "plain.safetensors"
    run_script(str(root / "mlx_model.py"), [str(weights), "--no-bias"], str(plain), backend="mlx")
    result, _ = _replay(tmp_path, reference, str(root / "mlx_model.py"), "mlx", [str(weights), "--no-bias"], "kept")
    assert result.differing == []
    with numtrace.load(plain) as a, numtrace.load(tmp_path / "kept.safetensors") as b:
        assert a.order == b.order
        for name in a.order:
            assert a.read(name).tobytes() == b.read(name).tobytes(), name


def test_the_replay_trace_says_what_it_replayed(ports):
    root, weights, reference = ports
    _replay(root, reference, "mlx_model.py", "mlx", [str(weights)], "record")
    with numtrace.load(root / "record.replay.safetensors") as replay:
        record = json.loads(replay.metadata["numtrace.replay"])
        assert record["replayed"]["blocks.2.norm"] == "blocks.2.norm" and record["not_replayed"] == {}
        assert replay.order[0] == "conv"
        # torch's conv took (batch, channels, length), MLX's takes (batch, length, channels)
        assert record["notes"]["conv"] == ["input 0 transposed (0, 2, 1)"]
        assert replay.info("conv").shape == (2, 24, 4)
        assert np.isfinite(replay.read("output")).all()
