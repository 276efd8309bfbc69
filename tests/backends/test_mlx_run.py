"""Zero-edit capture of MLX models: in-process (capture/undo) and through `trace run --backend mlx`."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
nn = pytest.importorskip("mlx.nn")

import numtrace  # noqa: E402
from numtrace.backends import mlx_capture  # noqa: E402
from numtrace.errors import NumtraceWarning  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"


def captured(fn):
    """Run ``fn()`` under a recording with zero-edit capture; return (result, trace)."""
    with numtrace.record(backend="mlx") as rec:
        undo = mlx_capture.capture()
        try:
            result = fn()
        finally:
            undo()
    return result, rec.trace


def module_calls():
    """Every Module subclass's own __call__ (to check that undo puts them all back)."""
    out, pending = {}, [nn.Module]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            out[sub] = sub.__dict__.get("__call__")
            pending.append(sub)
    return out


def test_every_model_is_captured_and_later_roots_get_their_class_name():
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(2, 2)

        def __call__(self, x):
            return mx.tanh(self.proj(x))

    class Vocoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.Linear(2, 4)

        def __call__(self, x):
            return self.up(x)

    encoder, vocoder, vocoder2 = Encoder(), Vocoder(), Vocoder()
    calls_before = module_calls()

    def script():
        h = encoder(mx.ones((1, 2)))
        encoder.proj(h)  # called directly, but part of a known model: named by its path there
        return vocoder2(vocoder(h)[:, :2])

    _, trace = captured(script)
    assert trace.order == ["proj", "output", "proj@1", "Vocoder.up", "Vocoder", "Vocoder_2.up", "Vocoder_2"]
    assert module_calls() == {cls: call for cls, call in calls_before.items()}
    assert not hasattr(nn.Module.__dict__.get("__init_subclass__"), "__func__")


