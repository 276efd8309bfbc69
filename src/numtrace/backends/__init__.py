"""The backend seam: one small adapter module per framework, chosen lazily.

``ADAPTERS`` maps a ``sys.modules`` key to the numtrace module holding that
framework's adapter. An adapter is consulted only when its framework is
already in ``sys.modules``, i.e. when the user's program imported it: numtrace
itself never imports torch, mlx or fastai. NumPy, numtrace's own dependency,
comes first.

Each adapter module defines ``ADAPTER``, an object with:

- ``name``: the backend name (``"numpy"``)
- ``handles(x) -> bool``: whether ``x`` is one of its arrays
- ``to_numpy(x) -> (values, dtype)``: the value array and recorded dtype name
- ``version() -> str``: the framework's version

Example:
    >>> import numpy as np
    >>> values, dtype = to_numpy(np.float32(1.5))
    >>> values, dtype
    (array(1.5, dtype=float32), 'float32')
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Protocol

import numpy as np

from ..errors import TapError


class Adapter(Protocol):
    name: str

    def handles(self, x: Any) -> bool: ...

    def to_numpy(self, x: Any) -> tuple[np.ndarray, str]: ...

    def version(self) -> str: ...


#: sys.modules key -> adapter module, in the order they are tried
ADAPTERS: dict[str, str] = {
    "numpy": "numtrace.backends.numpy",
    "mlx.core": "numtrace.backends.mlx",
    "torch": "numtrace.backends.torch",
}

#: the names ``trace run --backend`` and ``record(backend=...)`` accept
BACKENDS = ("numpy", "torch", "mlx", "fastai")

_by_type: dict[type, Adapter] = {}


def loaded_adapters() -> list[Adapter]:
    """Adapters whose framework the running program has imported."""
    return [importlib.import_module(mod).ADAPTER for key, mod in ADAPTERS.items() if key in sys.modules]


def adapter_for(x: Any) -> Adapter | None:
    """The adapter that can convert ``x``, or None (cached per type)."""
    kind = type(x)
    adapter = _by_type.get(kind)
    if adapter is None:
        adapter = next((a for a in loaded_adapters() if a.handles(x)), None)
        if adapter is not None:
            _by_type[kind] = adapter
    return adapter


def is_array(x: Any) -> bool:
    return adapter_for(x) is not None


def to_numpy(x: Any) -> tuple[np.ndarray, str]:
    """Convert an array of any loaded framework to (NumPy values, recorded dtype)."""
    adapter = adapter_for(x)
    if adapter is None:
        raise TapError(
            f"cannot record a {type(x).__module__}.{type(x).__qualname__}; numtrace records "
            "NumPy arrays, Python numbers, and the arrays of torch and mlx (with their backends)"
        )
    return adapter.to_numpy(x)


def framework_versions() -> dict[str, str]:
    """Versions of Python and of every framework the program has imported."""
    versions = {"python": sys.version.split()[0]}
    for adapter in loaded_adapters():
        versions[adapter.name] = adapter.version()
    return versions
