"""How the ranks of a sharded run hold one stage, against the stage of a single-process reference.

Per stage, from the shapes and the values of every rank (``ranks``, in rank order) and of the
reference (``a``):

- **replicated**: every rank holds the reference's shape and the ranks agree (within
  :data:`RTOL`): the stage is rank 0's. Ranks that disagree with the others are named
  (``rank_disagrees``: a rank that saw other data; when as many ranks agree on one value as on
  another, those nearer the reference agree), and the stage is the rank farthest from the
  reference, so that it fails when one rank is wrong.
- **sharded**: the ranks' shapes differ from the reference's along one axis only and their
  lengths there add up to the reference's: the stage is the ranks' shards concatenated along it,
  in rank order. When that does not match and another order of the ranks does, ``shard_order``
  says which.
- **partial**: every rank holds the reference's shape, the ranks disagree, and their sum is the
  reference (or it plus one bias added on every rank): each rank holds a partial sum
  (``partial_sum``: an all-reduce missing). The stage is rank 0's (what a rank holds, wrong).

A replicated stage whose values are the reference's shards concatenated along another axis (a
gather along the wrong axis, reshaped to the reference's shape or not) is ``shard_axis``; along
the same axis in another order, ``shard_order``. Findings
are made only when they reproduce the candidate within :data:`RTOL`.

Example:
    >>> import numpy as np
    >>> a = np.arange(12.0).reshape(2, 6)
    >>> plan = decide(a, [a[:, :3], a[:, 3:]])
    >>> plan.kind, plan.axis, np.array_equal(plan.combined, a)
    ('sharded', 1, True)
    >>> plan = decide(a, [a[:, 3:], a[:, :3]])
    >>> plan.findings[0]["kind"], plan.findings[0]["order"]
    ('shard_order', [1, 0])
    >>> decide(a, [a * 0.25, a * 0.75]).findings[0]["kind"]
    'partial_sum'
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from .findings import Finding

#: ranks agree, and a combination reproduces the reference, within this relative tolerance
RTOL = 1e-4
#: rank orders tried for ``shard_order`` (all of them up to this many ranks)
MAX_ORDER_RANKS = 6


@dataclass
class Sharding:
    """One stage of a sharded run: how its ranks hold it, the combined value, the findings."""

    kind: str  # replicated, sharded, partial, not_combined
    ranks: int
    combined: np.ndarray
    axis: int | None = None
    disagree: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    #: the rank whose value stands for a stage that is not sharded
    pick: int = 0
    #: not_combined: the elements per rank over which a stage is not combined
    limit: int | None = None

    @classmethod
    def not_combined(cls, ranks: int, limit: int) -> "Sharding":
        """A stage over ``limit`` elements per rank, left uncombined: compared as rank 0 holds it.

        Example:
            >>> Sharding.not_combined(2, 1 << 26).to_dict()
            {'kind': 'not_combined', 'ranks': 2, 'limit': 67108864}
        """
        return cls("not_combined", ranks, None, limit=limit)  # type: ignore[arg-type]  # nothing combined

    def to_dict(self) -> dict:
        out: dict = {"kind": self.kind, "ranks": self.ranks}
        if self.axis is not None:
            out["axis"] = self.axis
        if self.disagree:
            out["disagree"] = list(self.disagree)
        if self.limit is not None:
            out["limit"] = self.limit
        return out


def close(x: np.ndarray, y: np.ndarray) -> bool:
    """Equal within :data:`RTOL` of the larger's peak (exactly, for integers and booleans)."""
    if x.shape != y.shape:
        return False
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(y.dtype, np.floating)):
        return bool(np.array_equal(x, y))
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    finite = np.isfinite(x64) & np.isfinite(y64)
    if not np.array_equal(np.isfinite(x64), np.isfinite(y64)):
        return False
    peak = max(float(np.abs(x64[finite]).max(initial=0.0)), float(np.abs(y64[finite]).max(initial=0.0)))
    return bool(np.all(np.abs(x64[finite] - y64[finite]) <= RTOL * peak))


def decide(a: np.ndarray | None, ranks: list[np.ndarray]) -> Sharding:
    """How ``ranks`` hold the reference stage ``a`` (None: no reference counterpart)."""
    shapes = {tuple(r.shape) for r in ranks}
    n = len(ranks)
    if len(shapes) == 1 and (a is None or tuple(a.shape) == next(iter(shapes)) or ranks[0].size == a.size):
        return _same_shapes(a, ranks)
    axis = _shard_axis(a, ranks)
    if axis is None:  # nothing lines the ranks up: rank 0 alone is compared
        return Sharding("replicated", n, ranks[0], disagree=_odd_ones(ranks, a))
    combined = np.concatenate(ranks, axis=axis)
    plan = Sharding("sharded", n, combined, axis=axis)
    if a is not None and not close(combined, a) and n <= MAX_ORDER_RANKS:
        for order in itertools.permutations(range(n)):
            if list(order) != list(range(n)) and close(np.concatenate([ranks[k] for k in order], axis=axis), a):
                plan.findings.append(Finding.of("shard_order", order=list(order), axis=axis, explained=1.0))
                break
    return plan


