"""MLX modules created on the fly (outside the module tree) are named under the module that called them.

As in the torch backend (tests/backends/test_pairing_ports.py): a parameterless module made inside a
model's ``__call__`` and called there (a rotation, a kernel wrapper) is recorded as
``<caller>.<Class>``, ``<caller>.<Class>@1`` for its second call, never as a root of its own; a
module with parameters made on the fly is a root of its own (its class name).
"""

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
nn = pytest.importorskip("mlx.nn")

import numtrace  # noqa: E402
from numtrace.backends import mlx_capture  # noqa: E402


class Rotate(nn.Module):
    def __call__(self, x):
        half = x.shape[-1] // 2
        return mx.concatenate([-x[..., half:], x[..., :half]], -1) * 0.5 + x


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.query, self.key = nn.Linear(4, 4), nn.Linear(4, 4)

    def __call__(self, x):
        q, k = Rotate()(self.query(x)), Rotate()(self.key(x))  # modules created on the fly
        return q * k


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = [Block(), Block()]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def captured(fn):
    with numtrace.record(backend="mlx") as rec:
        undo = mlx_capture.capture()
        try:
            fn()
        finally:
            undo()
    return rec.trace


def test_a_module_created_in_a_call_is_named_under_its_caller():
    model, x = Model(), mx.array(np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32))
    trace = captured(lambda: model(x))
    assert trace.order == [
        "layers.0.query", "layers.0.Rotate", "layers.0.key", "layers.0.Rotate@1", "layers.0",
        "layers.1.query", "layers.1.Rotate", "layers.1.key", "layers.1.Rotate@1", "layers.1", "output",
    ]  # fmt: skip
    block = model.layers[0]
    query, key = block.query(x), block.key(x)
    np.testing.assert_array_equal(trace.read("layers.0.Rotate"), np.array(Rotate()(query)))
    np.testing.assert_array_equal(trace.read("layers.0.Rotate@1"), np.array(Rotate()(key)))


def test_a_module_with_parameters_created_in_a_call_is_a_root_of_its_own():
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(4)

        def __call__(self, x):
            return nn.Linear(4, 2)(self.norm(x))  # weights of its own: not part of Head's tree

    trace = captured(lambda: Head()(mx.ones((1, 4))))
    assert trace.order == ["norm", "Linear", "output"]
