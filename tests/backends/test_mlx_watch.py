"""MLX arrays in traces, and numtrace.watch on mlx.nn.Module (real MLX, CPU)."""

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
nn = pytest.importorskip("mlx.nn")

import numtrace  # noqa: E402
from numtrace import backends  # noqa: E402
from numtrace.backends import mlx_batch  # noqa: E402
from numtrace.errors import NumtraceWarning  # noqa: E402


class Pair(nn.Module):
    """Returns a tuple (and a None that is skipped)."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 3)

    def __call__(self, x):
        y = self.proj(x)
        return y, None, y * 2


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = [nn.Linear(3, 3), nn.Linear(3, 3)]
        self.heads = {"mel": nn.Linear(3, 2), "gate": nn.Linear(3, 1)}
        self.seq = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
        self.pair = Pair()

    def __call__(self, x):
        for block in self.blocks:
            x = block(x)
        x = self.seq(x)
        a, _, b = self.pair(x)
        return {"mel": self.heads["mel"](a), "gate": self.heads["gate"](b)}


def fixed_linear(n_in, n_out, scale=1.0):
    layer = nn.Linear(n_in, n_out)
    layer.weight = mx.arange(n_out * n_in, dtype=mx.float32).reshape(n_out, n_in) * scale
    layer.bias = mx.ones((n_out,))
    return layer


# -- the adapter ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype, name",
    [
        ("float32", "float32"),
        ("float16", "float16"),
        ("bfloat16", "bfloat16"),
        ("int32", "int32"),
        ("uint8", "uint8"),
        ("bool_", "bool"),
        ("complex64", "complex64"),
        ("int64", "int64"),
    ],
)
def test_mlx_arrays_convert_with_their_recorded_dtype(dtype, name):
    x = (mx.arange(6).reshape(2, 3) - 2).astype(getattr(mx, dtype))
    values, recorded = backends.to_numpy(x)
    assert recorded == name
    assert values.shape == (2, 3)
    np.testing.assert_array_equal(values, np.array(x.astype(mx.float32) if dtype == "bfloat16" else x))


def test_bfloat16_values_are_exact_also_for_strided_views_and_scalars():
    x = (mx.arange(12, dtype=mx.float32) / 7 - 0.3).astype(mx.bfloat16).reshape(3, 4)
    exact = np.array(x.astype(mx.float32))
    for value, expected in ((x, exact), (x.T, exact.T), (x[1:, ::2], exact[1:, ::2]), (x[0, 1], exact[0, 1])):
        values, name = backends.to_numpy(value)
        assert name == "bfloat16" and values.dtype == np.float32
        np.testing.assert_array_equal(values, expected)
    assert backends.to_numpy(x)[0][0, 1] == np.float32(-0.1572265625)  # 1/7 - 0.3 rounded to bfloat16


def test_tap_records_lazy_mlx_arrays_and_keeps_bfloat16(tmp_path):
    path = tmp_path / "t.safetensors"
    with numtrace.record(path, backend="mlx"):
        x = mx.ones((2, 2)) * 3  # still lazy
        assert numtrace.tap("x", x) is x
        numtrace.tap("half", (mx.ones((2,)) / 3).astype(mx.bfloat16))
        numtrace.tap("scalar", mx.array(2.5))
    with numtrace.load(path) as trace:
        assert trace.order == ["x", "half", "scalar"]
        assert trace.read("x").tolist() == [[3.0, 3.0], [3.0, 3.0]]
        assert trace.info("half").dtype == "bfloat16"
        assert trace.read("half").tolist() == [0.333984375, 0.333984375]
        assert trace.read("scalar").item() == 2.5
        assert "mlx" in trace.metadata["numtrace.frameworks"]


# -- watch ----------------------------------------------------------------------------------------


def test_watch_names_nested_lists_dicts_sequential_and_flattens_outputs():
    model = Nested()
    with numtrace.record() as rec, numtrace.watch(model) as w:
        out = model(mx.ones((1, 3)))
    assert rec.trace.order == [
        "blocks.0",
        "blocks.1",
        "seq.layers.0",
        "seq.layers.1",
        "seq",
        "pair.proj",
        "pair.0",
        "pair.2",
        "heads.mel",
        "heads.gate",
        "output.mel",
        "output.gate",
    ]
    np.testing.assert_array_equal(rec.trace.read("output.mel"), np.array(out["mel"]))
    assert sorted(w.stages) == sorted(
        [
            "",
            "blocks.0",
            "blocks.1",
            "heads.mel",
            "heads.gate",
            "seq",
            "seq.layers.0",
            "seq.layers.1",
            "pair",
            "pair.proj",
        ][1:]
        + ["output"]
    )


def test_repeated_calls_get_call_indices_and_one_eval_per_top_level_call(monkeypatch):
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    evals = []
    real_eval = mx.eval
    monkeypatch.setattr(mx, "eval", lambda *args: (evals.append(args), real_eval(*args))[1])
    x = mx.ones((1, 3))
    with numtrace.record() as rec, numtrace.watch(model):
        for _ in range(3):
            x = model(x)
    assert rec.trace.order == [f"{n}{s}" for s in ("", "@1", "@2") for n in ("layers.0", "layers.1", "output")]
    # one batched evaluation per forward: the output plus its 3 captures, never one by one
    assert len(evals) == 3
    assert all(len(outputs) == 1 and len(captures) == 3 for outputs, captures in evals)
    np.testing.assert_array_equal(rec.trace.read("output@2"), np.array(x))


def test_explicit_taps_inside_a_forward_keep_their_place_and_scope():
    class Tapping(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)

        def __call__(self, x):
            x = self.a(x)
            numtrace.tap("between", x + 1)
            return self.b(x)

    model = Tapping()
    with numtrace.record() as rec, numtrace.scope("dec"), numtrace.watch(model, prefix="tts"):
        model(mx.ones((1, 2)))
        model(mx.ones((1, 2)))
    assert rec.trace.order == [
        "dec.tts.a",
        "dec.between",
        "dec.tts.b",
        "dec.tts",
        "dec.tts.a@1",
        "dec.between@1",
        "dec.tts.b@1",
        "dec.tts@1",
    ]


def test_watched_results_are_bit_identical_and_classes_come_back():
    mx.random.seed(0)
    model = Nested()
    x = mx.random.normal((4, 3))
    before = {k: np.array(v) for k, v in model(x).items()}
    classes = {id(m): type(m) for _, m in model.named_modules()}
    with numtrace.record() as rec, numtrace.watch(model):
        during = {k: np.array(v) for k, v in model(x).items()}
        assert isinstance(model, Nested) and type(model).__name__ == "Nested" and type(model) is not Nested
    for key in before:
        np.testing.assert_array_equal(during[key], before[key])
        np.testing.assert_array_equal(rec.trace.read(f"output.{key}"), before[key])
    assert {id(m): type(m) for _, m in model.named_modules()} == classes


def test_an_exception_inside_forward_restores_classes_and_keeps_what_ran(tmp_path):
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.first, self.second = fixed_linear(2, 2), nn.Linear(5, 2)

        def __call__(self, x):
            return self.second(self.first(x))  # shape error in `second`

    model = Broken()
    path = tmp_path / "crash.safetensors"
    with pytest.raises(ValueError):
        with numtrace.record(path), numtrace.watch(model):
            model(mx.ones((1, 2)))
    assert type(model) is Broken and type(model.first) is nn.Linear and type(model.second) is nn.Linear
    with numtrace.load(path) as trace:
        assert trace.order == ["first"]
        assert trace.read("first").tolist() == [[2.0, 6.0]]  # [0+1, 2+3] + bias 1
        assert trace.metadata["numtrace.status"].startswith("error: ValueError")


def test_load_weights_and_parameters_work_while_watched(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    names = [k for k, _ in tree_flatten(model.parameters())]
    path = str(tmp_path / "w.safetensors")
    weights = {k: mx.full(v.shape, 0.5) for k, v in tree_flatten(model.parameters())}
    mx.save_safetensors(path, weights)
    with numtrace.record() as rec, numtrace.watch(model):
        assert [k for k, _ in tree_flatten(model.parameters())] == names
        model.load_weights(path)  # strict: names and shapes must match
        y = model(mx.ones((1, 2)))
    assert y.item() == 0.5 * 3 * (0.5 * 2 + 0.5) + 0.5  # 2.75
    assert rec.trace.read("output").item() == 2.75
    assert [k for k, _ in tree_flatten(model.parameters())] == names


def test_include_exclude_prefix_inputs_and_weights():
    model = nn.Sequential(fixed_linear(2, 2), nn.ReLU(), fixed_linear(2, 1, 0.5))
    with numtrace.record() as rec:
        with numtrace.watch(model, include=["mel.layers.*"], exclude=["*.1"], inputs=True, weights=True, prefix="mel"):
            model(mx.array([[1.0, -1.0]]))
    assert rec.trace.order == [
        "mel.layers.0.weight",
        "mel.layers.0.bias",
        "mel.layers.2.weight",
        "mel.layers.2.bias",
        "mel.layers.0.input",
        "mel.layers.0",
        "mel.layers.2.input",
        "mel.layers.2",
    ]
    assert rec.trace.read("mel.layers.0").tolist() == [[0.0, 0.0]]  # [0*1 + 1*-1, 2*1 + 3*-1] + 1
    assert rec.trace.read("mel.layers.2.input").tolist() == [[0.0, 0.0]]
    assert rec.trace.read("mel.layers.2").tolist() == [[1.0]]


def test_the_root_input_is_named_input_and_keywords_are_kept():
    class Two(nn.Module):
        def __call__(self, x, mask=None, scale=1.0):
            return x * mask * scale

    model = Two()
    with numtrace.record() as rec, numtrace.watch(model, inputs=True):
        model(mx.ones((2,)), mask=mx.zeros((2,)), scale=2.0)
    assert rec.trace.order == ["input.0", "input.mask", "output"]


def test_watching_twice_and_detaching_in_any_order():
    layer = nn.Linear(2, 2)
    first = numtrace.watch(layer, prefix="a")
    second = numtrace.watch(layer, prefix="b")
    with numtrace.record() as rec:
        layer(mx.ones((1, 2)))
    assert rec.trace.order == ["a", "b"]
    first.detach()
    with numtrace.record() as rec:
        layer(mx.ones((1, 2)))
    assert rec.trace.order == ["b"]
    second.detach()
    second.detach()
    assert type(layer) is nn.Linear


def test_no_recording_means_nothing_is_held():
    model = nn.Sequential(nn.Linear(2, 2))
    with numtrace.watch(model):
        y = model(mx.ones((1, 2)))
    assert mlx_batch.STATE.sink is None and mlx_batch.STATE.stack == []
    assert y.shape == (1, 2)


def test_bfloat16_model_outputs_are_recorded_as_bfloat16():
    model = nn.Sequential(nn.Linear(4, 4), nn.GELU())
    model.set_dtype(mx.bfloat16)
    x = mx.random.normal((2, 4)).astype(mx.bfloat16)
    with numtrace.record() as rec, numtrace.watch(model):
        y = model(x)
    assert rec.trace.info("output").dtype == "bfloat16"
    np.testing.assert_array_equal(rec.trace.read("output"), np.array(y.astype(mx.float32)))


def test_compiled_calls_under_watch_warn_once_and_record_no_placeholders():
    numtrace.errors.forget_warnings()
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    compiled = mx.compile(model)
    x = mx.ones((1, 2))
    with pytest.warns(NumtraceWarning) as caught, numtrace.record() as rec, numtrace.watch(model):
        y = compiled(x)
        compiled(x)
        model(x)  # an uncompiled call is recorded as usual
    np.testing.assert_array_equal(np.array(y), np.array(model(x)))
    assert rec.trace.order == ["layers.0", "layers.1", "output"]
    ours = [str(w.message) for w in caught if issubclass(w.category, NumtraceWarning)]
    assert len(ours) == 1
    assert ours[0].startswith("MLX module outputs inside mx.compile or mx.vmap cannot be recorded")


def test_gradients_are_unchanged_by_watching():
    mx.random.seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 1))
    x = mx.random.normal((5, 3))
    step = nn.value_and_grad(model, lambda m, x: (m(x) ** 2).mean())
    loss0, grads0 = step(model, x)
    with numtrace.record() as rec, numtrace.watch(model):
        loss1, grads1 = step(model, x)
    assert loss0.item() == loss1.item()
    for (_, a), (_, b) in zip(tree_flatten(grads0), tree_flatten(grads1)):
        np.testing.assert_array_equal(np.array(a), np.array(b))
    assert rec.trace.order == ["layers.0", "layers.1", "layers.2", "output"]


def tree_flatten(tree):
    from mlx.utils import tree_flatten as flatten

    return flatten(tree)


def test_a_tuple_output_that_would_meet_a_child_name_goes_under_output_as_in_torch():
    class Split(nn.Sequential):
        def __call__(self, x):
            y = super().__call__(x)
            return y, -y

    model = Split(nn.Linear(2, 2), nn.ReLU())
    with numtrace.record() as rec, numtrace.watch(model, prefix="seq"):
        model(mx.ones((1, 2)))
    # keys `0`, `1` would read as torch's `seq.0`, `seq.1` (MLX: `seq.layers.0`): kept apart
    assert rec.trace.order == ["seq.layers.0", "seq.layers.1", "seq.output.0", "seq.output.1"]
