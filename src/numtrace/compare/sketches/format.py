"""Stage sketches: a few statistics instead of the tensor (``Recording(stats=True)``, ``trace run --stats``).

A sketch of a stage holds its shape and dtype, count, min, max, mean, std and
abs-max over finite values, non-finite counts, the means of each channel along
one axis, and a blake2b-128 hash of its bytes (the C-ordered little-endian
bytes of the recorded dtype: what a full trace stores for that stage).

A *sketch trace* is an ordinary trace file (safetensors or HDF5) with metadata
``numtrace.sketch = "1"``. Each stage is stored under its own name as a
float64 vector of its channel means (length ``shape[axis]``; empty when the
stage has no channel axis), and its other fields as a JSON object in metadata
key ``numtrace.sketch.<name>``. The channel axis is ``axis`` if given
(negative counts from the end), else 1 for stages of 2 or more dimensions;
none for 0-d and 1-d stages, for an axis the stage lacks, or when the axis is
longer than :data:`MAX_CHANNELS`. See docs/performance.md.

Example:
    >>> import numpy as np
    >>> means, info = make_sketch(np.arange(12.0).reshape(2, 3, 2), "float64")
    >>> means.tolist(), info["axis"], info["mean"], info["hash"][:8]
    ([3.5, 5.5, 7.5], 1, 5.5, 'blake2b:')
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from ... import dtypes
from ...errors import TraceFileError

#: metadata key marking a sketch trace (its value: the sketch format version)
SKETCH_KEY = "numtrace.sketch"
SKETCH_VERSION = "1"
#: prefix of the per-stage metadata keys
STAGE_PREFIX = "numtrace.sketch."
#: channel axes longer than this keep no channel means (a sketch must stay small)
MAX_CHANNELS = 1 << 16
_CHUNK = 1 << 20
_STAT_FIELDS = ("min", "max", "mean", "std", "abs_max")
_COUNT_FIELDS = ("count", "nan", "posinf", "neginf")


def channel_axis(shape: tuple[int, ...], axis: int | None = None) -> int | None:
    """The channel axis of a stage of ``shape`` (module docstring's rule), or None.

    Example:
        >>> channel_axis((1, 80, 312)), channel_axis((1, 80, 312), -1), channel_axis((5,)), channel_axis((2, 3), 4)
        (1, 2, None, None)
    """
    ndim = len(shape)
    if axis is None:
        axis = 1 if ndim >= 2 else None
    elif -ndim <= axis < ndim:
        axis %= ndim
    else:
        axis = None
    if axis is not None and shape[axis] > MAX_CHANNELS:
        return None
    return axis


def sketch_of(trace, name: str, axis: int | None = None) -> tuple[np.ndarray, dict]:
    """The sketch of one stage of any trace, streamed chunk by chunk: ``(channel_means, info)``."""
    from ..statistics.stats import summarize  # the streaming statistics (fast path included)

    stage = trace.info(name)
    shape, dtype = tuple(stage.shape), stage.dtype
    stats = summarize(trace, name)
    axis = channel_axis(shape, axis)
    digest = hashlib.blake2b(digest_size=16)
    raw_chunks = getattr(trace, "iter_raw_chunks", None)
    if raw_chunks is not None:
        for raw in raw_chunks(name, _CHUNK):
            digest.update(np.ascontiguousarray(raw).view(np.uint8).data)
    channels = shape[axis] if axis is not None else 0
    sums, counts = np.zeros(channels), np.zeros(channels)
    slab = math.prod(shape[axis:]) if axis is not None else 1  # chunks of whole slabs reduce by reshaping
    step = slab * max(1, _CHUNK // slab) if 0 < slab <= 64 * _CHUNK else _CHUNK
    start = 0
    for chunk in trace.iter_chunks(name, step):
        if raw_chunks is None:
            digest.update(dtypes.encode(chunk, dtype).reshape(-1).view(np.uint8).data)
        if axis is not None:
            _add_channels(chunk, start, shape, axis, sums, counts)
        start += chunk.size
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    info = {"shape": list(shape), "dtype": dtype, "axis": axis, "hash": "blake2b:" + digest.hexdigest()}
    for key in _COUNT_FIELDS:
        info[key] = int(getattr(stats, key))
    for key in _STAT_FIELDS:
        value = getattr(stats, key)
        info[key] = None if value is None or not math.isfinite(value) else float(value)
    return means, info


def make_sketch(values: np.ndarray, dtype: str | None = None, axis: int | None = None) -> tuple[np.ndarray, dict]:
    """The sketch of an in-memory array recorded as ``dtype``: ``(channel_means, info)``."""
    from ...trace import MemoryTrace

    values = np.asarray(values)
    stage = values if dtype is None else (values, dtype)
    return sketch_of(MemoryTrace({"x": stage}), "x", axis)


def _add_channels(chunk: np.ndarray, start: int, shape: tuple, axis: int, sums: np.ndarray, counts: np.ndarray) -> None:
    """Add a flat chunk (C order, elements ``start``...) to per-channel sums and finite counts."""
    values = np.asarray(chunk).reshape(-1)
    if values.size == 0:
        return
    parts = 1
    if values.dtype.kind == "c":  # both parts of a complex value belong to its channel
        values, parts = np.ascontiguousarray(values).view(values.real.dtype), 2
    inner = math.prod(shape[axis + 1 :]) * parts
    channels = shape[axis]
    finite = np.isfinite(values) if values.dtype.kind == "f" else None
    if finite is not None and finite.all():
        finite = None
    first = start * parts
    if first % (inner * channels) == 0 and values.size % (inner * channels) == 0:  # whole slabs: reshape
        block = values.reshape(-1, channels, inner)
        if finite is None:
            sums += np.add.reduce(block, axis=(0, 2), dtype=np.float64)
            counts += block.shape[0] * inner
        else:
            mask = finite.reshape(block.shape)
            sums += np.add.reduce(np.where(mask, block, 0), axis=(0, 2), dtype=np.float64)
            counts += mask.sum(axis=(0, 2))
        return
    index = (np.arange(first, first + values.size, dtype=np.int64) // inner) % channels
    weights = values.astype(np.float64)
    if finite is not None:
        weights[~finite] = 0.0
        counts += np.bincount(index, weights=finite.astype(np.float64), minlength=channels)
    else:
        counts += np.bincount(index, minlength=channels)
    sums += np.bincount(index, weights=weights, minlength=channels)


def encode_info(info: dict) -> str:
    """The JSON text stored in ``numtrace.sketch.<name>``."""
    return json.dumps(info, allow_nan=False, separators=(",", ":"))


def is_sketch_trace(trace) -> bool:
    """True for a trace written in stats-only mode (metadata ``numtrace.sketch``)."""
    return SKETCH_KEY in getattr(trace, "metadata", {})


def read_sketch(trace, name: str) -> tuple[np.ndarray, dict]:
    """A stage's sketch from a sketch trace, every field checked: TraceFileError if anything is off."""
    prefix = f"{getattr(trace, 'role', 'trace')} {trace.label!r}: sketch of stage {name!r}"
    version = trace.metadata.get(SKETCH_KEY)
    if version != SKETCH_VERSION:
        raise TraceFileError(f"{prefix}: sketch format {version!r} is not {SKETCH_VERSION!r}: upgrade numtrace")
    text = trace.metadata.get(STAGE_PREFIX + name)
    if text is None:
        raise TraceFileError(f"{prefix}: no metadata {STAGE_PREFIX + name!r}: corrupt sketch trace")
    try:
        info = json.loads(text)
    except (ValueError, RecursionError):
        raise TraceFileError(f"{prefix}: its metadata is not valid JSON: corrupt sketch trace") from None
    why = _check_info(info)
    if why:
        raise TraceFileError(f"{prefix}: {why}: corrupt sketch trace")
    stored = trace.info(name)
    channels = info["shape"][info["axis"]] if info["axis"] is not None else 0
    if stored.dtype != "float64" or tuple(stored.shape) != (channels,):
        raise TraceFileError(
            f"{prefix}: channel means are {stored.dtype} {tuple(stored.shape)}, "
            f"expected float64 ({channels},): corrupt sketch trace"
        )
    return np.asarray(trace.read(name), dtype=np.float64), info


def _check_info(info: object) -> str | None:
    """Why ``info`` is not a valid sketch (None when it is)."""
    if not isinstance(info, dict):
        return "it is not a JSON object"
    missing = [k for k in ("shape", "dtype", "axis", "hash", *_COUNT_FIELDS, *_STAT_FIELDS) if k not in info]
    if missing:
        return f"it lacks {', '.join(missing)}"
    shape, dtype, axis, digest = (info.get(k) for k in ("shape", "dtype", "axis", "hash"))
    if not isinstance(shape, list) or len(shape) > 64 or not all(type(d) is int and 0 <= d < 2**62 for d in shape):
        return "its shape is not a list of non-negative integers"
    if not isinstance(dtype, str) or dtype not in dtypes.SAFETENSORS_CODES:
        return f"its dtype {str(dtype)[:40]!r} is unknown"
    if axis is not None and not (type(axis) is int and 0 <= axis < len(shape) and shape[axis] <= MAX_CHANNELS):
        return f"its channel axis {str(axis)[:20]} does not fit its shape"
    if not isinstance(digest, str) or not digest.startswith("blake2b:") or len(digest) != 40:
        return "its hash is not a blake2b digest"
    size = math.prod(shape) * (2 if dtype.startswith("complex") else 1)
    for key in _COUNT_FIELDS:
        value = info.get(key)
        if type(value) is not int or not 0 <= value <= size:
            return f"its {key} is not an integer between 0 and {size}"
    if info["count"] != size or info["nan"] + info["posinf"] + info["neginf"] > size:
        return "its counts do not add up"
    for key in _STAT_FIELDS:
        value = info.get(key)
        if value is not None and not _finite_number(value):
            return f"its {key} is not a finite number or null"
    lo, hi, mean, std, peak = (info[k] for k in _STAT_FIELDS)
    if (info["count"] - info["nan"] - info["posinf"] - info["neginf"] > 0) != (lo is not None):
        return "its statistics and counts disagree"
    if lo is not None:
        if None in (hi, mean, std, peak):
            return "its statistics are incomplete"
        slack = 2.0**-30 * max(abs(lo), abs(hi))
        if not (lo <= hi and lo - slack <= mean <= hi + slack and std >= 0 and peak == max(abs(lo), abs(hi))):
            return "its statistics are inconsistent (min <= mean <= max, std >= 0, abs_max = max |min|, |max|)"
    elif any(info[k] is not None for k in _STAT_FIELDS):
        return "its statistics are incomplete"
    return None


def _finite_number(value: object) -> bool:
    """A JSON number that is a finite float64 (a huge integer is not: it cannot become one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) if isinstance(value, float) else abs(value) <= 1.7976931348623157e308
