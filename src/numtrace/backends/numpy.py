"""NumPy backend: NumPy arrays and scalars, Python numbers, ml_dtypes' bfloat16/float8.

NumPy has no models: ``watches`` is always False, and ``capture`` (``trace run
--backend numpy``) records nothing by itself: the script's ``numtrace.tap``
calls are the stages.

Example:
    >>> ADAPTER.to_numpy(3)
    (array(3), 'int64')
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import dtypes
from ..errors import TapError, UsageError


class NumpyAdapter:
    name = "numpy"

    def handles(self, x: Any) -> bool:
        return isinstance(x, (np.ndarray, np.generic, bool, int, float, complex))

    def to_numpy(self, x: Any) -> tuple[np.ndarray, str]:
        if isinstance(x, int) and not isinstance(x, bool):
            if not -(2**63) <= x < 2**63:
                raise TapError(f"cannot record the integer {x}: it does not fit in int64")
            return np.asarray(x, dtype=np.int64), "int64"
        return dtypes.to_values(np.asarray(x))

    def version(self) -> str:
        return np.__version__


ADAPTER = NumpyAdapter()


def watches(model: Any) -> bool:
    return False


def watch(model: Any, **options: Any) -> Any:
    raise UsageError(
        f"numtrace cannot watch a {type(model).__module__}.{type(model).__qualname__}: NumPy has no "
        "models (tap its values with numtrace.tap)"
    )


def capture(
    include: list[str] | None = None, exclude: list[str] | None = None, *, inputs: bool = False, weights: bool = False
) -> Callable[[], None]:
    """Nothing to capture: the stages are the script's ``numtrace.tap`` calls. Returns a no-op undo."""
    if inputs or weights:
        from . import REGISTRY

        models = ", ".join(b.name for b in REGISTRY if b.models)
        raise UsageError(
            f"--inputs and --weights record module inputs and parameters: use them with --backend {models}"
        )
    return lambda: None
