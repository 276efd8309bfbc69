"""Pair what names could not: a sequence alignment of the two executions.

After the name passes (:mod:`numtrace.compare.pairing.align`), the stages left unpaired are
aligned in execution order, as ``diff`` aligns lines:

1. **Anchors.** The name pairs that keep their order on both sides (a longest increasing
   subsequence) cut both traces into gaps; a stage can only pair with one in the same gap.
2. **Structural anchors.** In a gap too large to align whole (more than :data:`FULL_CELLS`
   cells), a stage whose numbers and shape (``mod3.out``, (64,)) are unique on both sides pairs
   with its counterpart when the names agree beyond the numbers (:data:`ANCHOR_NAME`) and the
   evidence is enough: a renamed copy of a 20,000-stage trace aligns in linear time.
3. **Alignment.** What is left of a gap is aligned by dynamic programming (Needleman-Wunsch,
   no crossing pairs): a pair may be made when the shapes line up and the evidence is enough
   (:func:`acceptable`: alike names, or values that agree and names that do not contradict
   them); the alignment maximises the summed evidence. Gaps of more than :data:`FULL_CELLS`
   cells are aligned in a band around their diagonal.
4. **Ambiguity.** A pair is dropped when another partner in the gap would be nearly as good
   (within :data:`MARGIN`) and that partner has no clearly better one of its own, whether or
   not the alignment's order could take the pair.
5. **Swapped order.** Stages still unpaired whose values agree (:data:`AGREE`) pair when each
   is the other's only such partner in the gap, even against the order: two branches a port
   computes in the other order (``key`` then ``query`` against ``q_proj`` then ``k_proj``) pair
   by their values, never crosswise.

Values that clearly say otherwise (:data:`AGAINST`) veto names alone; two stages that are each
the only one of their shape in the same scope may still pair (the same place in the
computation: a port's bug there is reported there), unless their magnitudes have nothing in
common (:func:`incompatible`: a mask of -1e9 is not a score).

Each pair carries its score in [0, 1] (the mean of its name, shape and value evidence) and the
evidence in words.

Example:
    >>> import numpy as np
    >>> shapes = {"mlp.0": (4, 8), "mlp.1": (4, 8), "mlp.2": (4, 2), "mlp1": (4, 8), "mlp2": (4, 2)}
    >>> h = np.linspace(-2, 2, 32).reshape(4, 8)
    >>> values = {"mlp.0": h, "mlp.1": np.maximum(h, 0), "mlp.2": h[:, :2], "mlp1": h, "mlp2": h[:, :2]}
    >>> side = lambda name: Stage(name, shapes[name], lambda: values[name])
    >>> found = align_leftovers([side(n) for n in ("mlp.0", "mlp.1", "mlp.2")], [side("mlp1"), side("mlp2")], [])
    >>> sorted((a, b) for a, (b, _, _) in found.items())
    [('mlp.0', 'mlp1'), ('mlp.2', 'mlp2')]
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from .evidence import (
    Signature,
    evidence_words,
    name_similarity,
    scope_similarity,
    shape_similarity,
    signature,
    value_similarity,
)

#: a structural anchor's names must be at least this alike (beyond their equal numbers)
ANCHOR_NAME = 0.5
#: two stages, each the only one of its exact shape in the gap, pair when their scopes agree this much
SCOPE = 0.75
#: a pair within this much summed evidence of another possible partner is ambiguous
MARGIN = 0.2
#: value evidence below this contradicts a pairing by names (values 2% of their spread apart or more)
AGAINST = 0.5
#: value evidence at or above this pairs stages in swapped order (the values agree to rounding)
AGREE = 0.9
#: spreads (standard deviations) further apart than this factor share no magnitude
MAGNITUDE = 10.0
#: gaps of more cells than this are aligned in a band around the diagonal
FULL_CELLS = 250_000
#: half-width of that band, beyond the difference of the two sides' lengths
BAND = 48
_NUMBERS = re.compile(r"\d+")


@dataclass
class Stage:
    """One side's stage as the alignment sees it: its name, shape, and its values on demand."""

    name: str
    shape: tuple
    read: Callable[[], object] | None = None  # the values (an array), or None when not readable
    _signature: Signature | None = field(default=None, repr=False)
    _signed: bool = field(default=False, repr=False)

    def signature(self) -> Signature | None:
        if not self._signed:
            self._signed = True
            try:
                self._signature = signature(self.read()) if self.read is not None else None  # type: ignore[arg-type]
            except Exception:  # a stage that cannot be read has no value evidence; its pairing says so
                self._signature = None
        return self._signature


@dataclass(frozen=True)
class Evidence:
    name: float
    shape: float
    value: float | None

    @property
    def total(self) -> float:
        """The summed evidence the alignment maximises (0..3)."""
        return self.name + self.shape + (self.value if self.value is not None else 0.0)

    @property
    def score(self) -> float:
        """How sure the pairing is, in [0, 1]: the mean of the evidence known."""
        known = [self.name, self.shape] + ([self.value] if self.value is not None else [])
        return sum(known) / len(known)


