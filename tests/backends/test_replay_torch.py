"""trace replay on torch models of our own: what cannot be replayed is listed with its reason, and
the candidate's own run is left exactly as it would be without replay (random draws, running
statistics)."""

import json

import pytest

pytest.importorskip("torch")

from torch_models import trace_cli  # noqa: E402

import numtrace  # noqa: E402
from numtrace.replay.command import replay_script  # noqa: E402
from numtrace.run import run_script  # noqa: E402

MODEL = """
import sys
import torch
from torch import nn

class Cache:  # a key/value cache object, updated by each call
    def __init__(self):
        self.keys = []

class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)
    def forward(self, x, cache=None):
        if cache is not None:
            cache.keys.append(x)
        return self.proj(x)

class Mixer(nn.Module):
    def forward(self, x, extra):  # two data inputs
        return x + extra

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = Attention()
        self.mix = Mixer()
        self.drop = nn.Dropout(0.5)
        self.norm = nn.BatchNorm1d(8)
        self.out = nn.Linear(8, 8)
    def forward(self, x, cache):
        h = self.attn(x, cache=cache)
        h = self.mix(h, x if "--mix-twice" not in sys.argv else torch.stack([x, x]).sum(0))
        return self.out(self.norm(self.drop(h)))

torch.manual_seed(0)
model = Model()
if "--eval" in sys.argv:
    model.eval()
x = torch.randn(16, 8)
print(float(model(x, Cache()).sum().detach()))
"""


@pytest.fixture()
def script(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    return path


def test_what_cannot_be_replayed_is_listed_with_its_reason(script, tmp_path):
    reference = tmp_path / "reference.safetensors"
    assert run_script(str(script), ["--eval"], str(reference), backend="torch", inputs=True).exit_code == 0
    result = replay_script(str(reference), str(script), ["--eval"], str(tmp_path / "replay.safetensors"))
    assert result.skipped["attn"].startswith("argument cache is a Cache, which may hold state")
    assert result.skipped["output"].startswith("argument 1 is a Cache")
    assert set(result.replayed) == {"attn.proj", "mix", "drop", "norm", "out"}
    lines = "\n".join(result.lines())
    assert "replayed 5 of 7 module calls" in lines and lines.count("not replayed (1)") == 2


def test_a_reference_without_inputs_is_refused(script, tmp_path):
    reference = tmp_path / "reference.safetensors"
    run_script(str(script), ["--eval"], str(reference), backend="torch")
    result = trace_cli("replay", "-o", tmp_path / "replay.safetensors", reference, script, "--eval", cwd=tmp_path)
    assert result.returncode == 2
    assert "records no module inputs; record the reference with trace run --inputs" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_module_whose_inputs_were_not_recorded(script, tmp_path):
    reference = tmp_path / "reference.safetensors"
    # inputs only for the modules --only selects: out's were not recorded
    assert run_script(str(script), ["--eval"], str(reference), backend="torch", inputs=True, probes=["mix*", "norm*"])
    candidate = tmp_path / "candidate.safetensors"
    run_script(str(script), ["--eval"], str(candidate), backend="torch")
    result = replay_script(str(reference), str(script), ["--eval"], str(tmp_path / "replay.safetensors"))
    assert result.skipped["out"] == "no reference stage pairs with its output"
    assert set(result.replayed) == {"mix", "norm"}


def test_training_mode_draws_and_statistics_are_left_as_they_were(script, tmp_path):
    """Dropout draws random numbers and BatchNorm updates its running statistics in training mode:
    replaying them must change neither the candidate's later draws nor its statistics."""
    reference, plain, kept = (tmp_path / f"{n}.safetensors" for n in ("reference", "plain", "kept"))
    run_script(str(script), [], str(reference), backend="torch", inputs=True)
    run_script(str(script), [], str(plain), backend="torch")
    result = replay_script(
        str(reference), str(script), [], str(tmp_path / "replay.safetensors"), candidate_out=str(kept)
    )
    assert {"drop", "norm"} <= set(result.replayed) and result.differing == []
    with numtrace.load(plain) as a, numtrace.load(kept) as b:
        assert a.order == b.order
        assert all(a.read(name).tobytes() == b.read(name).tobytes() for name in a.order)


def test_trace_replay_then_trace_diff_on_the_command_line(script, tmp_path):
    reference, candidate, replayed = (tmp_path / f"{n}.safetensors" for n in ("reference", "candidate", "replay"))
    assert trace_cli("run", "--backend", "torch", "--inputs", "-o", reference, script, "--eval").returncode == 0
    result = trace_cli(
        "replay", "-o", replayed, "--candidate-out", candidate, reference, script, "--eval", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert f"trace replay: replayed 5 of 7 module calls on the reference's inputs; wrote {replayed}" in result.stderr
    assert "  not replayed (1): argument cache is a Cache" in result.stderr
    result = trace_cli("diff", reference, candidate, "--replay", replayed, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["own_errors"] == [] and data["replay"]["not_replayed"].keys() == {"attn", "output"}
    mix = next(stage for stage in data["stages"] if stage["name"] == "mix")
    assert mix["own"]["verdict"] == "MATCH" and mix["own"]["inherited"] is False
    assert not any(stage["name"].endswith(".input") or stage["name"] == "input" for stage in data["stages"])
    wrong = trace_cli("diff", reference, candidate, "--replay", candidate)  # a trace, not a replay trace
    assert wrong.returncode == 2 and wrong.stderr.strip().count("\n") == 0
    assert "is not a replay trace: write one with trace replay" in wrong.stderr
