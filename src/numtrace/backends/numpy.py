"""NumPy adapter: NumPy arrays and scalars, Python numbers, ml_dtypes' bfloat16/float8.

Example:
    >>> ADAPTER.to_numpy(3)
    (array(3), 'int64')
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..errors import TapError


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
