"""Recorded dtypes: names, safetensors codes, and codecs for the ones NumPy lacks.

A stage is held in memory as a NumPy *value array* plus the *recorded dtype
name*. For most dtypes the two agree. NumPy has no bfloat16 or float8, so
those stages are held as float32 values (exactly: every bfloat16 and float8
value is a float32 value) and re-encoded to their raw bits when written.
Nothing here imports torch or ml_dtypes.

Example:
    >>> import numpy as np
    >>> bits = encode(np.array([1.0, -2.5], np.float32), "bfloat16")
    >>> bits.dtype, decode(bits, "bfloat16").tolist()
    (dtype('uint16'), [1.0, -2.5])
    >>> coarser("float64", "bfloat16")
    'bfloat16'
"""

from __future__ import annotations

import numpy as np

from .errors import TapError

#: recorded dtype name -> safetensors dtype code
SAFETENSORS_CODES: dict[str, str] = {
    "bool": "BOOL",
    "uint8": "U8",
    "int8": "I8",
    "uint16": "U16",
    "int16": "I16",
    "uint32": "U32",
    "int32": "I32",
    "uint64": "U64",
    "int64": "I64",
    "float16": "F16",
    "bfloat16": "BF16",
    "float32": "F32",
    "float64": "F64",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "complex64": "C64",
    "complex128": "C128",
}
#: safetensors dtype code -> recorded dtype name
NAMES_BY_CODE: dict[str, str] = {code: name for name, code in SAFETENSORS_CODES.items()}

# How each recorded dtype is stored on disk (little-endian raw bits).
_STORAGE: dict[str, str] = {
    "bool": "|b1",
    "uint8": "|u1",
    "int8": "|i1",
    "uint16": "<u2",
    "int16": "<i2",
    "uint32": "<u4",
    "int32": "<i4",
    "uint64": "<u8",
    "int64": "<i8",
    "float16": "<f2",
    "bfloat16": "<u2",
    "float32": "<f4",
    "float64": "<f8",
    "float8_e4m3fn": "|u1",
    "float8_e5m2": "|u1",
    "complex64": "<c8",
    "complex128": "<c16",
}
_DECODED_AS_FLOAT32 = {"bfloat16", "float8_e4m3fn", "float8_e5m2"}

# Unit roundoff (machine epsilon) of each floating dtype; 0 for exact types.
_EPS: dict[str, float] = {
    "float64": float(np.finfo(np.float64).eps),
    "complex128": float(np.finfo(np.float64).eps),
    "float32": float(np.finfo(np.float32).eps),
    "complex64": float(np.finfo(np.float32).eps),
    "float16": float(np.finfo(np.float16).eps),
    "bfloat16": 2.0**-7,
    "float8_e4m3fn": 2.0**-3,
    "float8_e5m2": 2.0**-2,
}
# Smallest positive normal number of each floating dtype.
_TINY: dict[str, float] = {
    "float64": float(np.finfo(np.float64).tiny),
    "complex128": float(np.finfo(np.float64).tiny),
    "float32": float(np.finfo(np.float32).tiny),
    "complex64": float(np.finfo(np.float32).tiny),
    "float16": float(np.finfo(np.float16).tiny),
    "bfloat16": float(np.finfo(np.float32).tiny),
    "float8_e4m3fn": 2.0**-6,
    "float8_e5m2": 2.0**-14,
}


_STORAGE_DTYPES = {name: np.dtype(code) for name, code in _STORAGE.items()}


def storage_dtype(name: str) -> np.dtype:
    """The NumPy dtype of a recorded dtype's raw bytes on disk (``bfloat16`` -> ``<u2``)."""
    try:
        return _STORAGE_DTYPES[name]
    except KeyError:
        raise TapError(f"unsupported dtype {name!r}; supported: {', '.join(_STORAGE)}") from None


def itemsize(name: str) -> int:
    """Bytes per element of a recorded dtype."""
    return storage_dtype(name).itemsize


def is_floating(name: str) -> bool:
    """True for real and complex floating dtypes (tolerances apply), False for ints and bool."""
    return name in _EPS


def eps(name: str) -> float:
    """Machine epsilon of a recorded dtype; 0.0 for exact (integer, bool) dtypes."""
    return _EPS.get(name, 0.0)


def tiny(name: str) -> float:
    """Smallest positive normal value of a floating dtype; 0.0 for exact dtypes."""
    return _TINY.get(name, 0.0)


