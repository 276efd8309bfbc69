"""The traces of a sharded run (one per rank, :mod:`numtrace.distributed`) read as one candidate.

``trace diff REFERENCE tp.safetensors`` against ``tp.rank0.safetensors``, ``tp.rank1...``: a
:class:`ShardedTrace` pairs rank 0's stages with the reference's, decides for each stage how the
ranks hold it (replicated, sharded along an axis, partial sums:
:mod:`numtrace.compare.sharding`) and presents the combined stage, so that the usual diff
compares it; the report says per stage how it was combined and names a rank that disagrees.
Stages are combined when read, one at a time: a stage's ranks are held only while it is
compared (the decision is made once, when the trace is bound to the reference).

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> a = np.arange(8.0).reshape(2, 4)
    >>> ranks = [MemoryTrace({"fc": a[:, :2]}, metadata={"numtrace.rank": str(r), "numtrace.world_size": "2"})
    ...          for r in range(2)]
    >>> ranks[1] = MemoryTrace({"fc": a[:, 2:]}, metadata={"numtrace.rank": "1", "numtrace.world_size": "2"})
    >>> sharded = ShardedTrace(ranks, "tp.safetensors")
    >>> from numtrace.compare.pairing.align import align
    >>> reference = MemoryTrace({"fc": a})
    >>> sharded.bind(reference, align(reference, sharded))
    >>> sharded.info("fc").shape, sharded.sharding("fc").to_dict()
    ((2, 4), {'kind': 'sharded', 'ranks': 2, 'axis': 1})
"""

from __future__ import annotations

import json
import os
from typing import Iterator

import numpy as np

from .compare.sharding import Sharding, decide
from .distributed import rank_files
from .errors import UsageError
from .formats import load
from .trace import StageInfo, Trace

#: stages larger than this (elements, per rank) are compared as rank 0 holds them, not combined
COMBINE_MAX_ELEMENTS = 1 << 26


class ShardedTrace(Trace):
    """One trace per rank, in rank order, read as the single trace they shard (module docstring)."""

    def __init__(self, ranks: list[Trace], label: str) -> None:
        self.ranks = _in_rank_order(ranks, label)
        self.label = f"{label} ({len(self.ranks)} ranks)"
        first = self.ranks[0]
        self.order = list(first.order)
        self.has_order = first.has_order
        self.metadata = {**first.metadata, "numtrace.ranks": json.dumps([t.label for t in self.ranks])}
        for rank, trace in enumerate(self.ranks):  # the run completed only if every rank did
            status = trace.metadata.get("numtrace.status")
            if status is not None and status != "complete":
                self.metadata["numtrace.status"] = f"rank {rank}: {status}"
                break
        self._plans: dict[str, Sharding] = {}

    def bind(self, reference: Trace, pairs) -> None:
        """Decide how the ranks hold each stage, against the reference stage it pairs with in
        ``pairs`` (:func:`numtrace.compare.pairing.align.align` of the reference and this trace
        before it is bound, which is rank 0's view of it; a twin is no partner)."""
        partner = {p.name_b: p.name_a for p in pairs if p.name_a and p.name_b and p.how != "twin"}
        for name in self.order:
            holders = [t for t in self.ranks if name in t]
            if len(holders) != len(self.ranks):
                continue  # a stage some ranks lack: rank 0's
            if self.ranks[0].info(name).size > COMBINE_MAX_ELEMENTS:  # rank 0's, and the report says why
                self._plans[name] = Sharding.not_combined(len(self.ranks), COMBINE_MAX_ELEMENTS)
                continue
            a = reference.read(partner[name]) if name in partner else None
            plan = decide(a, [t.read(name) for t in self.ranks])
            plan.combined = None  # type: ignore[assignment]  # combined again when read
            self._plans[name] = plan

    def sharding(self, name: str) -> Sharding | None:
        """How the ranks hold ``name``; None before :meth:`bind` or for a stage some ranks lack."""
        return self._plans.get(name)

    def info(self, name: str) -> StageInfo:
        first = self.ranks[0].info(name)
        plan = self._plans.get(name)
        if plan is None or plan.kind != "sharded":
            return self.ranks[plan.pick if plan is not None else 0].info(name)
        axis = plan.axis
        assert axis is not None  # a sharded plan names its axis
        shape = list(first.shape)
        shape[axis] = sum(t.info(name).shape[axis] for t in self.ranks)
        return StageInfo(name, tuple(shape), first.dtype)

    def read(self, name: str) -> np.ndarray:
        plan = self._plans.get(name)
        if plan is None:
            return self.ranks[0].read(name)
        if plan.kind == "sharded":
            return np.concatenate([t.read(name) for t in self.ranks], axis=plan.axis)
        return self.ranks[plan.pick].read(name)

    def iter_chunks(self, name: str, max_elements: int) -> Iterator[np.ndarray]:
        plan = self._plans.get(name)
        if plan is None or plan.kind != "sharded":
            yield from self.ranks[plan.pick if plan is not None else 0].iter_chunks(name, max_elements)
            return
        flat = self.read(name).reshape(-1)
        step = max(1, max_elements)
        for start in range(0, max(flat.size, 1), step):
            yield flat[start : start + step]

    def close(self) -> None:
        for trace in self.ranks:
            trace.close()


def _in_rank_order(ranks: list[Trace], label: str) -> list[Trace]:
    """The traces sorted by ``numtrace.rank``; UsageError unless they are ranks 0..N-1 of one run."""
    numbered = []
    for trace in ranks:
        try:
            rank = int(trace.metadata["numtrace.rank"])
            world = int(trace.metadata.get("numtrace.world_size", len(ranks)))  # a size its launcher did not say
        except (KeyError, ValueError):
            raise UsageError(f"{trace.label} records no rank (numtrace.rank): not a trace of a sharded run") from None
        numbered.append((rank, world, trace))
    numbered.sort(key=lambda item: item[0])
    worlds = {world for _, world, _ in numbered}
    found = [rank for rank, _, _ in numbered]
    if len(worlds) != 1 or found != list(range(next(iter(worlds)))):
        expected = max(worlds)
        missing = sorted(set(range(expected)) - set(found))
        why = (
            f"rank {', '.join(map(str, missing))} missing"
            if missing
            else f"ranks {found} of world sizes {sorted(worlds)}"
        )
        raise UsageError(f"{label}: the rank traces do not make one run of {expected} ranks ({why})")
    return [trace for _, _, trace in numbered]


def open_candidate(path: str, role: str = "candidate trace") -> Trace:
    """``path`` as a trace; when no such file exists but its rank traces do (``tp.rank0.safetensors``
    ... for ``tp.safetensors`` or ``tp.rank*.safetensors``), those as one :class:`ShardedTrace`."""
    if os.path.exists(path):
        return load(path, role=role)
    files = rank_files(path)
    if not files:
        return load(path, role=role)  # the usual "not found"
    opened: list[Trace] = []
    try:
        for file in files:
            opened.append(load(file, role=role))
        return ShardedTrace(opened, path)
    except BaseException:
        for trace in opened:
            trace.close()
        raise
