"""Stages that repeat another stage of their own trace: a container's output, an identity.

torch's ``nn.Sequential`` returns its last layer's tensor, so a trace holds ``mlp.2`` and then
``mlp`` with the same values; a block that returns its residual unchanged, a ``Dropout`` in eval
mode, a wrapper around a function do the same. When such a stage has no counterpart on the
other side (MLX's port has no ``mlp`` container), it is not missing: it is the *twin* of the
stage it repeats, and it is paired through it.

A stage is the twin of an earlier stage of the same trace, at most :data:`LOOKBACK` stages
before it, with the same shape, the same dtype and the same bytes (compared by a blake2b
digest, or the one a sketch trace stores); the nearest such stage is the twin. Constant stages
are nobody's twin (zeros repeat any zeros), and stages of more than :data:`MAX_ELEMENTS`
elements are not compared (reading them would be the cost).

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> h = np.arange(6.0).reshape(2, 3)
    >>> t = MemoryTrace({"mlp.0": h, "mlp.1": np.tanh(h), "mlp": np.tanh(h)}, order=["mlp.0", "mlp.1", "mlp"])
    >>> find_twins(t, ["mlp"])
    {'mlp': 'mlp.1'}
"""

from __future__ import annotations

import bisect
import hashlib

import numpy as np

from ... import dtypes

#: how many stages back a twin is looked for
LOOKBACK = 64
#: stages larger than this are not compared for twins
MAX_ELEMENTS = 1 << 22


def stage_digest(trace, name: str) -> str | None:
    """A blake2b-128 digest of a stage's bytes as stored (a sketch trace's own); None for a stage
    too large to read for this, and for a constant one (all zeros, a mask of ones): it would
    repeat any stage of its shape, which is no evidence that it is that stage."""
    from ..sketches.format import is_sketch_trace, read_sketch

    if is_sketch_trace(trace):
        info = read_sketch(trace, name)[1]
        return None if info["min"] == info["max"] else info["hash"]
    info = trace.info(name)
    if info.size > MAX_ELEMENTS:
        return None
    raw = getattr(trace, "iter_raw_chunks", None)
    if raw is not None:  # a file: its stored bits as they are, nothing decoded
        stored = next(iter(raw(name, max(1, info.size))))
    else:
        stored = np.ascontiguousarray(dtypes.encode(np.asarray(trace.read(name)), info.dtype)).reshape(-1)
    if stored.size == 0 or (stored == stored[0]).all():
        return None
    return "blake2b:" + hashlib.blake2b(stored.view(np.uint8).data, digest_size=16).hexdigest()


def _kind(trace, name: str) -> tuple:
    """(shape, dtype) as recorded: a sketch trace stores them in the sketch."""
    from ..sketches.format import is_sketch_trace, read_sketch

    if is_sketch_trace(trace):
        info = read_sketch(trace, name)[1]
        return tuple(info["shape"]), info["dtype"]
    info = trace.info(name)
    return tuple(info.shape), info.dtype


def find_twins(trace, names, lookback: int = LOOKBACK) -> dict[str, str]:
    """``{stage: the earlier stage it repeats}`` for each of ``names`` that repeats one (module docstring).

    One pass over the trace's order: only the stages that share the shape and dtype of one of
    ``names`` within its look-back window are read, each once.
    """
    order = list(trace.order)
    wanted = set(names)
    if not wanted:
        return {}
    kinds = [_kind(trace, name) for name in order]
    at: dict[tuple, list[int]] = {}  # kind -> its positions, in order
    for k, kind in enumerate(kinds):
        at.setdefault(kind, []).append(k)
    needed: set[int] = set()
    for k, name in enumerate(order):
        if name in wanted:
            same = at[kinds[k]]
            needed.update(same[bisect.bisect_left(same, k - lookback) : bisect.bisect_right(same, k)])
    last_seen: dict[str, int] = {}  # digest -> the latest position it was seen at
    twins = {}
    for k in sorted(needed):
        digest = stage_digest(trace, order[k])
        if digest is None:
            continue
        earlier = last_seen.get(digest)
        if order[k] in wanted and earlier is not None and k - earlier <= lookback and kinds[earlier] == kinds[k]:
            twins[order[k]] = order[earlier]
        last_seen[digest] = k
    return twins