def coarser(a: str, b: str) -> str:
    """The dtype of the two with the larger epsilon: the one whose rounding dominates."""
    return a if eps(a) >= eps(b) else b


def name_of(array: np.ndarray) -> str:
    """The recorded dtype name of a NumPy array (ml_dtypes' bfloat16/float8 included)."""
    name = array.dtype.name
    if name in _STORAGE:
        return name
    raise TapError(
        f"cannot record dtype {array.dtype} (kind {array.dtype.kind!r}); numtrace records {', '.join(_STORAGE)}"
    )


def to_values(array: np.ndarray) -> tuple[np.ndarray, str]:
    """Split a NumPy array into (value array, recorded dtype name).

    ml_dtypes' bfloat16 and float8 arrays become exact float32 values; other
    arrays are returned as they are (no copy).
    """
    name = name_of(array)
    if name in _DECODED_AS_FLOAT32:
        raw = np.ascontiguousarray(array).view(storage_dtype(name))
        return decode(raw, name), name
    return array, name


def decode(raw: np.ndarray, name: str) -> np.ndarray:
    """Raw stored bits (as read from disk) to the value array of a recorded dtype."""
    if name == "bfloat16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    if name in ("float8_e4m3fn", "float8_e5m2"):
        return _float8_table(name)[raw]
    return raw


def encode(values: np.ndarray, name: str) -> np.ndarray:
    """A value array to the raw bits stored on disk, C-contiguous and little-endian.

    Values that are not representable in ``name`` are rounded to nearest
    (bfloat16: round half to even), as a framework's cast would do.
    """
    if name == "bfloat16":
        bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
        rounded = (bits + (((bits >> 16) & 1) + 0x7FFF)) >> 16
        out = rounded.astype(np.uint16)
        nan = np.isnan(values)
        if nan.any():
            out[nan] = ((bits[nan] >> 16) | 0x0040).astype(np.uint16)
        return out
    if name in ("float8_e4m3fn", "float8_e5m2"):
        return _encode_float8(np.asarray(values, dtype=np.float32), name)
    return np.ascontiguousarray(values, dtype=storage_dtype(name))


_FLOAT8_TABLES: dict[str, np.ndarray] = {}


def _float8_table(name: str) -> np.ndarray:
    """The float32 value of each of the 256 codes of a float8 format."""
    table = _FLOAT8_TABLES.get(name)
    if table is None:
        exp_bits, man_bits, bias = (4, 3, 7) if name == "float8_e4m3fn" else (5, 2, 15)
        codes = np.arange(256)
        sign = np.where(codes & 0x80, -1.0, 1.0)
        exp = (codes >> man_bits) & ((1 << exp_bits) - 1)
        man = codes & ((1 << man_bits) - 1)
        normal = (1 + man / 2**man_bits) * 2.0 ** (exp - bias)
        subnormal = (man / 2**man_bits) * 2.0 ** (1 - bias)
        table = sign * np.where(exp == 0, subnormal, normal)
        if name == "float8_e4m3fn":  # no infinities; only S.1111.111 is NaN
            table[(exp == 15) & (man == 7)] = np.nan
        else:  # IEEE-like: exponent all ones is Inf (mantissa 0) or NaN
            top = exp == 31
            table[top] = np.where(man[top] == 0, sign[top] * np.inf, np.nan)
        table = table.astype(np.float32)
        _FLOAT8_TABLES[name] = table
    return table


def _encode_float8(values: np.ndarray, name: str) -> np.ndarray:
    table = _float8_table(name)
    finite_codes = np.flatnonzero(np.isfinite(table))
    order = np.argsort(table[finite_codes], kind="stable")
    sorted_vals = table[finite_codes][order]
    sorted_codes = finite_codes[order]
    flat = values.reshape(-1)
    pos = np.clip(np.searchsorted(sorted_vals, flat), 1, len(sorted_vals) - 1)
    left, right = sorted_vals[pos - 1], sorted_vals[pos]
    nearest = np.where(np.abs(flat - left) <= np.abs(right - flat), pos - 1, pos)
    out = sorted_codes[nearest].astype(np.uint8)
    nan_code = int(np.flatnonzero(np.isnan(table))[0])
    out[np.isnan(flat)] = nan_code
    if name == "float8_e5m2":
        out[flat == np.inf] = 0x7C
        out[flat == -np.inf] = 0xFC
    return out.reshape(values.shape)
