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
            for slot, result in zip(slots, self._rows(slots, pairs, values_a, values_b)):
                self._done[members[slot]] = result

    def _rows(self, slots, pairs, values_a, values_b) -> list[tuple[Tolerance, Inherited | None, Stats | None]]:
        """Each slot's ``(tolerance, precision, statistics or None)``, its stages stacked as rows."""
        resolved = [self.tolerance_of(pairs[s]) for s in slots]
        infos = [(self.reference.info(pairs[s].name_a), self.candidate.info(pairs[s].name_b)) for s in slots]
        results = compare_rows(
            np.stack([values_a[s].reshape(-1) for s in slots]),
            np.stack([values_b[s].reshape(-1) for s in slots]),
            [tolerance for tolerance, _ in resolved],
            [tuple(info_a.shape) for info_a, _ in infos],
            [(info_a.dtype, info_b.dtype) for info_a, info_b in infos],
        )
        return [(tolerance, precision, stats) for (tolerance, precision), stats in zip(resolved, results)]


def _real_floating(dtype: str) -> bool:
    return dtypes.is_floating(dtype) and not dtype.startswith("complex")
