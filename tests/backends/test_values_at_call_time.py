"""Every backend records a value as it was at the moment of the call, whatever the program does later.

mlx-whisper's blocks do ``x += y`` on the previous block's output (MLX updates the array object
in place), decoders write key/value caches in place, loops reuse buffers. A backend that held a
reference and read it later recorded ``blocks.0 + blocks.1.attn`` under ``blocks.0``: a false
LARGE on a correct port. Each case below mutates what was just recorded, in memory and on disk.
"""

import numpy as np
import pytest

import numtrace

DEST = ["memory", "disk"]


def recorded(tmp_path, dest, run, backend):
    """Run ``run()`` in a recording (in memory or to a file); the trace's stages as float arrays."""
    path = None if dest == "memory" else tmp_path / "t.safetensors"
    with numtrace.record(path, backend=backend) as rec:
        run()
    trace = rec.trace
    return {name: np.asarray(trace.read(name), dtype=np.float64) for name in trace.order}


# -- MLX -------------------------------------------------------------------------------------


@pytest.fixture
def mlx():
    mx = pytest.importorskip("mlx.core")
    nn = pytest.importorskip("mlx.nn")

    class AddBlock(nn.Module):
        """mlx-whisper's residual: ``x += y`` updates the caller's array in place."""

        def __init__(self, k):
            super().__init__()
            self.k = k

        def __call__(self, x):
            y = x * self.k
            x += y
            return x, None

    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = [AddBlock(1.0), AddBlock(2.0)]

        def __call__(self, x):
            for block in self.blocks:
                x, _ = block(x)
            return x

    class Step(nn.Module):
        """A key/value cache written in place, returned at every step."""

        def __call__(self, cache, t, value):
            cache[t] = value
            return cache

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.step = Step()

        def __call__(self, values):
            cache = mx.zeros((4,))
            for t in range(4):
                out = self.step(cache, t, values[t])
                h = numtrace.tap("hidden", out * 1.0)
                h[0] = -1.0  # an explicit tap's array changed right after it
            return out

    return mx, nn, Stack, Decoder


@pytest.mark.parametrize("dest", DEST)
def test_mlx_zero_edit_capture_keeps_outputs_and_inputs_mutated_in_place(tmp_path, dest, mlx):
    from numtrace.backends import mlx_capture

    mx, _, Stack, Decoder = mlx
    model, decoder = Stack(), Decoder()

    def run():
        undo = mlx_capture.capture(inputs=True)
        try:
            mx.eval(model(mx.ones((3,))))
            mx.eval(decoder(mx.array([1.0, 2.0, 3.0, 4.0])))
        finally:
            undo()

    stages = recorded(tmp_path, dest, run, "mlx")
    assert stages["input"].tolist() == [1.0] * 3  # block 0 then adds to it in place
    assert stages["blocks.0.input"].tolist() == [1.0] * 3
    assert stages["blocks.0"].tolist() == [2.0] * 3  # 1 + 1*1, before block 1's `x += y` (was 6)
    assert stages["blocks.1.input"].tolist() == [2.0] * 3
    assert stages["blocks.1"].tolist() == [6.0] * 3
    assert stages["output"].tolist() == [6.0] * 3
    steps = [stages["Decoder.step" + ("" if t == 0 else f"@{t}")].tolist() for t in range(4)]
    assert steps == [[1, 0, 0, 0], [1, 2, 0, 0], [1, 2, 3, 0], [1, 2, 3, 4]]
    assert stages["hidden"].tolist() == [1, 0, 0, 0]
    assert stages["hidden@3"].tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize("dest", DEST)
def test_mlx_watch_keeps_outputs_mutated_in_place(tmp_path, dest, mlx):
    mx, _, Stack, Decoder = mlx
    model, decoder = Stack(), Decoder()

    def run():
        with numtrace.watch(model), numtrace.watch(decoder, prefix="dec"):
            mx.eval(model(mx.ones((3,))))
            mx.eval(decoder(mx.array([1.0, 2.0, 3.0, 4.0])))

    stages = recorded(tmp_path, dest, run, "mlx")
    assert stages["blocks.0"].tolist() == [2.0] * 3
    assert stages["blocks.1"].tolist() == [6.0] * 3
    assert [stages[f"dec.step@{t}" if t else "dec.step"].tolist()[t] for t in range(4)] == [1, 2, 3, 4]
    assert stages["dec.step"].tolist() == [1, 0, 0, 0]
    assert stages["hidden@1"].tolist() == [1, 2, 0, 0]


def test_mlx_capture_still_evaluates_once_per_top_level_call(mlx, monkeypatch):
    """The snapshots are graph nodes evaluated with the output: still one mx.eval per forward."""
    mx, _, Stack, _ = mlx
    model = Stack()
    calls = []
    real_eval = mx.eval
    monkeypatch.setattr(mx, "eval", lambda *a: (calls.append(1), real_eval(*a))[1])
    with numtrace.record(backend="mlx"), numtrace.watch(model):
        model(mx.ones((3,)))
    assert len(calls) == 1


# -- torch -----------------------------------------------------------------------------------


@pytest.fixture
def torch_models():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class AddBlock(nn.Module):
        def __init__(self, k):
            super().__init__()
            self.k = k

        def forward(self, x):
            x += x * self.k
            return x, None

    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([AddBlock(1.0), AddBlock(2.0)])
            self.act = nn.ReLU(inplace=True)

        def forward(self, x):
            for block in self.blocks:
                x, _ = block(x)
            x -= 10.0
            return self.act(x)  # overwrites the (already negative) tensor in place

    class Step(nn.Module):
        def forward(self, cache, t, value):
            cache[t] = value
            return cache

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.step = Step()

        def forward(self, values):
            cache = torch.zeros(4)
            buffer = torch.empty(4)
            for t in range(4):
                out = self.step(cache, t, values[t])
                buffer.copy_(out)  # one buffer reused for every tap
                numtrace.tap("hidden", buffer)
            return out

    return torch, Stack, Decoder


@pytest.mark.parametrize("dest", DEST)
@pytest.mark.parametrize("how", ["capture", "watch"])
def test_torch_keeps_outputs_mutated_in_place(tmp_path, dest, how, torch_models):
    torch, Stack, Decoder = torch_models
    from numtrace.backends import torch_hooks

    model, decoder = Stack(), Decoder()

    def run():
        with torch.no_grad():
            if how == "capture":
                undo = torch_hooks.capture(inputs=True)
                try:
                    model(torch.ones(3))
                    decoder(torch.tensor([1.0, 2.0, 3.0, 4.0]))
                finally:
                    undo()
            else:
                with numtrace.watch(model, inputs=True), numtrace.watch(decoder, prefix="Decoder"):
                    model(torch.ones(3))
                    decoder(torch.tensor([1.0, 2.0, 3.0, 4.0]))

    stages = recorded(tmp_path, dest, run, "torch")
    assert stages["input"].tolist() == [1.0] * 3
    assert stages["blocks.0"].tolist() == [2.0] * 3
    assert stages["blocks.1.input"].tolist() == [2.0] * 3
    assert stages["blocks.1"].tolist() == [6.0] * 3
    assert stages["act.input"].tolist() == [-4.0] * 3  # ReLU(inplace=True) then zeroes it
    assert stages["output"].tolist() == [0.0] * 3
    steps = [stages["Decoder.step" + ("" if t == 0 else f"@{t}")].tolist() for t in range(4)]
    assert steps == [[1, 0, 0, 0], [1, 2, 0, 0], [1, 2, 3, 0], [1, 2, 3, 4]]
    assert stages["hidden@1"].tolist() == [1, 2, 0, 0]
