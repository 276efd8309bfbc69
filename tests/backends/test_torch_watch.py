"""numtrace.watch on torch models: every module named and recorded, exact values, hooks gone afterwards."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch_models import Encoder, TinyResNet, TransformerBlock, global_hooks, module_hooks  # noqa: E402

import numtrace  # noqa: E402
from numtrace.errors import NumtraceWarning  # noqa: E402


def watched(model, *args, **options):
    with numtrace.record() as rec, numtrace.watch(model, **options):
        out = model(*args)
    return out, rec.trace


def test_every_module_of_a_resnet_is_recorded_with_the_values_it_computed():
    torch.manual_seed(0)
    model, x = TinyResNet().eval(), torch.randn(2, 3, 8, 8)
    before = global_hooks()
    with torch.no_grad():
        out, trace = watched(model, x)
        expected = model(x)
    assert torch.equal(out, expected)  # bit-identical with and without hooks
    names = {path or "output" for path, _ in model.named_modules()}
    called = {n.split("@")[0] for n in trace.order}
    assert called == names - {"layer1.0.shortcut.0"}  # every module (Identity included) that ran
    np.testing.assert_array_equal(trace.read("output"), expected.numpy())
    with torch.no_grad():
        stem = model.stem(x)
        np.testing.assert_array_equal(trace.read("stem"), stem.numpy())
        np.testing.assert_array_equal(trace.read("layer1.0.conv1"), model.layer1[0].conv1(stem).numpy())
    # a ReLU module used twice per block: call indices in execution order
    assert (
        trace.order.index("layer1.0.relu") < trace.order.index("layer1.0.conv2") < trace.order.index("layer1.0.relu@1")
    )
    assert module_hooks(model) == [] and global_hooks() == before


def test_nn_identity_and_in_place_relu_record_the_values_before_later_in_place_ops():
    torch.manual_seed(1)
    model = TinyResNet().eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        _, trace = watched(model, x)
        stem = model.stem(x)
        block = model.layer1[0]
        bn1 = block.bn1(block.conv1(stem))
    # bn1's output is overwritten in place by ReLU(inplace=True) right after the hook: the record keeps it
    np.testing.assert_array_equal(trace.read("layer1.0.bn1"), bn1.numpy())
    assert (trace.read("layer1.0.bn1") < 0).any() and (trace.read("layer1.0.relu") >= 0).all()
    # Identity returns its input (same storage): recorded as the values, not as shared memory
    np.testing.assert_array_equal(trace.read("layer1.0.shortcut"), stem.numpy())


def test_a_transformer_block_with_tuple_outputs_is_flattened():
    torch.manual_seed(2)
    block, x = TransformerBlock().eval(), torch.randn(2, 5, 16)
    with torch.no_grad():
        (hidden, weights), trace = watched(block, x)
    assert trace.read("output.0").shape == (2, 5, 16)
    np.testing.assert_array_equal(trace.read("output.0"), hidden.numpy())
    np.testing.assert_array_equal(trace.read("output.1"), weights.numpy())
    assert {"attn.0", "attn.1", "mlp.0", "mlp.1", "mlp.2", "mlp", "norm1", "norm2"} <= set(trace.order)
    assert trace.order.index("attn.1") < trace.order.index("mlp") < trace.order.index("output.0")


def test_dataclass_outputs_and_nested_tuples_are_flattened_by_field():
    torch.manual_seed(3)
    encoder = Encoder().eval()
    with torch.no_grad():
        out, trace = watched(encoder, torch.randn(1, 3, 4))
    assert {"output.last_hidden_state", "output.attentions.0", "output.attentions.1"} <= set(trace.order)
    np.testing.assert_array_equal(trace.read("output.last_hidden_state"), out.last_hidden_state.numpy())
    assert "layers.1.attn.1" in trace.order


def test_a_module_called_twice_per_step_gets_call_indices_in_order():
    torch.manual_seed(4)
    cell = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    state = torch.randn(1, 3)
    expected = []
    with numtrace.record() as rec, numtrace.watch(cell, prefix="ode.f"):
        for _ in range(3):
            k1 = cell(state)
            k2 = cell(state + 0.5 * k1)
            expected += [k1.detach().numpy(), k2.detach().numpy()]
            state = state + k2
    trace = rec.trace
    outputs = [n for n in trace.order if n.split("@")[0] == "ode.f"]
    assert outputs == ["ode.f"] + [f"ode.f@{i}" for i in range(1, 6)]
    for name, value in zip(outputs, expected):
        np.testing.assert_array_equal(trace.read(name), value)


def test_a_sequential_ending_in_an_lstm_does_not_collide_with_its_children():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(2, 3), nn.LSTM(3, 4, batch_first=True))
    with torch.no_grad():
        (out, (h, c)), trace = watched(model, torch.randn(1, 5, 2), prefix="seq")
    # `seq.0` is the Linear; the Sequential's own tuple output goes under `seq.output`
    assert trace.read("seq.0").shape == (1, 5, 3)
    np.testing.assert_array_equal(trace.read("seq.output.0"), out.numpy())
    np.testing.assert_array_equal(trace.read("seq.output.1.1"), c.numpy())
    np.testing.assert_array_equal(trace.read("seq.1.0"), out.numpy())


def test_include_exclude_inputs_and_weights():
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    x = torch.randn(4, 2)
    with (
        numtrace.record() as rec,
        numtrace.watch(model, include=["net.*"], exclude=["net.1", "net.1.*"], inputs=True, weights=True, prefix="net"),
    ):
        model(x)
    trace = rec.trace
    # globs select stage names: `net` (the output) is not under `net.*`, its input `net.input` is
    assert trace.order == [
        "net.0.weight",
        "net.0.bias",
        "net.2.weight",
        "net.2.bias",
        "net.input",
        "net.0.input",
        "net.0",
        "net.2.input",
        "net.2",
    ]
    np.testing.assert_array_equal(trace.read("net.0.input"), x.numpy())
    np.testing.assert_array_equal(trace.read("net.2.bias"), model[2].bias.detach().numpy())


def test_keyword_inputs_are_recorded_by_name():
    torch.manual_seed(7)
    block = TransformerBlock().eval()
    x, mask = torch.randn(1, 3, 16), torch.zeros(3, 3, dtype=torch.bool)
    with torch.no_grad(), numtrace.record() as rec, numtrace.watch(block, inputs=True, include=["input", "output"]):
        block(x, attn_mask=mask)
    assert rec.trace.order == ["input.0", "input.attn_mask", "output.0", "output.1"]
    np.testing.assert_array_equal(rec.trace.read("input.attn_mask"), mask.numpy())


def test_buffers_are_weights_too_and_bf16_models_keep_their_dtype(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)).to(torch.bfloat16).eval()
    x = torch.randn(2, 4, dtype=torch.bfloat16)
    path = tmp_path / "bf16.safetensors"
    with torch.no_grad(), numtrace.record(path, backend="torch"), numtrace.watch(model, weights=True):
        out = model(x)
    with numtrace.load(path) as trace:
        assert "1.running_var" in trace.order and "1.num_batches_tracked" in trace.order
        assert trace.info("output").dtype == "bfloat16" and trace.info("1.running_var").dtype == "bfloat16"
        np.testing.assert_array_equal(trace.read("output"), out.float().numpy())


def test_fp16_module_outputs_stay_float16():
    model = nn.Linear(3, 2).half()
    with torch.no_grad():
        out, trace = watched(model, torch.randn(1, 3, dtype=torch.float16))
    assert trace.info("output").dtype == "float16"
    np.testing.assert_array_equal(trace.read("output"), out.numpy())


def test_hooks_are_removed_after_an_exception_and_never_replace_outputs():
    class Fails(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model = nn.Sequential(nn.Linear(2, 2), Fails())
    before = global_hooks()
    with pytest.raises(RuntimeError, match="boom"):
        with numtrace.record() as rec, numtrace.watch(model):
            model(torch.ones(1, 2))
    assert rec.trace.order == ["0"]
    assert module_hooks(model) == [] and global_hooks() == before


def test_watching_without_a_recording_records_nothing_and_changes_nothing():
    model = nn.Linear(2, 2)
    x = torch.randn(1, 2)
    with numtrace.watch(model) as w:
        assert w.attached and w.stages == ["output"]
        assert torch.equal(model(x), model(x))
    assert not w.attached and module_hooks(model) == []


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile's own imports
def test_a_compiled_model_is_named_without_orig_mod():
    torch.manual_seed(8)
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    compiled = torch.compile(model)
    x = torch.randn(3, 4)
    with torch.no_grad():
        expected = model(x)
        out, trace = watched(compiled, x)
    assert trace.order == ["0", "1", "2", "output"]
    np.testing.assert_array_equal(trace.read("output"), expected.numpy())
    assert torch.equal(out, expected)
    assert module_hooks(model) == []


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_script_module_records_its_output_and_says_why_no_more(recwarn):
    scripted = torch.jit.script(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    x = torch.randn(1, 2)
    before = global_hooks()
    with torch.no_grad():
        out, trace = watched(scripted, x)
    assert trace.order == ["output"]
    np.testing.assert_array_equal(trace.read("output"), out.detach().numpy())
    messages = [str(w.message) for w in recwarn if issubclass(w.category, NumtraceWarning)]
    assert len(messages) == 1 and "TorchScript" in messages[0]
    assert global_hooks() == before


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
def test_an_output_numtrace_cannot_record_is_reported_once_not_raised():
    class Quantizes(nn.Module):
        def forward(self, x):
            return torch.quantize_per_tensor(x, 0.1, 0, torch.qint8)

    model = nn.Sequential(nn.Linear(2, 2), Quantizes())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with numtrace.record() as rec, numtrace.watch(model, prefix="q"):
            model(torch.ones(1, 2))
            model(torch.ones(1, 2))
    assert rec.trace.order == ["q.0", "q.0@1"]
    ours = [str(w.message) for w in caught if issubclass(w.category, NumtraceWarning)]
    # once per stage (q.1, and the Sequential q that returns its output), not once per call
    assert len(ours) == 2 and all("quantized" in m for m in ours)
    assert "'q.1'" in ours[0] and "'q'" in ours[1]