def test_a_model_calling_another_model_is_a_nested_root():
    class Inner(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def __call__(self, x):
            return self.lin(x)

    inner = Inner()

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.pre = nn.Linear(2, 2)

        def __call__(self, x):
            return inner(self.pre(x))  # `inner` is not a child of Outer

    outer = Outer()
    _, trace = captured(lambda: outer(mx.ones((1, 2))))
    assert trace.order == ["pre", "Inner.lin", "Inner", "output"]


def test_super_call_is_recorded_once_and_classes_defined_during_capture_are_restored():
    def script():
        class Scaled(nn.Linear):
            def __call__(self, x):
                return super().__call__(x) * 2

        layer = Scaled(2, 2)
        return layer, layer(mx.ones((1, 2)))

    (layer, y), trace = captured(script)
    assert trace.order == ["output"]
    np.testing.assert_array_equal(trace.read("output"), np.array(y))
    assert not getattr(type(layer).__dict__["__call__"], "_numtrace_zero_edit", False)
    assert not getattr(nn.Linear.__dict__["__call__"], "_numtrace_zero_edit", False)


def test_compiled_functions_are_recorded_on_every_call_even_after_a_retrace():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    xs = [mx.full((1, 3), float(i)) for i in range(3)] + [mx.ones((2, 3))]
    plain = mx.compile(lambda x: model(x) + 1)
    expected = [np.array(plain(x)) for x in xs]

    def script():
        step = mx.compile(lambda x: model(x) + 1)
        return [step(x) for x in xs]

    outs, trace = captured(script)
    for out, reference in zip(outs, expected):  # the extra compiled outputs change no bit
        np.testing.assert_array_equal(np.array(out), reference)
    assert trace.order == [f"{n}{s}" for s in ("", "@1", "@2", "@3") for n in ("layers.0", "layers.1", "output")]
    for i, suffix in enumerate(["", "@1", "@2", "@3"]):
        np.testing.assert_array_equal(trace.read(f"output{suffix}") + 1, np.array(outs[i]))
    assert trace.info("output@3").shape == (2, 3)
    assert mx.compile is not None and not hasattr(mx.compile, "_numtrace_original")


def test_probe_globs_select_modules_before_anything_is_held():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    with numtrace.record(include=["layers.2"]) as rec:
        undo = mlx_capture.capture(include=["layers.2"])
        try:
            model(mx.ones((1, 2)))
        finally:
            undo()
    assert rec.trace.order == ["layers.2"]


# -- through `trace run` ------------------------------------------------------------------------------

SCRIPT = """
import sys
import mlx.core as mx
import mlx.nn as nn

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.lin.weight = mx.array([[1.0, 2.0], [3.0, 4.0]])
        self.lin.bias = mx.array([0.5, -0.5])

    def __call__(self, x):
        return nn.relu(self.lin(x))

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = [Block(), Block()]

    def __call__(self, x):
        for block in self.blocks:
            x = block(x)
        return x

model = Model()
y = model(mx.array([[1.0, -1.0]]))
print("y", y.tolist())
if "--crash" in sys.argv:
    model.blocks[0](mx.ones((1, 3)))   # a shape error inside a forward
print("done")
"""


def trace_run(tmp_path, *args, script=SCRIPT):
    path = tmp_path / "port.py"
    path.write_text(textwrap.dedent(script))
    out = tmp_path / "port.safetensors"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [
        sys.executable,
        "-c",
        "from numtrace.cli import main; main()",
        "run",
        "--backend",
        "mlx",
        "-o",
        str(out),
        str(path),
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120), out


def test_trace_run_captures_an_unmodified_script(tmp_path):
    result, out = trace_run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "y [[0.5, 0.0]]" in result.stdout
    with numtrace.load(out) as trace:
        assert trace.order == ["blocks.0.lin", "blocks.0", "blocks.1.lin", "blocks.1", "output"]
        assert trace.read("blocks.0.lin").tolist() == [[-0.5, -1.5]]
        assert trace.read("blocks.0").tolist() == [[0.0, 0.0]]
        assert trace.read("blocks.1.lin").tolist() == [[0.5, -0.5]]
        assert trace.read("output").tolist() == [[0.5, 0.0]]
        assert trace.metadata["numtrace.backend"] == "mlx"
        assert trace.metadata["numtrace.status"] == "complete"
        assert json.loads(trace.metadata["numtrace.argv"])[0].endswith("port.py")


def test_a_crash_midway_keeps_the_partial_trace_and_exits_non_zero(tmp_path):
    result, out = trace_run(tmp_path, "--crash")
    assert result.returncode == 1
    assert "ValueError" in result.stderr and "done" not in result.stdout
    assert "wrote 5 stages" in result.stderr
    with numtrace.load(out) as trace:
        assert trace.order == ["blocks.0.lin", "blocks.0", "blocks.1.lin", "blocks.1", "output"]
        assert trace.metadata["numtrace.status"].startswith("error: ValueError")


def test_a_crash_inside_a_forward_keeps_the_modules_that_ran(tmp_path):
    script = SCRIPT.replace(
        "        for block in self.blocks:\n            x = block(x)\n",
        "        x = self.blocks[0](x)\n        raise RuntimeError('solver diverged')\n",
    )
    result, out = trace_run(tmp_path, script=script)
    assert result.returncode == 1 and "RuntimeError: solver diverged" in result.stderr
    with numtrace.load(out) as trace:
        assert trace.order == ["blocks.0.lin", "blocks.0"]
        assert trace.read("blocks.0.lin").tolist() == [[-0.5, -1.5]]


def test_trace_run_probe_narrows_the_capture(tmp_path):
    result, out = trace_run(tmp_path, script=SCRIPT)
    assert result.returncode == 0
    path = tmp_path / "port.py"
    probe_out = tmp_path / "probe.safetensors"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [
        sys.executable,
        "-c",
        "from numtrace.cli import main; main()",
        "run",
        "--backend",
        "mlx",
        "--probe",
        "blocks.*.lin",
        "-o",
        str(probe_out),
        str(path),
    ]
    assert subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120).returncode == 0
    with numtrace.load(probe_out) as trace:
        assert trace.order == ["blocks.0.lin", "blocks.1.lin"]


