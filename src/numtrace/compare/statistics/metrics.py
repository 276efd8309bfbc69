"""The statistics of a stage (:class:`SideStats`, :class:`DiffStats`) and their streaming accumulators.

The accumulators take values block by block (float64, or the fused results of
:mod:`numtrace.compare.statistics.blocks`) and merge them exactly as one pass would, up to
the rounding of summation order: Chan's merge for mean and variance, sums scaled
by powers of two so that squares neither overflow nor vanish.
:mod:`numtrace.compare.statistics.stats` drives them over traces.

Example:
    >>> import numpy as np
    >>> acc = SideAccumulator()
    >>> _ = acc.update(np.array([1.0, 2.0])), acc.update(np.array([np.nan, 6.0]))
    >>> s = acc.result((4,), "float64")
    >>> s.mean, s.max, s.nan, s.count
    (3.0, 6.0, 1, 4)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_ONE_PLUS = float(np.nextafter(1.0, 2.0))


# Not frozen: a long trace builds tens of thousands of these, and a frozen dataclass's __init__
# costs three times as much (every field set through object.__setattr__). Nothing changes them.
@dataclass(kw_only=True)
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


@dataclass(kw_only=True)
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


def as_values(chunk: np.ndarray, complex_pair: bool = False) -> np.ndarray:
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


class SideAccumulator:
    """Streaming count, non-finite counts, min/max/abs_max and mean/std (Chan's merge)."""

    def __init__(self) -> None:
        self.count = self.nan = self.posinf = self.neginf = self.n = 0
        self.exp: int | None = None
        self.mean = self.m2 = 0.0  # in units of 2**exp and 4**exp
        self.min: float | None = None
        self.max: float | None = None
        self.abs_max: float | None = None

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
        if self.exp is not None and exp is not None and exp != self.exp:
            self.mean = math.ldexp(self.mean, self.exp - exp)
            self.m2 = math.ldexp(self.m2, 2 * (self.exp - exp))
        self.exp = exp
        scaled = np.ldexp(finite, -exp) if exp else finite
        n_c = finite.size
        mean_c = float(scaled.mean())
        deviation = scaled - mean_c
        m2_c = float(np.square(deviation, out=deviation).sum())
        self._merge(n_c, mean_c, m2_c)
        return chunk_max

    def _merge(self, n_c: int, mean_c: float, m2_c: float) -> None:
        """Chan's parallel update of count, mean and sum of squared deviations (all in scaled units)."""
        total = self.n + n_c
        delta = mean_c - self.mean
        self.mean += delta * n_c / total
        self.m2 += m2_c + delta * delta * self.n * n_c / total
        self.n = total

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
            if self.exp is not None and exp is not None and exp != self.exp:
                self.mean = math.ldexp(self.mean, self.exp - exp)
                self.m2 = math.ldexp(self.m2, 2 * (self.exp - exp))
            self.exp, exp = exp, exp or 0
            mean_c, m2_c = math.ldexp(mean_c, -exp), math.ldexp(m2_c, -2 * exp)
        self._merge(n_c, mean_c, m2_c)
        return chunk_max

    def result(self, shape: tuple, dtype: str) -> SideStats:
        counts = (self.count, self.nan, self.posinf, self.neginf)
        return side_stats(
            shape, dtype, counts, (self.min, self.max, self.abs_max), self.n, self.mean, self.m2, self.exp
        )


def side_stats(
    shape: tuple, dtype: str, counts: tuple, bounds: tuple, n: int, mean: float, m2: float, exp: int | None
) -> SideStats:
    """:class:`SideStats` from a :class:`SideAccumulator`'s state: ``counts`` (values, NaN, +inf,
    -inf), ``bounds`` (min, max, abs_max), ``n`` finite values of scaled ``mean`` and ``m2``."""
    has, exp = n > 0, exp or 0
    return SideStats(
        shape=tuple(shape),
        dtype=dtype,
        count=counts[0],
        min=bounds[0],
        max=bounds[1],
        mean=_ldexp(mean, exp) if has else None,
        std=_ldexp(math.sqrt(max(m2, 0.0) / n), exp) if has else None,
        abs_max=bounds[2],
        nan=counts[1],
        posinf=counts[2],
        neginf=counts[3],
    )


class DiffAccumulator:
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
        if self.exp is not None and exp is not None and exp != self.exp:
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
            if self.exp is not None and exp is not None and exp != self.exp:
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
        worst = self.worst
        if worst is not None and pair_complex:
            worst = (worst[0] // 2, worst[1], worst[2])  # the element, not the value
        sums = (self.sum_abs, self.sum_d2, self.sum_a2, self.sum_b2, self.sum_ab)
        counts = (self.n_both, self.mismatched, self.total, self.nf_a, self.nf_b)
        return diff_stats(
            counts, sums, self.exp, self.abs_max, self.max_ratio, worst, peak_a, shape, (self.rtol, self.atol)
        )


def diff_stats(
    counts: tuple,
    sums: tuple,
    exp: int | None,
    abs_max: float,
    max_ratio: float,
    worst,
    peak_a: float,
    shape,
    tolerance,
) -> DiffStats:
    """:class:`DiffStats` from a :class:`DiffAccumulator`'s state: ``counts`` (values finite on both
    sides, mismatched, total, non-finite mismatches of a and b), scaled ``sums`` (|d|, d², a², b², ab),
    ``worst`` (element index, a, b) or None, the resolved ``tolerance`` (rtol, atol)."""
    n, exp, has = counts[0], exp or 0, counts[0] > 0
    sum_abs, d2, a2, b2, ab = sums
    return DiffStats(
        abs_max=abs_max if has else None,
        abs_mean=_ldexp(sum_abs / n, exp) if has else None,
        rms=_ldexp(math.sqrt(d2 / n), exp) if has else None,
        rel_rms=_ratio_or_none(math.sqrt(d2), math.sqrt(a2)) if has else None,
        rel_max=_ratio_or_none(abs_max, peak_a) if has else None,
        cosine=_cosine(ab, a2, b2) if has else None,
        snr_db=_snr_db(a2, d2) if has else None,
        mismatched=counts[1],
        total=counts[2],
        max_ratio=max_ratio,
        worst_index=None if worst is None else unravel(worst[0], shape),
        worst_a=None if worst is None else worst[1],
        worst_b=None if worst is None else worst[2],
        rtol=tolerance[0],
        atol=tolerance[1],
        nonfinite_a=counts[3],
        nonfinite_b=counts[4],
    )


def unravel(index: int, shape) -> tuple[int, ...]:
    """``np.unravel_index`` of one flat index, as Python ints (no array round trip).

    Example:
        >>> unravel(7, (2, 3, 2)), unravel(0, ())
        ((1, 0, 1), ())
    """
    out = []
    for dim in reversed(tuple(shape)):
        index, i = divmod(index, dim)
        out.append(i)
    return tuple(reversed(out))


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
