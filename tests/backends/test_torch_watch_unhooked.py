"""`numtrace.watch` on a torch model whose class's `__call__` was replaced (a monkeypatched port).

`Block.__call__ = patched` bypasses torch's module hooks: the watch used to drop every block's
stage without a word. It names them now (a NumtraceWarning, once per class), as the zero-edit
capture of `trace run --backend torch` does, whether the class was patched before or after the
watch attached.
"""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import numtrace  # noqa: E402
from numtrace.errors import NumtraceWarning, forget_warnings  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_warnings():
    forget_warnings()
    yield
    forget_warnings()


def classes():
    """A new Block/Net pair per test: the tests patch the classes."""

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x):
            return torch.relu(self.lin(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([Block(), Block()])
            self.head = nn.Linear(2, 1)

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return self.head(x)

    torch.manual_seed(0)
    return Block, Net, Net().eval()


def bypass(self, x):
    """A patched `__call__` that calls forward itself: torch's hooks never see the call."""
    return self.forward(x) * 2.0


def ours(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, NumtraceWarning)]


def run(model, x, watch_first=None):
    """Watch ``model``, call ``watch_first()`` (a patch after the watch attached), call the model
    once in a recording: (the trace, the warnings before detach, the warnings of detach)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with numtrace.record() as rec:
            watch = numtrace.watch(model)
            if watch_first is not None:
                watch_first()
            with torch.no_grad():
                model(x)
            during = ours(caught)
            watch.detach()
    return rec.trace, during, ours(caught)[len(during) :]


UNHOOKED = "blocks.0, blocks.1 never recorded: {}.__call__ is {}.bypass, not nn.Module's"


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_class_patched_before_or_after_watch_is_named_after_the_models_call(when):
    Block, Net, model = classes()
    x = torch.tensor([[1.0, -2.0]])
    expected = 2.0 * torch.relu(model.blocks[0].lin(x))  # block 0's patched output, not recorded
    patch = lambda: setattr(Block, "__call__", bypass)  # noqa: E731
    if when == "before":
        patch()
    trace, during, at_detach = run(model, x, patch if when == "after" else None)
    assert during == [
        UNHOOKED.format(Block.__qualname__, __name__) + ", which bypasses torch's module hooks "
        "unless it calls super().__call__; patch forward instead"
    ]
    assert at_detach == []  # once per class
    assert trace.order == ["blocks.0.lin", "blocks.1.lin", "head", "output"]  # the children still record
    np.testing.assert_allclose(trace.read("blocks.1.lin"), model.blocks[1].lin(expected).detach().numpy(), rtol=1e-6)


def test_a_class_whose_call_reaches_nn_modules_is_recorded_and_not_named():
    Block, Net, model = classes()

    def chained(self, x):
        return nn.Module.__call__(self, x) * 2.0

    Block.__call__ = chained
    trace, during, at_detach = run(model, torch.ones(1, 2))
    assert during == [] and at_detach == []
    assert trace.order == ["blocks.0.lin", "blocks.0", "blocks.1.lin", "blocks.1", "head", "output"]


def test_a_patched_model_class_is_named_when_the_watch_detaches():
    """The model's own call bypasses the hooks too: nothing fires after it, detach says it."""
    Block, Net, model = classes()
    Net.__call__ = bypass
    trace, during, at_detach = run(model, torch.ones(1, 2))
    assert during == []
    assert len(at_detach) == 1 and at_detach[0].startswith(f"output never recorded: {Net.__qualname__}.__call__")
    assert trace.order == ["blocks.0.lin", "blocks.0", "blocks.1.lin", "blocks.1", "head"]


def test_watch_without_patches_warns_nothing():
    _, _, model = classes()
    trace, during, at_detach = run(model, torch.ones(1, 2))
    assert during == [] and at_detach == []
    assert len(trace.order) == 6
