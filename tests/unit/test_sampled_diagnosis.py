"""Large stages are diagnosed from a window and exact whole-stage sums (compare/sample.py, sums.py).

Every test makes the "large" stage small and lowers the threshold instead
(``diagnose_max_elements``): the rule is the same at every size.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from numtrace.compare import Tolerance, ToleranceTable, diff
from numtrace.compare.diagnosis.diagnose import diagnose
from numtrace.compare.diagnosis.sample import choose_box, mirror_box
from numtrace.compare.diagnosis.sums import gather, scan
from numtrace.testing.planted import find_finding as find
from numtrace.trace import MemoryTrace, Trace

BUDGET = 4096


def stage(a, b, budget=BUDGET, **options):
    report = diff(MemoryTrace({"x": a}), MemoryTrace({"x": b}), diagnose_max_elements=budget, **options)
    return report.stages[0]


def normal(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# --- the window -------------------------------------------------------------------------------------


def test_the_window_cuts_leading_axes_around_the_worst_element():
    assert choose_box((4, 64, 128), (2, 40, 5), 4096) == ((2, 3), (24, 56), (0, 128))
    assert choose_box((4, 64, 128), (0, 0, 0), 1 << 20) == ((0, 4), (0, 64), (0, 128))  # fits: whole
    assert choose_box((4, 64, 128), (3, 63, 127), 4096) == ((3, 4), (32, 64), (0, 128))  # clamped at the end
    assert choose_box((4, 64, 128), None, 4096) == ((0, 1), (0, 32), (0, 128))
    assert choose_box((10, 100000), (9, 99999), 4096) == ((9, 10), (95904, 100000))  # a row too long to keep


def test_a_square_map_keeps_one_range_on_both_axes_or_a_mirror():
    assert choose_box((256, 256), (100, 110), 4096) == ((73, 137), (73, 137))
    box = choose_box((256, 256), (10, 250), 4096)
    assert box == ((0, 64), (192, 256)) and mirror_box((256, 256), box) == ((192, 256), (0, 64))
    assert mirror_box((256, 256), ((73, 137), (73, 137))) is None


class RaggedTrace(Trace):
    """A trace whose chunks come in odd sizes (as a format with its own chunking may give them)."""

    def __init__(self, arrays):
        self._arrays = arrays
        self.order, self.has_order, self.metadata, self.label = list(arrays), True, {}, "ragged"

    def info(self, name):
        return MemoryTrace(self._arrays).info(name)

    def iter_chunks(self, name, max_elements):
        flat, at, step = self._arrays[name].reshape(-1), 0, 1
        while at < flat.size:
            yield flat[at : at + min(step, max_elements)]
            at += min(step, max_elements)
            step = step * 3 + 1


@pytest.mark.parametrize("source", [MemoryTrace, RaggedTrace])
def test_scan_gathers_the_window_and_sums_the_whole_stage(source):
    a = normal((3, 5, 40, 7), 1, np.float64)
    b = a + normal(a.shape, 2, np.float64) * 0.1
    a[2, 1, 3, 4], b[0, 0, 0, 0] = np.nan, np.inf
    box = choose_box(a.shape, (1, 2, 30, 1), 200)
    assert box == ((1, 2), (2, 3), (12, 40), (0, 7))
    wa, wb, sums = scan(source({"x": a}), "x", source({"x": b}), "x", a.shape, box, 0.5, finite=False, axes=[0, 1, 2])
    window = tuple(slice(lo, hi) for lo, hi in box)
    np.testing.assert_array_equal(wa, a[window])
    np.testing.assert_array_equal(wb, b[window])
    np.testing.assert_array_equal(gather(source({"x": a}), "x", a.shape, box), a[window])
    ok = np.isfinite(a) & np.isfinite(b)
    x, e = np.where(ok, a, 0) * 0.5, np.where(ok, b - a, 0) * 0.5
    expected = {"n": ok, "a": x, "e": e, "ee": e * e, "aa": x * x, "ae": x * e}
    for q, values in expected.items():
        assert sums.total[q] == pytest.approx(float(values.sum()), rel=1e-12)
        for axis in (0, 1, 2):
            other = tuple(k for k in range(4) if k != axis)
            np.testing.assert_allclose(sums.axes[axis][q], values.sum(axis=other), rtol=1e-12, atol=1e-300)
    assert sums.window_ee == pytest.approx(float((e * e)[window].sum()), rel=1e-12)


# --- what a window finds --------------------------------------------------------------------------


def test_offset_and_scale_are_exact_for_the_whole_stage():
    a = normal((4, 64, 128))
    offset = stage(a, a + np.float32(0.25))
    f = offset.diagnosis[0]
    assert f["kind"] == "offset" and f["value"] == pytest.approx(0.25, rel=1e-6) and "source" not in f
    assert offset.note.endswith(
        "diagnosed from whole-stage sums, streamed (a whole-stage model explains the error: no sample needed)"
    )  # exact and complete: no window is diagnosed
    scale = stage(a, a * np.float32(1.01)).diagnosis[0]
    assert scale["kind"] == "scale" and scale["factor"] == pytest.approx(1.01, rel=1e-6)
    assert stage(a, -a).diagnosis[0]["kind"] == "sign"


def test_the_findings_match_the_whole_diagnosis_where_they_are_exact():
    a = normal((4, 64, 128))
    b = a.copy()
    b[2] += np.float32(0.5)  # one channel of the cut axis 0: a band there, with its offset
    sampled, whole = stage(a, b).diagnosis, stage(a, b, budget=1 << 20).diagnosis
    assert (
        [(f["kind"], f["axis"], f["start"], f["stop"]) for f in sampled]
        == [(f["kind"], f["axis"], f["start"], f["stop"]) for f in whole]
        == [("localized", 0, 2, 3)]
    )
    assert sampled[0]["offset"] == pytest.approx(0.5, rel=1e-6) and "source" not in sampled[0]


def test_a_band_along_a_kept_axis_comes_from_the_window_in_stage_indices():
    a = normal((4, 64, 128))
    b = a.copy()
    b[1, 30:34, 100:110] += np.float32(0.5)
    result = stage(a, b)
    assert re.search(
        r"diagnosed from a sample \[1, \d+:\d+, :\] \(4096 of 32768 elements, 100% of the error\): "
        r"findings with \"source\": \"sample\" describe the sample, the others the whole stage",
        result.note,
    )
    found = result.diagnosis
    assert find(found, "localized", axis=0, start=1, stop=2).get("source") is None  # exact: cut axis
    assert find(found, "localized", axis=1, start=30, stop=34).get("source") is None  # exact: cut axis
    assert find(found, "localized", axis=2, start=100, stop=110)["source"] == "sample"  # kept whole


def test_per_channel_fits_along_a_cut_axis_are_exact():
    a = normal((8, 16, 64))
    bias = np.linspace(-1, 1, 8, dtype=np.float32)
    found = stage(a, a + bias[:, None, None], budget=2048).diagnosis
    f = find(found, "channel_offset", axis=0)
    assert f["values"] == pytest.approx(bias.tolist(), abs=1e-6) and "source" not in f


def test_padding_at_the_stage_border_is_kept_and_a_window_edge_is_no_padding():
    a = normal((64, 16, 8)) - 3
    b = a.copy()
    b[60:] = 0.0  # zero padding of the last 4 indices of axis 0, which the window cuts
    found = stage(a, b, budget=2048).diagnosis
    pad = find(found, "padding", axis=0, start=60, stop=64, value=0.0)
    assert pad["source"] == "sample"
    c = a.copy()
    c[:, :, 6:] = 0.0  # along axis 2, kept whole
    assert find(stage(a, c, budget=2048).diagnosis, "padding", axis=2, start=6, stop=8)["source"] == "sample"
    window_edge = stage(a, np.where(np.arange(64)[:, None, None] >= 40, 0.0, a).astype(np.float32), budget=1024)
    assert not [f for f in window_edge.diagnosis if f["kind"] == "padding" and f["stop"] != 64]


def test_shift_and_layout_come_from_the_window():
    a = normal((4, 64, 64))
    shifted = stage(a, np.roll(a, 3, axis=2), budget=2048).diagnosis[0]
    assert (shifted["kind"], shifted["axis"], shifted["lag"], shifted["source"]) == ("shift", 2, 3, "sample")
    layout = stage(a, np.ascontiguousarray(a.transpose(0, 2, 1)), budget=2048).diagnosis[0]
    assert (layout["kind"], layout["perm"]) == ("layout", [0, 2, 1])


def test_a_transposed_square_map_is_found_through_the_mirrored_window():
    a = normal((256, 256), 3)
    found = stage(a, np.ascontiguousarray(a.T)).diagnosis
    assert found[0]["kind"] == "layout" and found[0]["perm"] == [1, 0], found


def test_rounding_is_settled_by_the_statistics_without_reading():
    a = normal((4, 64, 128), dtype=np.float64)
    b = a.astype(np.float32)
    result = stage(a, b, tolerances=ToleranceTable(default=Tolerance(0.0, 0.0)))
    assert result.verdict.value == "LARGE"
    assert [f["kind"] for f in result.diagnosis] == ["precision", "dtype"] and "sample" not in result.note
    whole = diagnose(a, b, "float64", "float32")
    assert [f["kind"] for f in whole] == ["precision", "dtype"]
    assert result.diagnosis[0]["residual"] == pytest.approx(whole[0]["residual"], rel=1e-9)


def test_nonfinite_counts_are_the_whole_stages():
    a = normal((4, 64, 128))
    b = a * np.float32(1.5)
    b[0, 0, :3] = np.nan
    b[3, 63, 127] = np.inf
    found = stage(a, b).diagnosis
    assert found[0] == {"kind": "nonfinite", "side": "b", "count": 4}
    assert find(found, "scale")["factor"] == pytest.approx(1.5, rel=1e-6)


def test_an_error_born_in_a_large_stage_is_related_to_earlier_stages_in_the_same_window():
    rng = np.random.default_rng(5)
    state, velocity = rng.standard_normal((2, 8, 32, 32)).astype(np.float32)
    a = MemoryTrace({"state": state, "velocity": velocity, "next": state + 0.1 * velocity})
    b = MemoryTrace({"state": state, "velocity": velocity, "next": state + 0.2 * velocity})
    result = diff(a, b, diagnose_max_elements=2048)["next"]
    f = find(result.diagnosis, "proportional", stage="velocity")
    assert f["factor"] == pytest.approx(0.1, rel=1e-5) and f["source"] == "sample"


def test_aligned_stages_are_sampled_too():
    a = normal((4, 64, 128))
    b = np.ascontiguousarray((a + np.float32(0.5)).transpose(0, 2, 1))
    found = stage(a, b).diagnosis
    assert found[0] == {"kind": "layout", "perm": [0, 2, 1]}
    assert find(found, "offset")["value"] == pytest.approx(0.5, rel=1e-6)


def test_diagnosis_can_still_be_turned_off():
    a = normal((4, 64, 128))
    result = stage(a, a + 1, budget=0)
    assert result.diagnosis == [] and "not diagnosed" in result.note


def test_small_stages_are_diagnosed_whole_as_before():
    a = normal((20, 30), dtype=np.float64)
    b = a.copy()
    b[:, 25:] = 0.0
    assert stage(a, b, budget=600).diagnosis == diagnose(a, b)
    assert "sample" not in stage(a, b, budget=600).note


def test_sketch_traces_are_dispatched_by_the_engine_itself():
    import numtrace.compare as compare
    from numtrace.compare import engine
    from numtrace.compare.sketches.format import SKETCH_KEY, STAGE_PREFIX, encode_info, make_sketch

    x = np.linspace(-1.0, 1.0, 40).reshape(2, 4, 5)
    means, info = make_sketch(x)
    sketched = MemoryTrace({"x": means}, metadata={SKETCH_KEY: "1", STAGE_PREFIX + "x": encode_info(info)})
    assert compare.diff is engine.diff
    result = engine.diff(sketched, MemoryTrace({"x": x + 1.0})).stages[0]
    assert result.verdict.value == "LARGE" and "compared by sketch" in result.note


def test_complex_stages_are_sampled():
    rng = np.random.default_rng(9)
    a = (rng.standard_normal((8, 32, 32)) + 1j * rng.standard_normal((8, 32, 32))).astype(np.complex64)
    f = stage(a, a * np.complex64(1.1), budget=2048).diagnosis[0]
    assert f["kind"] == "scale" and f["factor"] == pytest.approx(1.1, rel=1e-6)
    assert math.isfinite(f["residual"])
