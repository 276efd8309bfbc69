"""`trace run --backend torch` on scripts that never import numtrace (real subprocesses)."""

import textwrap

import numpy as np
import pytest

pytest.importorskip("torch")

from torch_models import trace_cli  # noqa: E402

import numtrace  # noqa: E402

pytestmark = pytest.mark.slow  # each test starts `trace run` processes that import torch

THIRD_PARTY = '''
"""A stand-in for someone else's model library: nested modules, tuple and dict outputs."""
import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        weights = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
        return self.out(weights @ v), weights


class Layer(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = Attention(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(inplace=True), nn.Linear(2 * dim, dim))

    def forward(self, x):
        attended, weights = self.attn(self.norm(x))
        x = x + attended
        return x + self.ff(x), weights


class Model(nn.Module):
    def __init__(self, dim=8, depth=2):
        super().__init__()
        self.embed = nn.Linear(3, dim)
        self.layers = nn.ModuleList(Layer(dim) for _ in range(depth))
        self.head = nn.Linear(dim, 2)

    def forward(self, x):
        h, attentions = self.embed(x), []
        for layer in self.layers:
            h, w = layer(h)
            attentions.append(w)
        return {"logits": self.head(h), "attentions": tuple(attentions)}


def features(x):
    return x.cumsum(-1), x.mean()
'''