def test_inputs_and_weights_options_follow_the_torch_backend_names():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    model.layers[0].weight = mx.array([[1.0, 0.0], [0.0, -1.0]])
    model.layers[0].bias = mx.zeros((2,))
    with numtrace.record() as rec:
        undo = mlx_capture.capture(inputs=True, weights=True)
        try:
            model(mx.array([[3.0, 4.0]]))
            model(mx.array([[1.0, 1.0]]))  # weights once per root
        finally:
            undo()
    assert rec.trace.order == [
        "layers.0.weight",
        "layers.0.bias",
        "input",
        "layers.0.input",
        "layers.0",
        "layers.1.input",
        "layers.1",
        "output",
        "input@1",
        "layers.0.input@1",
        "layers.0@1",
        "layers.1.input@1",
        "layers.1@1",
        "output@1",
    ]
    assert rec.trace.read("layers.0").tolist() == [[3.0, -4.0]]
    assert rec.trace.read("output").tolist() == [[3.0, 0.0]]


# -- classes whose __call__ the script replaces ------------------------------------------------

PATCHED = SCRIPT.replace(
    "model = Model()\n",
    """
def patched(self, x):                    # monkeypatching the port after import
    return nn.relu(self.lin(x)) * 2.0

Block.__call__ = patched
model = Model()
""",
)


def test_a_class_patched_after_capture_began_is_still_recorded_and_said(tmp_path):
    """`Block.__call__ = patched` once made every block stage vanish without a word."""
    result, out = trace_run(tmp_path, script=PATCHED)
    assert result.returncode == 0, result.stderr
    assert "y [[1.0, 0.0]]" in result.stdout
    assert (
        "numtrace: __main__.Block.__call__ was replaced after capture began (by __main__.patched); "
        "wrapped again: its calls are recorded from now on"
    ) in result.stderr
    with numtrace.load(out) as trace:
        assert trace.order == ["blocks.0.lin", "blocks.0", "blocks.1.lin", "blocks.1", "output"]
        assert trace.read("blocks.0").tolist() == [[0.0, 0.0]]
        assert trace.read("blocks.1.lin").tolist() == [[0.5, -0.5]]
        assert trace.read("blocks.1").tolist() == [[1.0, 0.0]]


def test_a_patch_between_two_forwards_is_recorded_from_the_next_one_and_kept_after_undo():
    class Cell(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def __call__(self, x):
            return self.lin(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = Cell()

        def __call__(self, x):
            return self.cell(x) + 1.0

    def doubled(self, x):
        return self.lin(x) * 2.0

    net = Net()
    x = mx.ones((1, 2))

    def script():
        net(x)
        Cell.__call__ = doubled
        net(x)

    _, trace = captured(script)
    assert trace.order == ["cell.lin", "cell", "output", "cell.lin@1", "cell@1", "output@1"]
    np.testing.assert_allclose(trace.read("cell@1"), 2.0 * trace.read("cell"), rtol=1e-6)
    assert Cell.__dict__["__call__"] is doubled  # the script's patch stays after capture ends


def test_a_patched_class_no_model_used_is_named_when_capture_ends():
    class Spare(nn.Module):
        def __call__(self, x):
            return x

    def other(self, x):
        return x

    def script():
        Spare.__call__ = other

    with pytest.warns(NumtraceWarning) as caught:
        captured(script)
    ours = [str(w.message) for w in caught if issubclass(w.category, NumtraceWarning)]
    assert any(
        "Spare.__call__ was replaced during the run (by" in m and "calls through it were not recorded" in m
        for m in ours
    )
