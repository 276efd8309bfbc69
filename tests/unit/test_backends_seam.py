"""The backend seam: one registry, the same four names in every framework module, and a framework
added with one module and one registry line (the toy backend below)."""

import importlib
import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import numtrace
from numtrace import backends
from numtrace.errors import RecordingError, TapError, UsageError
from numtrace.replay.command import replay_script
from numtrace.run import run_script


def test_the_registry_names_every_backend_once_numpy_first():
    names = backends.names()
    assert names[0] == "numpy" and len(set(names)) == len(names) == len(backends.REGISTRY)
    assert [b.name for b in backends.REGISTRY if b.models] == ["torch", "mlx", "fastai"]
    assert [b.name for b in backends.REGISTRY if b.replays] == ["torch", "mlx", "fastai"]
    with pytest.raises(UsageError, match="unknown backend 'jax'; choose one of numpy, torch, mlx, fastai"):
        backends.backend("jax")


@pytest.mark.parametrize("entry", backends.REGISTRY, ids=lambda b: b.name)
def test_every_framework_module_has_the_same_four_names(entry):
    pytest.importorskip(entry.framework)
    module = backends.module_of(entry)
    assert (module.ADAPTER is not None) == entry.arrays
    for name in ("watches", "watch", "capture"):
        assert callable(getattr(module, name)), name
    assert module.watches(object()) is False
    parameters = inspect.signature(module.capture).parameters.values()
    takes_replay = any(p.name == "replay" or p.kind is p.VAR_KEYWORD for p in parameters)
    assert takes_replay == entry.replays, "a backend that replays takes capture(replay=...), and only one"


def test_the_modules_that_import_a_framework_are_known_by_their_names():
    src = Path(backends.__file__).parent
    needing = {p.stem: backends.framework_of(p.stem) for p in src.glob("*.py") if backends.framework_of(p.stem)}
    assert needing["torch_hooks"] == needing["torch_replay"] == needing["torch_sites"] == "torch"
    assert needing["mlx_batch"] == needing["mlx_capture"] == needing["mlx_compile"] == "mlx"
    assert needing["fastai"] == "fastai" and "naming" not in needing and "__init__" not in needing


def test_an_adapter_is_used_only_when_its_framework_is_imported(monkeypatch):
    fake = backends.Backend("fake", "numtrace_fake_adapter_module", "numtrace_fake_framework", True, False, "")
    monkeypatch.setattr(backends, "REGISTRY", backends.REGISTRY + (fake,))
    monkeypatch.delitem(sys.modules, "numtrace_fake_framework", raising=False)
    # The fake adapter module does not exist: consulting it would raise ModuleNotFoundError.
    names = [a.name for a in backends.loaded_adapters()]
    assert names[0] == "numpy"
    assert len(names) == sum(b.framework in sys.modules for b in backends.REGISTRY if b.arrays)


TOY_FRAMEWORK = '''
"""A framework numtrace has never heard of: arrays that wrap lists, and models of layers."""
class Array:
    def __init__(self, values):
        self.values = list(values)

class Layer:
    def __init__(self, k):
        self.k = k
    def __call__(self, x):
        return Array(v * self.k for v in x.values)

class Model:
    def __init__(self):
        self.layers = [Layer(2.0), Layer(3.0)]
    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
'''

# The one module a new backend needs: the same four names as numtrace.backends.torch and .mlx.
TOY_BACKEND = """
import numpy as np
import toyframework
from numtrace import tap
from numtrace.backends.naming import stage_name
from numtrace.watch import Watch

class ToyAdapter:
    name = "toy"
    def handles(self, x):
        return isinstance(x, toyframework.Array)
    def to_numpy(self, x):
        return np.asarray(x.values, dtype=np.float64), "float64"
    def version(self):
        return "0.0.1"

ADAPTER = ToyAdapter()

def watches(model):
    return isinstance(model, toyframework.Model)

def watch(model, *, prefix="", **options):
    original = type(model).__call__
    def call(self, x):
        for i, layer in enumerate(self.layers):
            x = tap(stage_name(prefix, f"layers.{i}"), layer(x))
        return tap(stage_name(prefix, ""), x)
    type(model).__call__ = call
    def detach():
        type(model).__call__ = original
    return Watch(model, detach, [f"layers.{i}" for i in range(len(model.layers))])

def capture(include=None, exclude=None, *, inputs=False, weights=False):  # no replay=: it cannot replay
    watched = watch(toyframework.Model())  # every Model from now on: the class is patched
    return watched.detach
"""

# ...and its one registry line
TOY_ENTRY = ("toy", "toy_backend", "toyframework", True, True, "the toy framework")


