"""A PyTorch model and its MLX port that name things differently, traced unmodified with `trace run`.

The torch side: attention blocks whose MLP is an ``nn.Sequential`` (``mlp.0``, ``mlp.1`` the GELU,
``mlp.2``, and ``mlp`` the container, equal to ``mlp.2``) and whose query/key rotation is a module
created on the fly at each call (no parameters, as HF transformers' kernel wrappers). The MLX port:
``mlp1``/``mlp2`` with ``nn.gelu`` a function, the rotation a submodule ``rope``, and attention and
blocks that also return their key/value caches. Weights are shared through safetensors.
Every torch stage with an MLX counterpart must pair, without a map file; a wrong rotation in the
port must be found at the rotation.
"""

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("mlx.core")

import numtrace
from numtrace.run import run_script

TORCH = """
import sys
import torch
from safetensors.torch import save_file
from torch import nn

class Rotate(nn.Module):
    def forward(self, x):
        half = x.shape[-1] // 2
        return torch.cat([-x[..., half:], x[..., :half]], -1) * 0.5 + x

class Attention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.query, self.key, self.value, self.out = (nn.Linear(d, d) for _ in range(4))
    def forward(self, x):
        q, k = Rotate()(self.query(x)), Rotate()(self.key(x))  # modules created on the fly
        w = torch.softmax(q @ k.transpose(-1, -2) / 4.0, -1)
        return self.out(w @ self.value(x))

class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.attn = Attention(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
    def forward(self, x):
        x = x + self.attn(x)
        return x + self.mlp(x)

class Model(nn.Module):
    def __init__(self, d=16, n=2):
        super().__init__()
        self.blocks = nn.ModuleList([Block(d) for _ in range(n)])
        self.norm = nn.LayerNorm(d)
    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

torch.manual_seed(0)
model = Model().eval()
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, sys.argv[1])
with torch.no_grad():
    model(torch.linspace(-1, 1, 80).reshape(1, 5, 16))
"""

MLX = """
import sys
import mlx.core as mx
import mlx.nn as nn

SIGN = -1.0 if "--bug" in sys.argv else 1.0

class Rotate(nn.Module):
    def __call__(self, x):
        half = x.shape[-1] // 2
        return mx.concatenate([SIGN * -x[..., half:], x[..., :half]], -1) * 0.5 + x

class Attention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.query, self.key, self.value, self.out = (nn.Linear(d, d) for _ in range(4))
        self.rope = Rotate()
    def __call__(self, x):
        q, k, v = self.rope(self.query(x)), self.rope(self.key(x)), self.value(x)
        w = mx.softmax(q @ k.swapaxes(-1, -2) / 4.0, -1)
        return self.out(w @ v), (k, v)

class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.attn = Attention(d)
        self.mlp1, self.mlp2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
    def __call__(self, x):
        a, cache = self.attn(x)
        x = x + a
        return x + self.mlp2(nn.gelu(self.mlp1(x))), cache

class Model(nn.Module):
    def __init__(self, d=16, n=2):
        super().__init__()
        self.blocks = [Block(d) for _ in range(n)]
        self.norm = nn.LayerNorm(d)
    def __call__(self, x):
        caches = []
        for block in self.blocks:
            x, cache = block(x)
            caches.append(cache)
        return self.norm(x), caches

model = Model()
weights = {k.replace("mlp.0", "mlp1").replace("mlp.2", "mlp2"): v for k, v in mx.load(sys.argv[1]).items()}
model.load_weights(list(weights.items()))
out, caches = model(mx.linspace(-1, 1, 80).reshape(1, 5, 16))
mx.eval(out, caches)
"""


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ports")
    (folder / "infer_torch.py").write_text(TORCH)
    (folder / "infer_mlx.py").write_text(MLX)
    weights = str(folder / "weights.safetensors")
    for script, backend, out, extra in (
        ("infer_torch.py", "torch", "torch.safetensors", []),
        ("infer_mlx.py", "mlx", "mlx.safetensors", []),
        ("infer_mlx.py", "mlx", "mlx_bug.safetensors", ["--bug"]),
    ):
        result = run_script(str(folder / script), [weights, *extra], str(folder / out), backend=backend)
        assert result.exit_code == 0, result
    return folder