def _same_shapes(a: np.ndarray | None, ranks: list[np.ndarray]) -> Sharding:
    n = len(ranks)
    odd = _odd_ones(ranks, a)
    if not odd:
        plan = Sharding("replicated", n, ranks[0])
        if a is not None and ranks[0].size == a.size and not close(ranks[0], a):
            plan.findings += _wrong_axis(a, ranks[0], n)
        return plan
    majority = [k for k in range(n) if k not in odd]
    agrees = a is not None and tuple(a.shape) == tuple(ranks[0].shape) and close(ranks[majority[0]], a)
    if not agrees and a is not None and tuple(a.shape) == tuple(ranks[0].shape) and np.issubdtype(a.dtype, np.floating):
        finding = _partial_sum(a.astype(np.float64), [r.astype(np.float64) for r in ranks])
        if finding is not None:
            return Sharding("partial", n, ranks[0], findings=[finding])
    if a is not None and tuple(a.shape) == tuple(ranks[0].shape):
        worst = max(range(n), key=lambda k: _distance(ranks[k], a))
    else:
        worst = odd[0]
    agree = [k for k in range(n) if k not in odd]
    finding = Finding.of("rank_disagrees", ranks=odd, agree=agree)
    return Sharding("replicated", n, ranks[worst], disagree=odd, findings=[finding], pick=worst)


def _partial_sum(a: np.ndarray, ranks: list[np.ndarray]) -> Finding | None:
    """``partial_sum`` when the ranks' sum is the reference, or is it plus the same bias added on
    every rank (constant but along the last axis: a bias added after a missing all-reduce)."""
    n = len(ranks)
    total = np.sum(ranks, axis=0)
    if close(total, a):
        return Finding.of("partial_sum", ranks=n, bias_on_every_rank=False, explained=1.0)
    if a.ndim >= 2 and a.size and a.size // a.shape[-1] >= 2:  # a bias shows only over several rows
        extra = (total - a) / (n - 1)
        row = extra.reshape(-1, a.shape[-1])
        if close(np.broadcast_to(row[:1], row.shape).reshape(a.shape), extra) and close(total - (n - 1) * row[0], a):
            return Finding.of("partial_sum", ranks=n, bias_on_every_rank=True, explained=1.0)
    return None


def _odd_ones(ranks: list[np.ndarray], a: np.ndarray | None = None) -> list[int]:
    """The ranks outside the largest group of ranks that agree. On a tie, the group nearest the
    reference ``a`` agrees (without one, or of another shape: the group of the lowest ranks).

    Example:
        >>> x = np.arange(4.0)
        >>> _odd_ones([x + 0.5, x], x), _odd_ones([x, x + 0.5], x), _odd_ones([x + 0.5, x])
        ([0], [1], [1])
    """
    groups: list[list[int]] = []
    for k, r in enumerate(ranks):
        for group in groups:
            if close(ranks[group[0]], r):
                group.append(k)
                break
        else:
            groups.append([k])
    if len(groups) == 1:
        return []
    size = max(len(group) for group in groups)
    tied = [group for group in groups if len(group) == size]
    largest = tied[0]
    if len(tied) > 1 and a is not None and all(ranks[g[0]].shape == a.shape for g in tied):
        largest = min(tied, key=lambda group: _distance(ranks[group[0]], a))  # the first of equals
    return sorted(k for group in groups if group is not largest for k in group)


def _distance(x: np.ndarray, a: np.ndarray) -> float:
    diff = x.astype(np.float64) - a.astype(np.float64)
    return float(np.nan_to_num(np.sqrt(np.mean(diff * diff)), nan=math.inf))


def _shard_axis(a: np.ndarray | None, ranks: list[np.ndarray]) -> int | None:
    """The one axis along which the ranks' shapes differ from the reference's (or from each
    other's) and add up to it; None when there is none."""
    ndim = ranks[0].ndim
    if any(r.ndim != ndim for r in ranks) or (a is not None and a.ndim != ndim):
        return None
    target = tuple(a.shape) if a is not None else None
    for axis in range(ndim):
        others = {tuple(s for i, s in enumerate(r.shape) if i != axis) for r in ranks}
        if len(others) != 1:
            continue
        if target is None:  # no reference: the first axis along which only the lengths differ
            return axis
        rest = tuple(s for i, s in enumerate(target) if i != axis)
        if others == {rest} and sum(r.shape[axis] for r in ranks) == target[axis]:
            return axis
    return None


def _wrong_axis(a: np.ndarray, c: np.ndarray, n: int) -> list[Finding]:
    """``shard_axis``: ``c`` is the reference's ``n`` shards along one axis concatenated along
    another (and reshaped to the reference's shape); ``shard_order``: along the same axis, in
    another order (a gathered stage whose ranks held the wrong shards)."""
    for expected in range(a.ndim):
        if a.shape[expected] % n:
            continue
        pieces = np.split(a, n, axis=expected)
        if c.shape == a.shape and n <= MAX_ORDER_RANKS:
            for order in itertools.permutations(range(n)):
                if list(order) != list(range(n)) and close(np.concatenate([pieces[k] for k in order], expected), c):
                    return [Finding.of("shard_order", order=list(order), axis=expected, explained=1.0)]
        for axis in range(a.ndim):
            if axis == expected:
                continue
            joined = np.concatenate(pieces, axis=axis)
            if close(joined if joined.shape == c.shape else joined.reshape(c.shape), c):
                return [Finding.of("shard_axis", axis=axis, expected=expected, explained=1.0)]
    return []
