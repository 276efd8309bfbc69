import math

import numpy as np
import pytest

from numtrace import dtypes
from numtrace.compare.statistics.stats import DiffStats, SideStats, compare_stage, summarize
from numtrace.compare.verdict import Tolerance, classify, default_tolerance
from numtrace.trace import MemoryTrace


def mel_like(seed=0, shape=(1, 80, 312)):
    """A dB spectrogram in [-10.38, 0.0], float32."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-10.38, 0.0, size=shape).astype(np.float32)
    x.flat[0], x.flat[1] = -10.38, 0.0
    return x


def cmp(a, b, tol=None, chunk=1 << 20, name="x"):
    ta, tb = MemoryTrace({name: a}), MemoryTrace({name: b})
    if tol is None:
        tol = default_tolerance(ta.info(name).dtype, tb.info(name).dtype)
    return compare_stage(ta, name, tb, name, tol, chunk_elements=chunk)


class SplitTrace(MemoryTrace):
    """Yields chunks of a different size than asked for, and counts reads."""

    def __init__(self, stages, divisor=3, **kw):
        super().__init__(stages, **kw)
        self.divisor, self.passes, self.largest = divisor, 0, 0

    def read(self, name):  # pragma: no cover - must never be called
        raise AssertionError("compare must stream, not read whole stages")

    def iter_chunks(self, name, max_elements):
        self.passes += 1
        for chunk in super().iter_chunks(name, max(1, max_elements // self.divisor + 1)):
            self.largest = max(self.largest, chunk.size)
            yield chunk


# --- side statistics -----------------------------------------------------------


def test_summarize_matches_numpy_over_finite_values_and_counts_nonfinite():
    x = np.array([[1.5, np.nan, -3.0], [np.inf, 2.0, -np.inf], [np.nan, 0.25, 4.0]])
    finite = x[np.isfinite(x)]
    for chunk in (1, 2, 4, 100):
        s = summarize(MemoryTrace({"x": x}), "x", chunk)
        assert s.shape == (3, 3) and s.dtype == "float64" and s.count == 9
        assert (s.nan, s.posinf, s.neginf, s.nonfinite) == (2, 1, 1, 4)
        assert (s.min, s.max, s.abs_max) == (-3.0, 4.0, 4.0)
        assert s.mean == pytest.approx(finite.mean(), rel=1e-15)
        assert s.std == pytest.approx(finite.std(), rel=1e-14)


def test_summarize_all_nonfinite_and_empty():
    s = summarize(MemoryTrace({"x": np.array([np.nan, np.inf])}), "x")
    assert (s.min, s.max, s.mean, s.std, s.abs_max) == (None,) * 5
    assert (s.count, s.nan, s.posinf) == (2, 1, 1)
    e = summarize(MemoryTrace({"x": np.zeros((0, 3), np.float32)}), "x")
    assert e.count == 0 and e.shape == (0, 3) and e.mean is None


def test_float32_statistics_are_accumulated_in_float64():
    x = (1e4 + np.random.default_rng(1).standard_normal(300_000)).astype(np.float32)
    s = summarize(MemoryTrace({"x": x}), "x", 4096)
    exact = x.astype(np.float64)
    assert s.mean == pytest.approx(exact.mean(), rel=1e-13)
    assert s.std == pytest.approx(exact.std(), rel=1e-9)


# --- planted differences ---------------------------------------------------------


def test_offset_of_minus_1_46_on_a_mel_is_large_with_abs_mean_1_46():
    a = mel_like()
    b = a - np.float32(1.46)
    sa, sb, d = cmp(a, b)
    assert isinstance(d, DiffStats) and isinstance(sa, SideStats)
    assert (sa.min, sa.max) == (pytest.approx(-10.38), 0.0)
    assert sb.mean == pytest.approx(sa.mean - 1.46, abs=1e-5)
    assert d.abs_mean == pytest.approx(1.46, abs=1e-5)
    assert d.abs_max == pytest.approx(1.46, abs=1e-5)
    assert d.rms == pytest.approx(1.46, abs=1e-5)
    assert d.rel_max == pytest.approx(1.46 / 10.38, rel=1e-5)
    assert d.mismatched == d.total == a.size
    assert d.mismatch_fraction == 1.0
    # tolerance: rtol = sqrt(eps32), atol = rtol * 10.38 + tiny32 -> ratio ~ 1.46 / (2 * 3.45e-4 * 10.38)
    rtol = math.sqrt(np.finfo(np.float32).eps)
    assert d.rtol == rtol and d.atol == pytest.approx(rtol * 10.38, rel=1e-6)
    assert d.max_ratio == pytest.approx(1.46 / (rtol * 10.38), rel=1e-3)
    assert classify(d.max_ratio).value == "LARGE"


def test_known_metrics_snr_cosine_rel_rms():
    a = np.array([1.0, -1.0, 1.0, -1.0])
    b = a + 0.1
    _, _, d = cmp(a, b, Tolerance(0.0, 0.05))
    assert d.snr_db == pytest.approx(10 * math.log10(4 / 0.04))
    assert d.rel_rms == pytest.approx(0.1)
    assert d.rel_max == pytest.approx(0.1)
    assert d.cosine == pytest.approx(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))
    assert d.max_ratio == pytest.approx(2.0)
    assert d.worst_index == (0,) and (d.worst_a, d.worst_b) == (1.0, 1.1)
    assert (d.rtol, d.atol) == (0.0, 0.05)


def test_identical_stage_has_no_worst_element_and_infinite_snr():
    a = mel_like(shape=(4, 5))
    _, _, d = cmp(a, a.copy())
    assert (d.abs_max, d.abs_mean, d.rms, d.rel_rms, d.rel_max) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert d.snr_db is None and d.cosine == pytest.approx(1.0)
    assert d.max_ratio == 0.0 and d.mismatched == 0
    assert d.worst_index is None and d.worst_a is None and d.worst_b is None


def test_zero_reference_rules():
    _, _, same = cmp(np.zeros(3), np.zeros(3))
    assert same.rel_rms == 0.0 and same.rel_max == 0.0 and same.cosine is None and same.snr_db is None
    _, _, off = cmp(np.zeros(3), np.array([0.0, 1e-3, 0.0]))
    assert off.rel_rms is None and off.rel_max is None and off.cosine is None
    assert off.snr_db == -math.inf
    assert off.atol == np.finfo(np.float64).tiny  # rtol * peak 0 + tiny
    assert off.worst_index == (1,)


def test_pass_rule_boundary_is_inclusive():
    _, _, at = cmp(np.array([0.0, 2.0]), np.array([0.5, 2.0]), Tolerance(0.0, 0.5))
    assert at.max_ratio == 1.0 and at.mismatched == 0
    _, _, over = cmp(np.array([0.0]), np.array([np.nextafter(0.5, 1.0)]), Tolerance(0.0, 0.5))
    assert over.max_ratio > 1.0 and over.mismatched == 1
    _, _, rel = cmp(np.array([4.0]), np.array([4.0 + 1e-3 * 4.0]), Tolerance(1e-3, 0.0))
    assert rel.mismatched == 0 and classify(rel.max_ratio).value == "MATCH"


# --- non-finite values -----------------------------------------------------------


def test_nan_vs_nan_and_equal_infinities_are_equal():
    a = np.array([np.nan, np.inf, -np.inf, 1.0])
    _, _, d = cmp(a, a.copy())
    assert d.mismatched == 0 and d.max_ratio == 0.0 and (d.nonfinite_a, d.nonfinite_b) == (0, 0)
    assert d.total == 4 and d.abs_max == 0.0


def test_nonfinite_mismatches_are_infinitely_out_and_counted_per_side():
    a = np.array([np.nan, 1.0, np.inf, 2.0, np.nan])
    b = np.array([1.0, np.nan, -np.inf, 2.0, np.nan])
    _, _, d = cmp(a, b)
    assert d.max_ratio == math.inf and d.mismatched == 3
    assert (d.nonfinite_a, d.nonfinite_b) == (2, 2)  # a: nan@0, inf@2; b: nan@1, -inf@2
    assert d.worst_index == (0,) and math.isnan(d.worst_a) and d.worst_b == 1.0
    # metrics cover only the one value finite on both sides
    assert d.abs_max == 0.0 and d.abs_mean == 0.0


# --- dtypes ----------------------------------------------------------------------


def test_integer_stages_are_exact():
    _, _, same = cmp(np.array([1, 2, 3], np.int64), np.array([1, 2, 3], np.int32))
    assert same.mismatched == 0 and same.max_ratio == 0.0 and (same.rtol, same.atol) == (0.0, 0.0)
    _, _, off = cmp(np.array([1, 2, 3], np.int64), np.array([1, 2, 4], np.int64))
    assert off.mismatched == 1 and off.max_ratio == math.inf and off.worst_index == (2,)
    assert off.abs_max == 1.0
    _, _, flags = cmp(np.array([True, False]), np.array([True, True]))
    assert flags.mismatched == 1 and flags.worst_index == (1,)


def test_bfloat16_rounding_of_float32_is_within_default_tolerance():
    a = (np.random.default_rng(2).standard_normal((16, 33)) * 3).astype(np.float32)
    b = dtypes.decode(dtypes.encode(a, "bfloat16"), "bfloat16").reshape(a.shape)
    assert not np.array_equal(a, b)
    ta, tb = MemoryTrace({"x": a}), MemoryTrace({"x": (b, "bfloat16")})
    tol = default_tolerance("float32", "bfloat16")
    sa, sb, d = compare_stage(ta, "x", tb, "x", tol)
    assert sb.dtype == "bfloat16" and sa.dtype == "float32"
    assert d.mismatched == 0 and d.max_ratio <= 1.0 and d.abs_max > 0


def test_complex_values_compare_real_and_imaginary_parts():
    a = np.array([[1 + 2j, 3 - 1j], [0.5j, 2.0]], np.complex64)
    b = a.copy()
    b[1, 0] = 0.5j + 0.25  # real part off by 0.25
    sa, _, d = cmp(a, b, Tolerance(0.0, 0.01))
    assert sa.count == 8 and sa.min == -1.0 and sa.max == 3.0
    assert d.total == 8 and d.mismatched == 1 and d.worst_index == (1, 0)
    assert (d.worst_a, d.worst_b) == (0.0, 0.25)
    # a real candidate against a complex reference: imaginary parts compared with 0
    _, _, mixed = cmp(np.array([1 + 1j, 2 + 0j]), np.array([1.0, 2.0]), Tolerance(0.0, 0.1))
    assert mixed.mismatched == 1 and mixed.worst_index == (0,) and (mixed.worst_a, mixed.worst_b) == (1.0, 0.0)


def test_zero_size_and_scalar_stages():
    _, _, empty = cmp(np.zeros((0, 4)), np.zeros((0, 4)))
    assert empty.total == 0 and empty.mismatched == 0 and empty.abs_max is None and empty.mismatch_fraction == 0.0
    _, _, scalar = cmp(np.array(2.0), np.array(3.0), Tolerance(0.0, 0.1))
    assert scalar.worst_index == () and scalar.total == 1 and scalar.max_ratio == pytest.approx(10.0)


def test_shapes_that_differ_are_refused():
    with pytest.raises(ValueError, match="shapes differ"):
        cmp(np.zeros((1, 80, 312)), np.zeros((1, 80, 313)))


# --- streaming -------------------------------------------------------------------


def planted_pair(seed=5):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((3, 7, 11)).astype(np.float32)
    b = a + rng.standard_normal(a.shape).astype(np.float32) * 2e-4
    b[1, 2, 3] += 0.05
    a[0, 0, 4], b[0, 0, 4] = np.nan, np.nan
    a[2, 6, 10] = np.inf
    return a, b


def test_chunked_and_unchunked_results_agree():
    a, b = planted_pair()
    whole = cmp(a, b)
    for chunk in (7, 1, 13, 230):
        part = cmp(a, b, chunk=chunk)
        for side_p, side_w in zip(part[:2], whole[:2]):
            assert _close(side_p, side_w)
        assert _close(part[2], whole[2])
        assert part[2].worst_index == whole[2].worst_index == (2, 6, 10)
        assert part[2].mismatched == whole[2].mismatched


def _close(x, y):
    for key, vx in vars(x).items():
        vy = getattr(y, key)
        if isinstance(vx, float) and isinstance(vy, float) and not (math.isnan(vx) and math.isnan(vy)):
            if vx != pytest.approx(vy, rel=1e-12, abs=1e-300):
                return False
        elif not (vx == vy or (isinstance(vx, float) and math.isnan(vx) and math.isnan(vy))):
            return False
    return True


def test_lockstep_rebuffers_chunks_of_different_sizes_and_never_reads_whole_stages():
    a, b = planted_pair(6)
    whole = cmp(a, b)
    ta, tb = SplitTrace({"x": a}, divisor=3), SplitTrace({"x": b}, divisor=2)
    tol = default_tolerance("float32", "float32")
    result = compare_stage(ta, "x", tb, "x", tol, chunk_elements=20)
    assert all(_close(p, w) for p, w in zip(result, whole))
    assert ta.largest <= 20 and tb.largest <= 20
    # relative atol on a multi-chunk stage: one peak pass over the reference, then one joint pass
    assert (ta.passes, tb.passes) == (2, 1)


def test_single_chunk_and_absolute_atol_need_one_pass():
    a, b = planted_pair(7)
    ta, tb = SplitTrace({"x": a}, divisor=1), SplitTrace({"x": b}, divisor=1)
    compare_stage(ta, "x", tb, "x", Tolerance(1e-3), chunk_elements=a.size)
    assert (ta.passes, tb.passes) == (1, 1)
    ta.passes = tb.passes = 0
    compare_stage(ta, "x", tb, "x", Tolerance(1e-3, 1e-6), chunk_elements=10)
    assert (ta.passes, tb.passes) == (1, 1)


def test_inconsistent_chunk_streams_are_an_error():
    class Short(MemoryTrace):
        def iter_chunks(self, name, max_elements):
            yield np.zeros(2)

    ta, tb = MemoryTrace({"x": np.zeros(3)}), Short({"x": np.zeros(3)})
    with pytest.raises(ValueError, match="3 values"):
        compare_stage(ta, "x", tb, "x", Tolerance(1e-3, 0.0))


@pytest.mark.parametrize("scale", [1e-200, 1e-160, 1.0, 1e160, 1e200, 1e300])
def test_metrics_do_not_overflow_or_vanish_at_extreme_scales(scale):
    base = np.array([1.0, -2.0, 3.0, 0.5, -1.5, 2.5])
    a, b = base * scale, (base + 0.25) * scale
    for chunk in (1, 4, 100):
        sa, sb, d = cmp(a, b, Tolerance(1e-3), chunk=chunk)
        assert sa.mean == pytest.approx(base.mean() * scale, rel=1e-12)
        assert sa.std == pytest.approx(base.std() * scale, rel=1e-12)
        assert d.abs_mean == pytest.approx(0.25 * scale, rel=1e-12)
        assert d.rms == pytest.approx(0.25 * scale, rel=1e-12)
        assert d.rel_rms == pytest.approx(0.25 / math.sqrt(np.mean(base**2)), rel=1e-12)
        assert d.snr_db == pytest.approx(10 * math.log10(np.sum(base**2) / (6 * 0.0625)), rel=1e-12)
        assert d.cosine == pytest.approx(np.dot(base, base + 0.25) / np.linalg.norm(base) / np.linalg.norm(base + 0.25))


def test_mixed_scales_and_an_unrepresentable_difference():
    a = np.array([1e-300, 1.0, 1e300, 1.7e308])
    b = np.array([1e-300, 1.0, 1e300, -1.7e308])
    sa, _, d = cmp(a, b, Tolerance(1e-3), chunk=1)
    assert sa.mean == pytest.approx((1.7e308 + 1e300) / 4, rel=1e-12)
    assert d.abs_max == math.inf and d.max_ratio == math.inf and d.mismatched == 1
    assert d.abs_mean == pytest.approx(1.7e308 / 2, rel=1e-12)  # 3.4e308 / 4, computed scaled
    assert d.worst_index == (3,)
