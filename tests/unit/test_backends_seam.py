import sys

import numpy as np
import pytest

from numtrace import backends
from numtrace.errors import TapError


def test_the_adapter_table_is_keyed_by_sys_modules_and_starts_with_numpy():
    assert list(backends.ADAPTERS)[0] == "numpy"
    assert all(isinstance(key, str) and isinstance(mod, str) for key, mod in backends.ADAPTERS.items())


def test_an_adapter_is_used_only_when_its_framework_is_imported(monkeypatch):
    monkeypatch.setitem(backends.ADAPTERS, "numtrace_fake_framework", "numtrace_fake_adapter_module")
    monkeypatch.delitem(sys.modules, "numtrace_fake_framework", raising=False)
    # The fake adapter module does not exist: consulting it would raise ModuleNotFoundError.
    names = [a.name for a in backends.loaded_adapters()]
    assert names[0] == "numpy"
    assert len(names) == sum(key in sys.modules for key in backends.ADAPTERS)


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