def evidence(a: Stage, b: Stage) -> Evidence | None:
    """The evidence that ``a`` and ``b`` are one stage, or None when their shapes cannot line up."""
    shape = shape_similarity(tuple(a.shape), tuple(b.shape))
    if shape is None:
        return None
    value = value_similarity(a.signature(), b.signature())
    return Evidence(name_similarity(a.name, b.name), shape, value)


def acceptable(e: Evidence | None) -> bool:
    """Enough evidence to pair: alike names, or values that agree and names that do not contradict."""
    if e is None:
        return False
    if e.value is not None and e.value < AGAINST:
        return False  # the values say these are not one stage, whatever the names
    if e.name >= 0.6:
        return True
    if e.value is None:
        return False
    return (e.value >= 0.9 and e.name >= 0.3) or (e.value >= 0.6 and e.name >= 0.45)


def align_leftovers(
    side_a: list[Stage], side_b: list[Stage], anchors: list[tuple[str, str]]
) -> dict[str, tuple[str, float, str]]:
    """``{reference name: (candidate name, score, evidence in words)}`` for the stages of
    ``side_a`` and ``side_b`` (each in execution order, every stage of its trace) that
    ``anchors`` (the pairs already made) leave unpaired (module docstring)."""
    index_a = {s.name: i for i, s in enumerate(side_a)}
    index_b = {s.name: j for j, s in enumerate(side_b)}
    fixed = sorted((index_a[a], index_b[b]) for a, b in anchors if a in index_a and b in index_b)
    chain = _increasing([j for _, j in fixed], [p for p in fixed])
    paired_a, paired_b = {i for i, _ in fixed}, {j for _, j in fixed}
    found: dict[str, tuple[str, float, str]] = {}
    bounds = [(-1, -1)] + chain + [(len(side_a), len(side_b))]
    for (i0, j0), (i1, j1) in zip(bounds, bounds[1:]):
        gap_a = [side_a[i] for i in range(i0 + 1, i1) if i not in paired_a]
        gap_b = [side_b[j] for j in range(j0 + 1, j1) if j not in paired_b]
        if gap_a and gap_b:
            for a, b, e in _align_gap(gap_a, gap_b):
                found[a.name] = (b.name, round(e.score, 3), evidence_words(e.name, e.shape, e.value))
    return found


def _increasing(keys: list[int], items: list) -> list:
    """The items whose keys form a longest strictly increasing subsequence (patience sorting)."""
    tails: list[int] = []
    tail_at: list[int] = []
    before = [-1] * len(keys)
    for k, key in enumerate(keys):
        slot = bisect.bisect_left(tails, key)
        if slot == len(tails):
            tails.append(key)
            tail_at.append(k)
        else:
            tails[slot], tail_at[slot] = key, k
        before[k] = tail_at[slot - 1] if slot else -1
    out = []
    k = tail_at[-1] if tail_at else -1
    while k >= 0:
        out.append(items[k])
        k = before[k]
    return out[::-1]


def _structure_key(stage: Stage) -> tuple:
    from .layout import squeeze_shape

    return tuple(_NUMBERS.findall(stage.name)), squeeze_shape(tuple(stage.shape), leading_only=False)[0]


def _align_gap(gap_a: list[Stage], gap_b: list[Stage]) -> list[tuple[Stage, Stage, Evidence]]:
    """Structural anchors, then dynamic programming between them (module docstring)."""
    if len(gap_a) * len(gap_b) <= FULL_CELLS:
        return _dynamic(gap_a, gap_b)
    keys_a, keys_b = [_structure_key(s) for s in gap_a], [_structure_key(s) for s in gap_b]
    count_a: dict[tuple, int] = {}
    count_b: dict[tuple, int] = {}
    for key in keys_a:
        count_a[key] = count_a.get(key, 0) + 1
    for key in keys_b:
        count_b[key] = count_b.get(key, 0) + 1
    where_b = {key: j for j, key in enumerate(keys_b) if count_b[key] == 1}
    candidates = []
    for i, key in enumerate(keys_a):
        j = where_b.get(key)
        if j is not None and count_a[key] == 1 and key[0]:  # numbers in the name: a structural key
            e = evidence(gap_a[i], gap_b[j])  # values too: equal numbers may count from another start
            if e is not None and e.name >= ANCHOR_NAME and acceptable(e):
                candidates.append((i, j, e))
    chain = _increasing([j for _, j, _ in candidates], candidates)
    out = []
    bounds = [(-1, -1, None)] + chain + [(len(gap_a), len(gap_b), None)]
    for (i0, j0, e), (i1, j1, _) in zip(bounds, bounds[1:]):
        if e is not None:
            out.append((gap_a[i0], gap_b[j0], e))
        sub_a, sub_b = gap_a[i0 + 1 : i1], gap_b[j0 + 1 : j1]
        if sub_a and sub_b:
            out += _dynamic(sub_a, sub_b)
    return out


