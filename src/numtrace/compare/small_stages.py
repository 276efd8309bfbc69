"""The small stages of a diff, compared a batch at a time (:mod:`.statistics.batch`).

A stage of at most :data:`~.statistics.batch.SMALL_MAX` real floating values, the same shape on
both sides, is not streamed alone: when its turn comes, it and the next such stages (up to
:data:`~.statistics.batch.BATCH_ELEMENTS` values) are read together (``Trace.read_many``), stacked
by size and compared in one sweep. Each stage's statistics are those :func:`compare_stage` gives
it, bit for bit; a stage the sweep refuses (a non-finite value...) is left to the caller.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare.pairing.align import Pair
    >>> from numtrace.compare.verdict import Tolerance
    >>> ref = MemoryTrace({"x": np.ones(3), "y": np.array([1.0, np.nan])})
    >>> pairs = [Pair("x", "x"), Pair("y", "y")]
    >>> small = SmallStages(ref, ref, pairs, lambda pair: (Tolerance(1e-5), None))
    >>> tolerance, precision, (a, b, d) = small.take(0)
    >>> d.max_ratio, small.take(1)[2]  # y holds a NaN: compared alone, by the caller
    (0.0, None)
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

import numpy as np

from .. import dtypes
from ..trace import Trace
from .pairing.align import Pair
from .precision import Inherited
from .statistics.batch import BATCH_ELEMENTS, SMALL_MAX, Stats, compare_rows
from .verdict import Tolerance


class SmallStages:
    """Batched statistics of the small same-shape stages among ``pairs``, computed on demand.

    ``tolerance_of(pair)`` gives a stage's ``(Tolerance, inherited precision)``, as the diff
    would; :meth:`take` hands each stage's result over once.
    """

    def __init__(
        self,
        reference: Trace,
        candidate: Trace,
        pairs: list[Pair],
        tolerance_of: Callable[[Pair], tuple[Tolerance, Inherited | None]],
    ) -> None:
        self.reference, self.candidate, self.pairs, self.tolerance_of = reference, candidate, pairs, tolerance_of
        self._small = [self._is_small(pair) for pair in pairs]
        self._done: dict[int, tuple[Tolerance, Inherited | None, Stats | None]] = {}

    def _is_small(self, pair: Pair) -> bool:
        if pair.name_a is None or pair.name_b is None:
            return False
        info_a, info_b = self.reference.info(pair.name_a), self.candidate.info(pair.name_b)
        return (
            0 < info_a.size <= SMALL_MAX
            and tuple(info_a.shape) == tuple(info_b.shape)
            and _real_floating(info_a.dtype)
            and _real_floating(info_b.dtype)
        )

    def take(self, index: int) -> tuple[Tolerance, Inherited | None, Stats | None] | None:
        """``(tolerance, precision, statistics or None)`` of ``pairs[index]``; None if it is not small."""
        if not self._small[index]:
            return None
        if index not in self._done:
            self._batch(index)
        return self._done.pop(index)

    def _batch(self, first: int) -> None:
        members, total = [], 0
        for index in range(first, len(self.pairs)):
            if total >= BATCH_ELEMENTS:
                break
            if self._small[index] and index not in self._done:
                members.append(index)
                total += self.reference.info(self.pairs[index].name_a).size  # type: ignore[arg-type]
        pairs = [self.pairs[i] for i in members]
        values_a = self.reference.read_many([p.name_a for p in pairs])  # type: ignore[misc]
        values_b = self.candidate.read_many([p.name_b for p in pairs])  # type: ignore[misc]
        by_size: dict[int, list[int]] = defaultdict(list)
        for slot, values in enumerate(values_a):
            by_size[values.size].append(slot)
        for slots in by_size.values():
            for slot, stats in zip(slots, self._rows(slots, pairs, values_a, values_b)):
                tolerance, precision = stats[0]
                self._done[members[slot]] = (tolerance, precision, stats[1])

    def _rows(self, slots, pairs, values_a, values_b) -> list[tuple]:
        """Each slot's ``((tolerance, precision), statistics or None)``, its stages stacked as rows."""
        a = np.stack([values_a[s].reshape(-1) for s in slots])
        b = np.stack([values_b[s].reshape(-1) for s in slots])
        with np.errstate(invalid="ignore"):
            peaks = np.abs(a).max(axis=1).tolist()  # compare_stage's peak when finite (else refused below)
        resolved, infos, limits = [], [], []
        for slot, peak in zip(slots, peaks):
            pair = pairs[slot]
            tolerance, precision = self.tolerance_of(pair)
            info_a, info_b = self.reference.info(pair.name_a), self.candidate.info(pair.name_b)
            need_peak = tolerance.atol is None and tolerance.rtol > 0
            atol = tolerance.resolve_atol(peak if need_peak else 0.0, info_a.dtype, info_b.dtype)
            resolved.append((tolerance, precision))
            infos.append((tuple(info_a.shape), (info_a.dtype, info_b.dtype)))
            limits.append((tolerance.rtol, atol))
        results = compare_rows(
            a,
            b,
            [limit[0] for limit in limits],
            [limit[1] for limit in limits],
            [i[0] for i in infos],
            [i[1] for i in infos],
        )
        return list(zip(resolved, results))


def _real_floating(dtype: str) -> bool:
    return dtypes.is_floating(dtype) and not dtype.startswith("complex")