SCRIPT = """
import sys
import torch
import thirdparty

torch.manual_seed(0)
model = thirdparty.Model().eval()
x = torch.randn(2, 5, 3)
with torch.no_grad():
    for step in range(2):
        out = model(x)
        x = x + 0.1
        if "--crash" in sys.argv and step == 0:
            raise RuntimeError("stopped on purpose")
    feats, mean = thirdparty.features(out["logits"])
print("logits", tuple(out["logits"].shape))
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "thirdparty.py").write_text(THIRD_PARTY)
    (tmp_path / "predict.py").write_text(SCRIPT)
    assert "numtrace" not in SCRIPT + THIRD_PARTY
    return tmp_path


def module_names(call=""):
    """Stage names of one forward of thirdparty.Model; ``call="@1"``: of its second call.

    The call index follows the module's name, before the flattened output's keys.
    """
    names = [f"embed{call}"]
    for i in range(2):
        p = f"layers.{i}"
        names += [
            f"{p}.norm{call}",
            f"{p}.attn.qkv{call}",
            f"{p}.attn.out{call}",
            f"{p}.attn{call}.0",
            f"{p}.attn{call}.1",
            f"{p}.ff.0{call}",
            f"{p}.ff.1{call}",
            f"{p}.ff.2{call}",
            f"{p}.ff{call}",
            f"{p}{call}.0",
            f"{p}{call}.1",
        ]
    return names + [f"head{call}", f"output{call}.logits", f"output{call}.attentions.0", f"output{call}.attentions.1"]


def test_an_unmodified_script_records_every_module_and_two_runs_diff_all_match(project):
    a, b = project / "a.safetensors", project / "b.safetensors"
    for out in (a, b):
        result = trace_cli("run", "--backend", "torch", "-o", out, project / "predict.py", cwd=project)
        assert result.returncode == 0, result.stderr
        assert "logits (2, 5, 2)" in result.stdout
    with numtrace.load(a) as trace:
        assert trace.order == module_names() + module_names("@1")
        assert trace.metadata["numtrace.backend"] == "torch"
        # ReLU(inplace=True) ran after ff.0's hook: the record keeps the negative values
        assert (trace.read("layers.0.ff.0") < 0).any()
        np.testing.assert_array_equal(np.maximum(trace.read("layers.0.ff.0"), 0), trace.read("layers.0.ff.1"))
    report = numtrace.diff(a, b)
    assert [s.verdict for s in report.stages] == ["MATCH"] * len(report.stages) and len(report.stages) == 2 * len(
        module_names()
    )
    assert report.first_divergence is None
    result = trace_cli("diff", a, b)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_crashing_script_keeps_its_partial_trace_and_exits_non_zero(project):
    out = project / "partial.safetensors"
    result = trace_cli("run", "--backend", "torch", "-o", out, project / "predict.py", "--crash", cwd=project)
    assert result.returncode == 1
    assert "RuntimeError: stopped on purpose" in result.stderr
    with numtrace.load(out) as trace:
        assert trace.order == module_names()
        assert trace.metadata["numtrace.status"] == "error: RuntimeError: stopped on purpose"


def test_probe_max_calls_inputs_weights_and_probe_function(project):
    out = project / "t.safetensors"
    result = trace_cli(
        "run",
        "--backend",
        "torch",
        "-o",
        out,
        "--probe",
        "layers.1.attn*",
        "--probe",
        "head*",
        "--probe",
        "features*",
        "--probe",
        "cumsum",
        "--max-calls",
        "1",
        "--inputs",
        "--weights",
        "--probe-function",
        "thirdparty:features",
        "--probe-function",
        "thirdparty:features=cumsum",
        project / "predict.py",
        cwd=project,
    )
    assert result.returncode == 0, result.stderr
    with numtrace.load(out) as trace:
        assert trace.order == [
            "layers.1.attn.qkv.weight",
            "layers.1.attn.qkv.bias",
            "layers.1.attn.out.weight",
            "layers.1.attn.out.bias",
            "head.weight",
            "head.bias",
            "layers.1.attn.input",
            "layers.1.attn.qkv.input",
            "layers.1.attn.qkv",
            "layers.1.attn.out.input",
            "layers.1.attn.out",
            "layers.1.attn.0",
            "layers.1.attn.1",
            "head.input",
            "head",
            "features.0",
            "features.1",  # the first spec's wrapper is the inner one: it records first
            "cumsum.0",
            "cumsum.1",
        ]
        np.testing.assert_array_equal(trace.read("features.0"), trace.read("cumsum.0"))
        assert trace.read("features.1").shape == () and trace.read("features.0").shape == (2, 5, 2)


def test_several_models_and_a_nested_root_in_one_script(tmp_path):
    (tmp_path / "two.py").write_text(
        textwrap.dedent("""
        import torch
        from torch import nn

        class Vocoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.up = nn.Linear(2, 4)

            def forward(self, x):
                return self.up(x)

        shared_vocoder = Vocoder()

        class Decoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(2, 2)

            def forward(self, x):
                return shared_vocoder(self.proj(x))  # calls a model it does not own

        encoder = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
        decoder = Decoder()
        with torch.no_grad():
            decoder(encoder(torch.ones(1, 3)))
    """)
    )
    out = tmp_path / "two.safetensors"
    result = trace_cli("run", "--backend", "torch", "-o", out, tmp_path / "two.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with numtrace.load(out) as trace:
        assert trace.order == ["0", "1", "output", "Decoder.proj", "Vocoder.up", "Vocoder", "Decoder"]


def test_usage_errors_are_one_line_and_exit_2(project):
    script = project / "predict.py"
    (project / "helpers.py").write_text("def scale(x):\n    return 2 * x\n")
    cases = [  # --backend numpy: these are checked before any framework is imported
        (["--inputs"], "--inputs and --weights"),
        (["--probe-function", "helpers"], "MODULE:FUNCTION"),
        (["--probe-function", "helpers:nope"], "no such function"),
        (["--probe-function", "no_such_module:f"], "cannot import"),
        (["--probe-function", "predict:main"], "the script itself"),
    ]
    for options, message in cases:
        result = trace_cli("run", "-o", project / "x.safetensors", *options, script, cwd=project)
        assert result.returncode == 2, (options, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (options, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
        assert not (project / "x.safetensors").exists()


def test_a_class_whose_call_is_replaced_is_named_on_stderr_not_dropped_silently(project):
    """A port monkeypatched with `Layer.__call__ = patched` bypasses torch's hooks: say which modules."""
    (project / "patched.py").write_text(
        SCRIPT.replace(
            "model = thirdparty.Model().eval()",
            """
def patched(self, x):
    return self.forward(x)

thirdparty.Layer.__call__ = patched
model = thirdparty.Model().eval()""",
        )
    )
    out = project / "patched.safetensors"
    result = trace_cli("run", "--backend", "torch", "-o", out, project / "patched.py", cwd=project)
    assert result.returncode == 0, result.stderr
    assert (
        "numtrace: layers.0, layers.1 never recorded: Layer.__call__ is __main__.patched, not nn.Module's, "
        "which bypasses torch's module hooks unless it calls super().__call__; patch forward instead"
    ) in result.stderr
    with numtrace.load(out) as trace:
        assert "layers.0.attn.qkv" in trace.order and "layers.0.0" not in trace.order  # its children still are


def test_a_class_patched_after_numtrace_watch_is_named_on_stderr_too(project):
    """The same patch under `numtrace.watch(model)` (no capture): the watch's hooks never fire either."""
    (project / "watched.py").write_text(
        SCRIPT.replace(
            "model = thirdparty.Model().eval()",
            """model = thirdparty.Model().eval()
import numtrace
numtrace.watch(model)

def patched(self, x):
    return self.forward(x)

thirdparty.Layer.__call__ = patched""",
        )
    )
    out = project / "watched.safetensors"
    result = trace_cli("run", "-o", out, project / "watched.py", cwd=project)
    assert result.returncode == 0, result.stderr
    assert (
        "numtrace: layers.0, layers.1 never recorded: Layer.__call__ is __main__.patched, not nn.Module's, "
        "which bypasses torch's module hooks unless it calls super().__call__; patch forward instead"
    ) in result.stderr
    assert result.stderr.count("never recorded") == 1  # once, not once per forward
    with numtrace.load(out) as trace:
        assert "layers.0.attn.qkv" in trace.order and "layers.0.0" not in trace.order
        assert trace.order[-4:] == ["head@1", "output@1.logits", "output@1.attentions.0", "output@1.attentions.1"]