@pytest.fixture
def toy(tmp_path, monkeypatch):
    (tmp_path / "toyframework.py").write_text(textwrap.dedent(TOY_FRAMEWORK))
    (tmp_path / "toy_backend.py").write_text(textwrap.dedent(TOY_BACKEND))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("toyframework", "toy_backend"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    entry = backends.Backend(*TOY_ENTRY)
    monkeypatch.setattr(backends, "REGISTRY", backends.REGISTRY + (entry,))
    monkeypatch.setattr(backends, "_by_type", {})
    return importlib.import_module("toyframework"), tmp_path


def test_a_toy_backend_is_one_module_and_one_registry_line(toy):
    toyframework, tmp_path = toy
    with numtrace.record(backend="toy") as rec:  # taps of its arrays
        numtrace.tap("x", toyframework.Array([1.0, 2.0]))
    assert rec.trace.read("x").tolist() == [1.0, 2.0]
    assert rec.trace.metadata["numtrace.backend"] == "toy"
    model = toyframework.Model()
    with numtrace.record() as rec, numtrace.watch(model, prefix="toy"):  # numtrace.watch of its models
        model(toyframework.Array([1.0]))
    assert rec.trace.order == ["toy.layers.0", "toy.layers.1", "toy"]
    assert rec.trace.read("toy").tolist() == [6.0]
    script = tmp_path / "predict.py"  # `trace run --backend toy`: zero-edit capture
    script.write_text("import toyframework\ntoyframework.Model()(toyframework.Array([1.0, -1.0]))\n")
    result = run_script(str(script), [], str(tmp_path / "toy.safetensors"), backend="toy")
    assert result.exit_code == 0 and result.stages == 3
    with numtrace.load(tmp_path / "toy.safetensors") as trace:
        assert trace.order == ["layers.0", "layers.1", "output"]
        assert trace.read("output").tolist() == [6.0, -6.0]
        assert "toy" in trace.metadata["numtrace.frameworks"]


def test_trace_replay_with_a_backend_that_cannot_replay_says_so_in_one_line(toy):
    """The toy capture takes no ``replay=``: `trace replay --backend toy` refuses it before the script
    runs (exit 2, one line), rather than failing inside it with a TypeError."""
    toyframework, tmp_path = toy
    script = tmp_path / "predict.py"
    script.write_text("import toyframework\ntoyframework.Model()(toyframework.Array([1.0]))\n")
    numtrace.save(tmp_path / "ref.safetensors", {"output": np.ones(1), "input": np.ones(1)})
    with pytest.raises(UsageError, match=r"^backend toy cannot replay: .* use --backend torch, mlx, fastai$"):
        replay_script(
            str(tmp_path / "ref.safetensors"), str(script), [], str(tmp_path / "replay.safetensors"), backend="toy"
        )
    # the command line, with the one registry line added before it starts
    code = f"""
import sys
from numtrace import backends
backends.REGISTRY += (backends.Backend(*{TOY_ENTRY!r}),)
from numtrace.cli import main
sys.argv = ["trace", "replay", "--backend", "toy", "-o", "replay.safetensors", "ref.safetensors", "predict.py"]
main()
"""
    src = Path(numtrace.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(src)])}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "trace: error: backend toy cannot replay: trace replay calls the candidate's modules again; "
        "use --backend torch, mlx, fastai"
    ]
    assert not (tmp_path / "replay.safetensors").exists()


def test_an_unknown_backend_is_refused_by_record():
    with pytest.raises(RecordingError, match="unknown backend 'toy'"):
        numtrace.record(backend="toy")


@pytest.mark.parametrize(
    "value, dtype, shape",
    [
        (np.arange(6, dtype=np.int32).reshape(2, 3), "int32", (2, 3)),
        (np.float16(1.0), "float16", ()),
        (2.5, "float64", ()),
        (True, "bool", ()),
        (3 + 4j, "complex128", ()),
        (np.zeros((0, 3), np.float32), "float32", (0, 3)),
    ],
)
def test_numpy_adapter_converts_arrays_and_numbers(value, dtype, shape):
    values, name = backends.to_numpy(value)
    assert name == dtype
    assert values.shape == shape


def test_unknown_types_raise_a_tap_error_with_the_type_name():
    class Tensorish:
        pass

    with pytest.raises(TapError, match="Tensorish"):
        backends.to_numpy(Tensorish())


def test_framework_versions_lists_python_and_numpy():
    versions = backends.framework_versions()
    assert versions["numpy"] == np.__version__
    assert versions["python"].count(".") == 2