def test_modules_created_on_the_fly_are_named_under_their_caller(traces):
    order = numtrace.load(traces / "torch.safetensors").order
    assert "blocks.0.attn.Rotate" in order and "blocks.0.attn.Rotate@1" in order
    assert not any(name.startswith("Rotate") for name in order)  # no top-level root per call
    assert order.index("blocks.0.attn.key") < order.index("blocks.0.attn.Rotate@1") < order.index("blocks.0.attn.out")


def test_every_torch_stage_with_an_mlx_counterpart_pairs_without_a_map(traces):
    report = numtrace.diff(traces / "torch.safetensors", traces / "mlx.safetensors")
    by_name = {}
    for stage in report.stages:
        by_name.setdefault(stage.name, stage)
    missing_a = [s.name for s in report.stages if s.verdict.value == "MISSING" and s.only_in == "a"]
    assert missing_a == ["blocks.0.mlp.1", "blocks.1.mlp.1"]  # the GELU is a function in MLX
    assert by_name["blocks.0.mlp.0"].name_b == "blocks.0.mlp1" and by_name["blocks.0.mlp.0"].pairing == "aligned"
    assert by_name["blocks.0.mlp.2"].name_b == "blocks.0.mlp2"
    assert by_name["blocks.0.mlp"].twin == ("a", "blocks.0.mlp.2") and by_name["blocks.0.mlp"].name_b == "blocks.0.mlp2"
    assert by_name["blocks.0.attn.Rotate"].name_b == "blocks.0.attn.rope"
    assert by_name["blocks.0.attn.Rotate@1"].name_b == "blocks.0.attn.rope@1"
    assert by_name["blocks.0.attn"].name_b == "blocks.0.attn.0" and by_name["blocks.0"].name_b == "blocks.0.0"
    assert all(s.verdict.value in ("MATCH", "MISSING") for s in report.stages)
    assert report.failed("large") is False and report.first_divergence is None
    candidate_only = [s.name for s in report.stages if s.only_in == "b"]
    assert all(".1." in name or name.endswith(".1") for name in candidate_only)  # only the caches are left


def test_a_wrong_rotation_in_the_port_is_found_at_the_rotation(traces):
    report = numtrace.diff(traces / "torch.safetensors", traces / "mlx_bug.safetensors")
    assert report.first_divergence == "blocks.0.attn.Rotate"
    assert report.root_cause == "blocks.0.attn.Rotate"


def invoke(*args):
    from typer.testing import CliRunner

    from numtrace.cli import app
    from report_schema import check_cli_output

    result = CliRunner().invoke(app, [str(a) for a in args])
    check_cli_output(args, result.stdout, result.exit_code)
    return result.exit_code, result.stdout, result.stderr


def test_the_extras_take_one_line_and_trace_align_keeps_the_pairing(traces, tmp_path):
    code, out, _ = invoke("diff", traces / "torch.safetensors", traces / "mlx.safetensors", "--width", "120")
    assert code == 0
    code, every, _ = invoke("diff", traces / "torch.safetensors", traces / "mlx.safetensors", "--width", "120", "--all")
    assert len(every.splitlines()) > len(out.splitlines())
    code, _, err = invoke(
        "align", traces / "torch.safetensors", traces / "mlx.safetensors", "-o", tmp_path / "map.toml"
    )
    assert code == 0 and "aligned" in err and "twin" in err
    code, first, _ = invoke("diff", traces / "torch.safetensors", traces / "mlx.safetensors", "--json")
    code, again, _ = invoke(
        "diff", traces / "torch.safetensors", traces / "mlx.safetensors", "--json", "--map", tmp_path / "map.toml"
    )
    pairs = [[(s["name"], s.get("name_b")) for s in json.loads(text)["stages"]] for text in (first, again)]
    assert pairs[0] == pairs[1]
