"""The torch array adapter: every dtype and device to NumPy, recorded dtype kept, values exact, copies."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import numtrace  # noqa: E402
from numtrace import backends  # noqa: E402
from numtrace.backends.torch import ADAPTER  # noqa: E402
from numtrace.errors import TapError  # noqa: E402


def test_the_torch_adapter_is_registered_under_its_sys_modules_key():
    assert backends.backend("torch").module == "numtrace.backends.torch"
    assert backends.adapter_for(torch.zeros(1)) is ADAPTER
    assert backends.framework_versions()["torch"] == torch.__version__


@pytest.mark.parametrize(
    "dtype, name",
    [
        (torch.float32, "float32"),
        (torch.float64, "float64"),
        (torch.int8, "int8"),
        (torch.uint8, "uint8"),
        (torch.int16, "int16"),
        (torch.int32, "int32"),
        (torch.int64, "int64"),
        (torch.uint16, "uint16"),
        (torch.uint32, "uint32"),
        (torch.uint64, "uint64"),
        (torch.bool, "bool"),
        (torch.complex64, "complex64"),
        (torch.complex128, "complex128"),
    ],
)
def test_plain_dtypes_convert_exactly(dtype, name):
    source = torch.arange(-3, 9).reshape(3, 4)
    t = (source % 2 == 0) if dtype is torch.bool else (source.abs() if name.startswith("uint") else source).to(dtype)
    values, recorded = ADAPTER.to_numpy(t)
    assert recorded == name
    assert values.shape == (3, 4)
    reference = t.to(torch.int64 if name.startswith("uint") else t.dtype).numpy()
    np.testing.assert_array_equal(values, reference)


def test_bfloat16_is_recorded_as_bfloat16_with_exact_values(tmp_path):
    t = torch.tensor([1.0, -2.5, 3.140625, 1e-3, 65504.0, float("inf")], dtype=torch.bfloat16)
    values, recorded = ADAPTER.to_numpy(t)
    assert recorded == "bfloat16" and values.dtype == np.float32
    np.testing.assert_array_equal(values, t.float().numpy())
    path = tmp_path / "bf16.safetensors"
    with numtrace.record(path, backend="torch"):
        numtrace.tap("x", t)
    with numtrace.load(path) as trace:
        assert trace.info("x").dtype == "bfloat16"
        np.testing.assert_array_equal(trace.read("x"), t.float().numpy())


def test_float16_stays_float16_on_disk(tmp_path):
    t = torch.tensor([[0.1, 65504.0], [-6.1e-5, 1.0 / 3.0]], dtype=torch.float16)
    path = tmp_path / "fp16.safetensors"
    with numtrace.record(path, backend="torch"):
        numtrace.tap("x", t)
    with numtrace.load(path) as trace:
        assert trace.info("x").dtype == "float16"
        stored = trace.read("x")
        assert stored.dtype == np.float16
        np.testing.assert_array_equal(stored, t.numpy())


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2"])
def test_float8_keeps_its_dtype_name(name, tmp_path):
    if not hasattr(torch, name):
        pytest.skip(f"torch {torch.__version__} has no {name}")
    t = torch.tensor([0.5, -1.75, 3.0, 0.0]).to(getattr(torch, name))
    values, recorded = ADAPTER.to_numpy(t)
    assert recorded == name
    np.testing.assert_array_equal(values, t.float().numpy())
    path = tmp_path / "f8.safetensors"
    with numtrace.record(path, backend="torch"):
        numtrace.tap("x", t)
    with numtrace.load(path) as trace:
        assert trace.info("x").dtype == name
        np.testing.assert_array_equal(trace.read("x"), t.float().numpy())


def test_grad_tensors_views_and_strided_tensors_convert():
    w = torch.randn(3, 4, requires_grad=True)
    values, _ = ADAPTER.to_numpy(w * 2)
    np.testing.assert_array_equal(values, (w * 2).detach().numpy())
    np.testing.assert_array_equal(ADAPTER.to_numpy(w.T)[0], w.detach().numpy().T)
    z = torch.complex(torch.randn(3), torch.randn(3))
    np.testing.assert_array_equal(ADAPTER.to_numpy(z.conj())[0], np.conj(z.numpy()))
    np.testing.assert_array_equal(ADAPTER.to_numpy(torch._neg_view(z))[0], -z.numpy())
    sparse = torch.eye(3).to_sparse()
    np.testing.assert_array_equal(ADAPTER.to_numpy(sparse)[0], np.eye(3, dtype=np.float32))
    assert ADAPTER.to_numpy(torch.tensor(2.5))[0].shape == ()


def test_a_recorded_tensor_is_a_copy_that_later_in_place_ops_cannot_change():
    t = torch.ones(4)
    with numtrace.record() as rec:
        assert numtrace.tap("x", t) is t
        t.mul_(7)
    np.testing.assert_array_equal(rec.trace.read("x"), np.ones(4, np.float32))


def test_without_a_recording_tap_returns_the_tensor_untouched():
    t = torch.randn(2, requires_grad=True)
    assert numtrace.tap("x", t) is t


@pytest.mark.filterwarnings("ignore:(ComplexHalf|torch.quantize_per_tensor)")
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: torch.ones(2, dtype=torch.complex64).to(torch.complex32), "complex32|ComplexHalf|dtype"),
        (lambda: torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.qint8), "quantized|dtype"),
        (lambda: torch.ones(2, device="meta"), "meta"),
    ],
)
def test_tensors_that_cannot_be_recorded_say_why(make, message):
    with pytest.raises(TapError, match=message):
        ADAPTER.to_numpy(make())