def _dynamic(gap_a: list[Stage], gap_b: list[Stage]) -> list[tuple[Stage, Stage, Evidence]]:
    """The order-keeping matching of most summed evidence, its ambiguous pairs dropped."""
    n, m = len(gap_a), len(gap_b)
    band = None if n * m <= FULL_CELLS else abs(n - m) + BAND
    cells: dict[tuple[int, int], Evidence] = {}
    shapes_a = Counter(tuple(s.shape) for s in gap_a)
    shapes_b = Counter(tuple(s.shape) for s in gap_b)
    for i in range(n):
        for j in _columns(i, n, m, band):
            e = evidence(gap_a[i], gap_b[j])
            if acceptable(e) or _only_one_here(gap_a[i], gap_b[j], e, shapes_a, shapes_b):
                assert e is not None
                cells[(i, j)] = e
    if not cells:
        return []
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    step = [[0] * (m + 1) for _ in range(n + 1)]  # 1: skip a, 2: skip b, 3: pair
    for i in range(1, n + 1):
        row, above, moves = best[i], best[i - 1], step[i]
        for j in range(1, m + 1):
            value, move = above[j], 1
            if row[j - 1] > value:
                value, move = row[j - 1], 2
            e = cells.get((i - 1, j - 1))
            if e is not None and above[j - 1] + e.total > value:
                value, move = above[j - 1] + e.total, 3
            row[j], moves[j] = value, move
    chosen = []
    i, j = n, m
    while i > 0 and j > 0:
        move = step[i][j]
        if move == 3:
            chosen.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif move == 1:
            i -= 1
        else:
            j -= 1
    chosen.reverse()
    kept = _unambiguous(chosen, cells)
    kept += _swapped(cells, {i for i, _ in kept}, {j for _, j in kept})
    return [(gap_a[i], gap_b[j], cells[(i, j)]) for i, j in sorted(kept)]


def _only_one_here(a: Stage, b: Stage, e: Evidence | None, shapes_a: Counter, shapes_b: Counter) -> bool:
    """The only stage of its exact shape on each side of the gap, in the same scope: between the
    same anchors, the same place in the computation (a RoPE in a port whose values differ)."""
    shape = tuple(a.shape)
    if e is None or shape != tuple(b.shape) or shapes_a[shape] != 1 or shapes_b[shape] != 1:
        return False
    return scope_similarity(a.name, b.name) >= SCOPE and not incompatible(a.signature(), b.signature())


def incompatible(a: Signature | None, b: Signature | None) -> bool:
    """Values of no common magnitude: spreads :data:`MAGNITUDE` times apart, or ranges that do
    not meet. A port's bug changes values; it rarely turns scores into a -1e9 mask.

    >>> from numtrace.compare.pairing.evidence import signature
    >>> import numpy as np
    >>> x = np.linspace(-3, 3, 100)
    >>> incompatible(signature(x), signature(2 * x + 0.5)), incompatible(signature(x), signature(x - 1e9))
    (False, True)
    """
    if a is None or b is None:
        return False
    if a.maximum < b.minimum or b.maximum < a.minimum:
        return True
    low, high = sorted((a.std, b.std))
    return high > MAGNITUDE * max(low, 1e-30)


def _columns(i: int, n: int, m: int, band: int | None) -> range:
    if band is None:
        return range(m)
    centre = round(i * (m - 1) / max(n - 1, 1))
    return range(max(0, centre - band), min(m, centre + band + 1))


def _unambiguous(chosen: list[tuple[int, int]], cells: dict) -> list[tuple[int, int]]:
    """The chosen pairs with no rival anywhere in the gap: another partner nearly as good (or
    better) that would take them, being near its own best (a better partner the order could not
    take means the order is not the port's: a swap)."""
    by_row: dict[int, list[int]] = {}
    by_column: dict[int, list[int]] = {}
    for i, j in cells:
        by_row.setdefault(i, []).append(j)
        by_column.setdefault(j, []).append(i)
    best_row = {i: max(cells[(i, j)].total for j in js) for i, js in by_row.items()}
    best_column = {j: max(cells[(i, j)].total for i in is_) for j, is_ in by_column.items()}
    kept = []
    for i, j in chosen:
        floor = cells[(i, j)].total - MARGIN
        rivals = [
            t for jj in by_row[i] if jj != j and (t := cells[(i, jj)].total) >= floor and t >= best_column[jj] - MARGIN
        ]
        rivals += [
            t for ii in by_column[j] if ii != i and (t := cells[(ii, j)].total) >= floor and t >= best_row[ii] - MARGIN
        ]
        if not rivals:
            kept.append((i, j))
    return kept


def _swapped(cells: dict, taken_a: set[int], taken_b: set[int]) -> list[tuple[int, int]]:
    """Pairs of still unpaired stages whose values agree, each the other's only such partner
    (module docstring, step 5): the order may cross."""
    agree = [
        (i, j)
        for (i, j), e in cells.items()
        if i not in taken_a and j not in taken_b and e.value is not None and e.value >= AGREE
    ]
    rows = Counter(i for i, _ in agree)
    columns = Counter(j for _, j in agree)
    return [(i, j) for i, j in agree if rows[i] == 1 and columns[j] == 1]
