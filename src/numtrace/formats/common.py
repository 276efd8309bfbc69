"""Small helpers every reader and writer uses: one-line messages and decoding stored bits.

Example:
    >>> brief("x" * 100, 10), one_line(ValueError("two\\nlines"))
    ("'xxxxxx...", 'two lines')
"""

from __future__ import annotations

import os

import numpy as np

from .. import dtypes

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def decode(raw: np.ndarray, dtype: str) -> np.ndarray:
    """``dtypes.decode``, plus: a bool byte other than 0/1 (a corrupt file) reads as True, never as garbage."""
    return raw.view(np.uint8) != 0 if dtype == "bool" else dtypes.decode(raw, dtype)


def brief(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: names and shapes in one-line error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(err: BaseException, limit: int = 200) -> str:
    """An exception's message on one line (h5py's span several), cut to ``limit`` characters."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def remove_quietly(path: str | None) -> None:
    if path:
        try:
            os.remove(path)
        except OSError:
            pass
