"""Per-side statistics and difference metrics, computed in one streaming pass.

Stages are read through :meth:`Trace.iter_chunks` only, so memory stays
bounded by the chunk size whatever the stage size. Everything is accumulated
in float64. Chunks are cut into cache-sized blocks; a block of finite real
values of moderate magnitude takes the fused fast path of
:mod:`numtrace.compare.blocks` (on worker threads for large stages if
``NUMTRACE_THREADS`` > 1), any other block the general code below; both feed the same accumulators, in
order, so results do not depend on chunking or threads beyond the rounding
of summation order. Complex stages are compared as real values: each element is its
real part followed by its imaginary part (counts, indices into values and
non-finite counts are over those parts; ``worst_index`` names the element).

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare.verdict import Tolerance
    >>> a = MemoryTrace({"x": np.array([1.0, 2.0, 4.0])})
    >>> b = MemoryTrace({"x": np.array([1.0, 2.5, 4.0])})
    >>> sa, sb, d = compare_stage(a, "x", b, "x", Tolerance(0.0, 0.1))
    >>> sa.mean, d.abs_max, d.mismatched, d.worst_index, round(d.max_ratio, 6)
    (2.3333333333333335, 0.5, 1, (1,), 5.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..trace import Trace
from . import blocks
from .verdict import Tolerance

_ONE_PLUS = float(np.nextafter(1.0, 2.0))


@dataclass
class SideStats:
    """One side's values: min/max/mean/std/abs_max over finite values (None if none).

    ``count`` is the number of values (elements; twice that for complex).
    """

    shape: tuple
    dtype: str
    count: int
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    abs_max: float | None
    nan: int
    posinf: int
    neginf: int

    @property
    def nonfinite(self) -> int:
        return self.nan + self.posinf + self.neginf


@dataclass
class DiffStats:
    """How B differs from A (the reference).

    Metrics over the values finite on both sides (None when there are none):
    ``abs_max``, ``abs_mean``, ``rms`` of ``b - a``; ``rel_rms = rms(b-a) / rms(a)``
    and ``rel_max = abs_max / max|a|`` (0.0 when both are 0; None when only the
    denominator is 0, i.e. infinite); ``cosine`` of a and b (None if a norm is 0);
    ``snr_db = 10 log10(sum a^2 / sum (b-a)^2)`` (None when infinite, i.e. no
    difference; ``-inf`` when ``a`` is all zeros but ``b`` is not).
    Over all values: ``mismatched`` (outside tolerance, non-finite mismatches
    included) of ``total``; ``max_ratio``, the worst ``|b-a| / tolerance`` (inf
    for a non-finite mismatch); ``worst_index`` (element index, None when no
    value differs) with ``worst_a``/``worst_b``; the resolved ``rtol``/``atol``;
    ``nonfinite_a``/``nonfinite_b``, non-finite values of each side not matched
    by an equal value at the same position on the other side.
    """

    abs_max: float | None
    abs_mean: float | None
    rms: float | None
    rel_rms: float | None
    rel_max: float | None
    cosine: float | None
    snr_db: float | None
    mismatched: int
    total: int
    max_ratio: float
    worst_index: tuple | None
    worst_a: float | None
    worst_b: float | None
    rtol: float
    atol: float
    nonfinite_a: int = 0
    nonfinite_b: int = 0

    @property
    def mismatch_fraction(self) -> float:
        return self.mismatched / self.total if self.total else 0.0


def _as_values(chunk: np.ndarray, complex_pair: bool = False) -> np.ndarray:
    """A chunk as flat float64 values; complex as (re, im) parts; real padded with im=0 if asked."""
    chunk = np.asarray(chunk).reshape(-1)
    if chunk.dtype.kind == "c":
        return np.ascontiguousarray(chunk, dtype=np.complex128).view(np.float64)
    values = chunk.astype(np.float64)
    if complex_pair:
        out = np.zeros(2 * values.size)
        out[0::2] = values
        return out
    return values


# Sums are kept in units of 2**exp (sums of squares and products: 4**exp), exp chosen per
# stage so that scaled values stay below 2**_LIMIT and their squares neither overflow nor
# vanish (dnrm2's trick); exp only grows. Power-of-two scaling is exact.
_LIMIT = 400


def _grow_exp(current: int | None, bound: float) -> int | None:
    """The scale exponent once values up to ``bound`` (finite, >= 0) have been seen."""
    if bound == 0:
        return current
    x = math.frexp(bound)[1]  # bound < 2**x
    if current is None:
        return 0 if -_LIMIT <= x <= _LIMIT else x - _LIMIT
    return max(current, x - _LIMIT)


def _ldexp(value: float, exp: int) -> float:
    """value * 2**exp, inf (with value's sign) when that overflows."""
    try:
        return math.ldexp(value, exp)
    except OverflowError:
        return math.copysign(math.inf, value)


class _SideAccumulator:
    """Streaming count, non-finite counts, min/max/abs_max and mean/std (Chan's merge)."""

    def __init__(self) -> None:
        self.count = self.nan = self.posinf = self.neginf = self.n = 0
        self.exp: int | None = None
        self.mean = self.m2 = 0.0  # in units of 2**exp and 4**exp
        self.min = self.max = self.abs_max = None

    def update(self, values: np.ndarray) -> float:
        """Add a chunk; returns the largest |value| among its finite values (0.0 if none)."""
        self.count += values.size
        finite_mask = np.isfinite(values)
        if not finite_mask.all():
            self.nan += int(np.isnan(values).sum())
            self.posinf += int((values == np.inf).sum())
            self.neginf += int((values == -np.inf).sum())
        finite = values[finite_mask] if not finite_mask.all() else values
        if finite.size == 0:
            return 0.0
        lo, hi = float(finite.min()), float(finite.max())
        chunk_max = max(abs(lo), abs(hi))
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        self.abs_max = chunk_max if self.abs_max is None else max(self.abs_max, chunk_max)
        exp = _grow_exp(self.exp, chunk_max)
        if self.exp is not None and exp != self.exp:
            self.mean = math.ldexp(self.mean, self.exp - exp)
            self.m2 = math.ldexp(self.m2, 2 * (self.exp - exp))
        self.exp = exp
        scaled = np.ldexp(finite, -exp) if exp else finite
        n_c = finite.size
        mean_c = float(scaled.mean())
        deviation = scaled - mean_c
        m2_c = float(np.square(deviation, out=deviation).sum())
        total = self.n + n_c
        delta = mean_c - self.mean
        self.mean += delta * n_c / total
        self.m2 += m2_c + delta * delta * self.n * n_c / total
        self.n = total
        return chunk_max

    def add_block(self, part: tuple[int, float, float, float, float]) -> float:
        """Add a fast-path block ``(n, min, max, sum, m2)`` (unscaled); returns its largest |value|."""
        n_c, lo, hi, total_c, m2_c = part
        self.count += n_c
        chunk_max = max(abs(lo), abs(hi))
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        self.abs_max = chunk_max if self.abs_max is None else max(self.abs_max, chunk_max)
        mean_c = total_c / n_c
        if self.exp or self.exp is None:  # else (the usual case) the sums are unscaled and stay so
            exp = _grow_exp(self.exp, chunk_max)
            if self.exp is not None and exp != self.exp:
                self.mean = math.ldexp(self.mean, self.exp - exp)
                self.m2 = math.ldexp(self.m2, 2 * (self.exp - exp))
            self.exp, exp = exp, exp or 0
            mean_c, m2_c = math.ldexp(mean_c, -exp), math.ldexp(m2_c, -2 * exp)
        total = self.n + n_c
        delta = mean_c - self.mean
        self.mean += delta * n_c / total
        self.m2 += m2_c + delta * delta * self.n * n_c / total
        self.n = total
        return chunk_max

    def result(self, shape: tuple, dtype: str) -> SideStats:
        has, exp = self.n > 0, self.exp or 0
        return SideStats(
            shape=tuple(shape), dtype=dtype, count=self.count,
            min=self.min, max=self.max,
            mean=_ldexp(self.mean, exp) if has else None,
            std=_ldexp(math.sqrt(max(self.m2, 0.0) / self.n), exp) if has else None,
            abs_max=self.abs_max, nan=self.nan, posinf=self.posinf, neginf=self.neginf,
        )


class _DiffAccumulator:
    """Streaming difference metrics of aligned value chunks (see :class:`DiffStats`)."""

    def __init__(self, rtol: float, atol: float) -> None:
        self.rtol, self.atol = rtol, atol
        self.n_both = self.mismatched = self.nf_a = self.nf_b = self.total = 0
        self.exp: int | None = None
        self.sum_abs = self.sum_d2 = self.sum_a2 = self.sum_b2 = self.sum_ab = 0.0  # scaled
        self.abs_max = self.max_ratio = 0.0
        self.worst: tuple[int, float, float] | None = None  # (flat value index, a, b)

    def update(self, va: np.ndarray, vb: np.ndarray, bound: float) -> None:
        """Add equal-length value chunks; ``bound`` >= every finite |value| in them."""
        fin_a, fin_b = np.isfinite(va), np.isfinite(vb)
        both = fin_a & fin_b
        all_finite = bool(both.all())
        a0, b0 = (va, vb) if all_finite else (np.where(both, va, 0.0), np.where(both, vb, 0.0))
        d = b0 - a0
        absd = np.abs(d)
        tol = np.abs(a0)
        tol *= self.rtol
        tol += self.atol
        ratio = absd / tol  # x/0 -> inf; 0/0 (and inf/inf) -> nan: within tolerance, ratio 0
        ratio[np.isnan(ratio)] = 0.0
        out_of_tol = absd > tol
        if not all_finite:
            nf_mismatch = ~both & ~((va == vb) | (np.isnan(va) & np.isnan(vb)))
            ratio[nf_mismatch] = np.inf
            out_of_tol |= nf_mismatch
            self.nf_a += int(np.count_nonzero(nf_mismatch & ~fin_a))
            self.nf_b += int(np.count_nonzero(nf_mismatch & ~fin_b))
        mismatched = int(np.count_nonzero(out_of_tol))
        if mismatched:  # the ratio must agree with the pass rule at the boundary
            ratio[out_of_tol & (ratio <= 1.0)] = _ONE_PLUS
        self.mismatched += mismatched
        self.n_both += va.size if all_finite else int(np.count_nonzero(both))
        if va.size:
            self.abs_max = max(self.abs_max, float(absd.max()))
            k = int(np.argmax(ratio))
            if ratio[k] > self.max_ratio:
                self.max_ratio = float(ratio[k])
                self.worst = (self.total + k, float(va[k]), float(vb[k]))
        self.total += va.size
        exp = _grow_exp(self.exp, bound)
        if self.exp is not None and exp != self.exp:
            self.sum_abs = math.ldexp(self.sum_abs, self.exp - exp)
            for key in ("sum_d2", "sum_a2", "sum_b2", "sum_ab"):
                setattr(self, key, math.ldexp(getattr(self, key), 2 * (self.exp - exp)))
        self.exp = exp
        if exp:  # sums from scaled values: exact scaling, no overflow of the squares
            a0, b0 = np.ldexp(a0, -exp), np.ldexp(b0, -exp)
            d = b0 - a0
            absd = np.abs(d)
        # pairwise summation (np.sum), not BLAS dot: accurate and the same on every machine
        self.sum_abs += float(absd.sum())
        self.sum_d2 += float(np.square(d).sum())
        self.sum_a2 += float(np.square(a0).sum())
        self.sum_b2 += float(np.square(b0).sum())
        self.sum_ab += float(np.multiply(a0, b0).sum())

    def add_block(self, part: tuple, bound: float, va: np.ndarray, vb: np.ndarray) -> None:
        """Add a fast-path block's metrics (:func:`blocks.pair_block`, unscaled) of values ``va``/``vb``."""
        abs_max, sum_abs, sum_d2, sum_a2, sum_b2, sum_ab, ratio, k, mismatched = part
        self.mismatched += mismatched
        self.n_both += va.size
        self.abs_max = max(self.abs_max, abs_max)
        if ratio > self.max_ratio:
            self.max_ratio = ratio
            self.worst = (self.total + k, float(va[k]), float(vb[k]))
        self.total += va.size
        if self.exp or self.exp is None:  # else (the usual case) the sums are unscaled and stay so
            exp = _grow_exp(self.exp, bound)
            if self.exp is not None and exp != self.exp:
                self.sum_abs = math.ldexp(self.sum_abs, self.exp - exp)
                for key in ("sum_d2", "sum_a2", "sum_b2", "sum_ab"):
                    setattr(self, key, math.ldexp(getattr(self, key), 2 * (self.exp - exp)))
            self.exp, exp = exp, exp or 0
            sum_abs = math.ldexp(sum_abs, -exp)
            sum_d2, sum_a2, sum_b2, sum_ab = (math.ldexp(x, -2 * exp) for x in (sum_d2, sum_a2, sum_b2, sum_ab))
        self.sum_abs += sum_abs
        self.sum_d2 += sum_d2
        self.sum_a2 += sum_a2
        self.sum_b2 += sum_b2
        self.sum_ab += sum_ab

    def result(self, peak_a: float, shape: tuple, pair_complex: bool) -> DiffStats:
        n, exp, has = self.n_both, self.exp or 0, self.n_both > 0
        worst_index = None
        if self.worst is not None:
            element = self.worst[0] // 2 if pair_complex else self.worst[0]
            worst_index = tuple(int(i) for i in np.unravel_index(element, shape))
        d2, a2, b2 = self.sum_d2, self.sum_a2, self.sum_b2
        return DiffStats(
            abs_max=self.abs_max if has else None,
            abs_mean=_ldexp(self.sum_abs / n, exp) if has else None,
            rms=_ldexp(math.sqrt(d2 / n), exp) if has else None,
            rel_rms=_ratio_or_none(math.sqrt(d2), math.sqrt(a2)) if has else None,
            rel_max=_ratio_or_none(self.abs_max, peak_a) if has else None,
            cosine=_cosine(self.sum_ab, a2, b2) if has else None,
            snr_db=_snr_db(a2, d2) if has else None,
            mismatched=self.mismatched,
            total=self.total,
            max_ratio=self.max_ratio,
            worst_index=worst_index,
            worst_a=None if self.worst is None else self.worst[1],
            worst_b=None if self.worst is None else self.worst[2],
            rtol=self.rtol,
            atol=self.atol,
            nonfinite_a=self.nf_a,
            nonfinite_b=self.nf_b,
        )


def summarize(trace: Trace, name: str, chunk_elements: int = 1 << 20) -> SideStats:
    """Statistics of one stage in one streaming pass.

    Example:
        >>> import numpy as np
        >>> from numtrace.trace import MemoryTrace
        >>> s = summarize(MemoryTrace({"x": np.array([1.0, np.nan, -3.0])}), "x")
        >>> s.min, s.max, s.abs_max, s.nan, s.count
        (-3.0, 1.0, 3.0, 1, 3)
    """
    info = trace.info(name)
    acc = _SideAccumulator()
    parallel = info.size >= blocks.PARALLEL_MIN
    chunks = trace.iter_chunks(name, min(max(1, int(chunk_elements)), blocks.READ))
    with _quiet():
        for parts in blocks.ordered_map(_side_blocks, chunks, parallel):
            for part in parts:
                if isinstance(part, tuple):
                    acc.add_block(part)
                else:
                    acc.update(_as_values(part))
    return acc.result(info.shape, info.dtype)


def _quiet():
    """No floating-point warnings: casts of signalling NaNs (garbage bytes) and overflow are expected."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")


def _cut(values: np.ndarray) -> list[np.ndarray]:
    flat = np.asarray(values).reshape(-1)
    step = blocks.BLOCK
    return [flat] if flat.size <= step else [flat[i : i + step] for i in range(0, flat.size, step)]


def _side_blocks(chunk: np.ndarray) -> list:
    """Fast-path results of a chunk's blocks; a block the fast path refuses is passed back as is."""
    with _quiet():
        return [blocks.side_block(block) or block for block in _cut(chunk)]


def _chunk_peak(chunk: np.ndarray) -> float:
    values = np.asarray(chunk).reshape(-1)
    if values.size and values.dtype.kind in "fiu":
        lo, hi = float(values.min()), float(values.max())
        if math.isfinite(lo) and math.isfinite(hi):
            return max(abs(lo), abs(hi))
    values = _as_values(values)
    finite = values[np.isfinite(values)]
    return float(np.abs(finite).max()) if finite.size else 0.0


def _peak(chunks) -> float:
    """max |a| over the finite values of the chunks (0.0 when there are none)."""
    with _quiet():
        return max(map(_chunk_peak, chunks), default=0.0)


def _lockstep(chunks_a, chunks_b, expected: int, labels: tuple[str, str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Re-cut two chunk streams of one length to common boundaries; pairs of equal size."""
    iter_a, iter_b = iter(chunks_a), iter(chunks_b)
    rest_a = rest_b = np.empty(0)
    seen = 0
    while True:
        while rest_a.size == 0 and (nxt := next(iter_a, None)) is not None:
            rest_a = np.asarray(nxt).reshape(-1)
        while rest_b.size == 0 and (nxt := next(iter_b, None)) is not None:
            rest_b = np.asarray(nxt).reshape(-1)
        if rest_a.size == 0 or rest_b.size == 0:
            if rest_a.size or rest_b.size or seen != expected:
                raise ValueError(
                    f"stage data of {labels[0]!r} and {labels[1]!r} do not both hold the "
                    f"{expected} values their shape promises"
                )
            return
        k = min(rest_a.size, rest_b.size)
        yield rest_a[:k], rest_b[:k]
        rest_a, rest_b = rest_a[k:], rest_b[k:]
        seen += k


def compare_stage(
    ref: Trace,
    ref_name: str,
    cand: Trace,
    cand_name: str,
    tolerance: Tolerance,
    chunk_elements: int = 1 << 20,
) -> tuple[SideStats, SideStats, DiffStats]:
    """Stats of both sides and the difference metrics of a same-shape stage.

    Streams both sides in lock-step chunks. A first pass over the reference (its
    peak, for a relative atol) is made only when the stage spans more than one
    chunk. Raises ValueError when the shapes differ.

    Example:
        >>> import numpy as np
        >>> from numtrace.trace import MemoryTrace
        >>> a = MemoryTrace({"mel": np.linspace(-10.0, 0.0, 100)})
        >>> b = MemoryTrace({"mel": np.linspace(-10.0, 0.0, 100) - 1.46})
        >>> _, _, d = compare_stage(a, "mel", b, "mel", Tolerance(1e-4), chunk_elements=7)
        >>> round(d.abs_mean, 12), d.mismatched
        (1.46, 100)
    """
    info_a, info_b = ref.info(ref_name), cand.info(cand_name)
    if tuple(info_a.shape) != tuple(info_b.shape):
        raise ValueError(f"shapes differ: reference {tuple(info_a.shape)}, candidate {tuple(info_b.shape)}")
    chunk_elements = max(1, int(chunk_elements))
    size = info_a.size
    need_peak = tolerance.atol is None and tolerance.rtol > 0
    parallel = size >= blocks.PARALLEL_MIN
    read = min(chunk_elements, blocks.READ)  # cache-sized reads: no page faults, data hot for the kernels
    if size <= chunk_elements:
        chunks_a = list(ref.iter_chunks(ref_name, read))  # at most one chunk's worth
        peak = _peak(chunks_a) if need_peak else 0.0
    else:
        peak = _peak(ref.iter_chunks(ref_name, chunk_elements)) if need_peak else 0.0
        chunks_a = ref.iter_chunks(ref_name, read)
    rtol = tolerance.rtol
    atol = tolerance.resolve_atol(peak, info_a.dtype, info_b.dtype)

    is_complex = [i.dtype.startswith("complex") for i in (info_a, info_b)]
    pair_complex = any(is_complex)
    side_a, side_b = _SideAccumulator(), _SideAccumulator()
    acc = _DiffAccumulator(rtol, atol)
    chunks_b = cand.iter_chunks(cand_name, read)
    pairs = _lockstep(chunks_a, chunks_b, size, (ref.label, cand.label))
    kernel = _PairBlocks(rtol, atol, fast=not pair_complex)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for parts in blocks.ordered_map(kernel, pairs, parallel):
            for raw_a, raw_b, part in parts:
                if part is not None:
                    bound = max(side_a.add_block(part[0]), side_b.add_block(part[1]))
                    acc.add_block(part[2], bound, raw_a, raw_b)
                    continue
                va, vb = _as_values(raw_a), _as_values(raw_b)
                bound = max(side_a.update(va), side_b.update(vb))
                if pair_complex:
                    va = va if is_complex[0] else _as_values(raw_a, True)
                    vb = vb if is_complex[1] else _as_values(raw_b, True)
                acc.update(va, vb, bound)
    stats_a = side_a.result(info_a.shape, info_a.dtype)
    stats_b = side_b.result(info_b.shape, info_b.dtype)
    return stats_a, stats_b, acc.result(stats_a.abs_max or 0.0, info_a.shape, pair_complex)


class _PairBlocks:
    """The per-chunk-pair task: ``[(block_a, block_b, fast result or None), ...]``."""

    def __init__(self, rtol: float, atol: float, fast: bool) -> None:
        self.rtol, self.atol, self.fast = rtol, atol, fast

    def __call__(self, pair: tuple[np.ndarray, np.ndarray]) -> list:
        out = []
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            for va, vb in zip(_cut(pair[0]), _cut(pair[1])):
                part = blocks.pair_block(va, vb, self.rtol, self.atol) if self.fast else None
                out.append((va, vb, part))
        return out


def _ratio_or_none(num: float, den: float) -> float | None:
    if den > 0:
        return num / den
    return 0.0 if num == 0 else None


def _cosine(ab: float, a2: float, b2: float) -> float | None:
    if a2 <= 0 or b2 <= 0:
        return None
    return max(-1.0, min(1.0, ab / (math.sqrt(a2) * math.sqrt(b2))))


def _snr_db(a2: float, d2: float) -> float | None:
    if d2 == 0:
        return None
    if a2 == 0:
        return -math.inf
    return 10.0 * (math.log10(a2) - math.log10(d2))
