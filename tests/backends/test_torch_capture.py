"""Zero-edit capture in-process: roots, prefixes, nested roots, inputs, hooks removed, compile, TorchScript."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch_models import TinyResNet, global_hooks, module_hooks  # noqa: E402

import numtrace  # noqa: E402
from numtrace.backends import REGISTRY, backend, module_of  # noqa: E402
from numtrace.backends.torch_hooks import capture  # noqa: E402
from numtrace.errors import NumtraceWarning  # noqa: E402


def captured(fn, **options):
    with numtrace.record(backend="torch") as rec:
        undo = capture(**options)
        try:
            result = fn()
        finally:
            undo()
    return result, rec.trace


class Vocoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Linear(2, 4)

    def forward(self, x):
        return torch.tanh(self.up(x))


def test_trace_run_backends_are_registered():
    assert [b.name for b in REGISTRY if b.models] == ["torch", "mlx", "fastai"]
    assert module_of(backend("torch")).capture.__module__ == "numtrace.backends.torch"


def test_the_first_model_gets_no_prefix_and_later_ones_their_class_name():
    torch.manual_seed(0)
    encoder, vocoder_a, vocoder_b = nn.Sequential(nn.Linear(2, 2), nn.ReLU()), Vocoder(), Vocoder()
    x = torch.randn(1, 2)

    def script():
        h = encoder(x)
        return vocoder_a(h), vocoder_b(h), encoder(x)

    (a, b, _), trace = captured(script)
    assert trace.order == [
        "0",
        "1",
        "output",
        "Vocoder.up",
        "Vocoder",
        "Vocoder_2.up",
        "Vocoder_2",
        "0@1",
        "1@1",
        "output@1",
    ]
    np.testing.assert_array_equal(trace.read("Vocoder"), a.detach().numpy())
    np.testing.assert_array_equal(trace.read("Vocoder_2"), b.detach().numpy())


def test_a_submodule_called_directly_keeps_its_path_in_the_model():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    _, trace = captured(lambda: (model(torch.ones(1, 2)), model[0](torch.ones(1, 2))))
    assert trace.order == ["0", "1", "output", "0@1"]


def test_a_model_calling_another_top_level_model_is_a_nested_root():
    helper = Vocoder()

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(2, 2)

        def forward(self, x):
            return helper(self.proj(x))  # `helper` is no submodule of Outer

    outer = Outer()
    out, trace = captured(lambda: outer(torch.ones(1, 2)))
    assert trace.order == ["proj", "Vocoder.up", "Vocoder", "output"]
    np.testing.assert_array_equal(trace.read("output"), out.detach().numpy())


def test_modules_added_after_the_first_call_are_named_too():
    model = nn.Sequential(nn.Linear(2, 2))

    def script():
        model(torch.ones(1, 2))
        model.append(nn.Tanh())
        return model(torch.ones(1, 2))

    _, trace = captured(script)
    assert trace.order == ["0", "output", "0@1", "1", "output@1"]


def test_hooks_are_gone_after_capture_even_when_the_script_raises():
    model = TinyResNet().eval()
    before = global_hooks()
    with pytest.raises(ZeroDivisionError):
        captured(lambda: (model(torch.randn(1, 3, 8, 8)), 1 / 0))
    assert global_hooks() == before and module_hooks(model) == []


def test_an_error_inside_a_forward_leaves_the_call_stack_clean():
    class Fails(nn.Module):
        def forward(self, x):
            raise ValueError("inner")

    broken, model = nn.Sequential(nn.Linear(2, 2), Fails()), nn.Linear(2, 2)

    def script():
        try:
            broken(torch.ones(1, 2))
        except ValueError:
            pass
        return model(torch.ones(1, 2))  # a new root, not a child of the failed call

    _, trace = captured(script)
    assert trace.order == ["0", "Linear"]


def test_outputs_are_bit_identical_with_and_without_capture():
    torch.manual_seed(1)
    model, x = TinyResNet().eval(), torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        bare = model(x)
        out, trace = captured(lambda: model(x))
    assert torch.equal(out, bare)
    np.testing.assert_array_equal(trace.read("output"), bare.numpy())


def test_inputs_with_keywords_and_weights_at_the_first_call():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(2, 2)

        def forward(self, x, scale=None, training_flag=True):
            return self.proj(x) * scale

    gate = Gate()
    x, scale = torch.randn(1, 2), torch.full((1, 2), 3.0)
    _, trace = captured(lambda: gate(x, scale=scale, training_flag=False), inputs=True, weights=True)
    assert trace.order == ["proj.weight", "proj.bias", "input.0", "input.scale", "proj.input", "proj", "output"]
    np.testing.assert_array_equal(trace.read("input.scale"), scale.numpy())


def test_probe_globs_narrow_the_capture():
    model = TinyResNet().eval()
    _, trace = captured(lambda: model(torch.randn(1, 3, 8, 8)), include=["layer2.*.conv?"])
    assert trace.order == ["layer2.0.conv1", "layer2.0.conv2", "layer2.1.conv1", "layer2.1.conv2"]


def test_probe_globs_can_pick_one_call_or_only_inputs():
    model = nn.Sequential(nn.Linear(2, 2), nn.Tanh())

    def probed(*probes):
        # as `trace run --probe` does it: the recording's filter sees call indices; capture gets the globs too
        with numtrace.record(backend="torch", include=list(probes)) as rec:
            undo = capture(include=list(probes), inputs=True)
            try:
                for _ in range(4):
                    model(torch.ones(1, 2))
            finally:
                undo()
        return rec.trace.order

    assert probed("*.input") == [f"{name}.input{call}" for call in ("", "@1", "@2", "@3") for name in ("0", "1")]
    assert probed("output@2", "1@3") == ["output@2", "1@3"]
    assert probed("input@1") == ["input@1"]  # the model's own inputs, second call


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
def test_a_compiled_model_is_captured_under_its_own_names():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    compiled = torch.compile(model)
    x = torch.randn(3, 4)
    with torch.no_grad():
        expected = model(x)
        (first, second), trace = captured(lambda: (compiled(x), compiled(x)))
    assert trace.order == ["0", "1", "2", "output", "0@1", "1@1", "2@1", "output@1"]
    assert torch.equal(first, expected) and torch.equal(second, expected)
    np.testing.assert_array_equal(trace.read("output@1"), expected.numpy())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_script_module_is_captured_as_one_stage_with_one_warning():
    scripted = torch.jit.script(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    with pytest.warns(NumtraceWarning, match="TorchScript"):
        out, trace = captured(lambda: scripted(torch.ones(1, 2)))
    assert trace.order == ["output"]
    np.testing.assert_array_equal(trace.read("output"), out.detach().numpy())


def test_module_calls_outside_a_recording_are_not_recorded_and_nothing_breaks():
    model = nn.Linear(2, 2)
    undo = capture()
    try:
        assert model(torch.ones(1, 2)).shape == (1, 2)
    finally:
        undo()
