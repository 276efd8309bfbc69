"""Diagnosis details: the richer fits, ordering and pruning, root cause, words, JSON."""

import json
import math

import numpy as np
import pytest

from numtrace.compare import Verdict, diff
from numtrace.compare.diagnosis.diagnose import diagnose
from numtrace.compare.diagnosis.profile import axis_profiles, worst_locations
from numtrace.compare.rootcause import JUMP_RATIO
from numtrace.report.table import summary_line
from numtrace.report.words import describe_finding, describe_findings
from numtrace.trace import MemoryTrace

RNG = np.random.default_rng(0)
X = RNG.standard_normal((32, 48))


def kinds(findings):
    return [f["kind"] for f in findings]


def test_use_case_2_swift_mel_offset_and_encoder_suppressed():
    mel = RNG.uniform(-10.38, 0.0, (1, 80, 312))
    f = diagnose(mel, mel - 1.46)[0]
    assert (f["kind"], round(f["value"], 6), f["explained"] > 0.9999) == ("offset", -1.46, True)
    assert describe_finding(f) == "candidate = reference - 1.46 (constant offset, explains 100%)"
    g = diagnose(X, X * 0.01)[0]
    assert (g["kind"], g["factor"], g["db"]) == ("scale", pytest.approx(0.01), pytest.approx(-40.0))


def test_use_case_1_zero_db_padding_and_band():
    db = np.full((256, 312), -77.09)
    db[:243] = RNG.uniform(-60, -5, (243, 312))
    fastai = db.copy()
    fastai[:, 251:] = 0.0  # padded with full scale
    findings = diagnose(db, fastai)
    pad = findings[0]
    assert {k: pad[k] for k in ("kind", "axis", "start", "stop", "value")} == {
        "kind": "padding",
        "axis": 1,
        "start": 251,
        "stop": 312,
        "value": 0.0,
    }
    assert pad["value_a"] is None
    words = describe_findings(findings, (256, 312))
    assert words.startswith("0.0 padding in indices 251-311 of axis 1 (61 of 312)")
    assert "error in indices 251-311" not in words  # the same band as the padding: said once
    wrong_bins = db.copy()
    wrong_bins[100:113] += 3.0
    band = diagnose(db, wrong_bins)[0]
    assert (band["kind"], band["axis"], band["start"], band["stop"]) == ("localized", 0, 100, 113)
    assert band["offset"] == pytest.approx(3.0)
    assert "error in indices 100-112 of axis 0 (13 of 256)" in describe_finding(band, (256, 312))
    # the silent top bins (constant -77.09 in the reference) held another constant: that reads as padding
    top = db.copy()
    top[243:256] = -74.0
    pad = diagnose(db, top)[0]
    assert (pad["kind"], pad["start"], pad["stop"], pad["value"], pad["value_a"]) == (
        "padding",
        243,
        256,
        -74.0,
        -77.09,
    )


def test_affine_channel_and_elementwise_fits():
    affine = diagnose(X, 0.434 * X + 2.0)[0]
    assert (
        affine["kind"] == "affine"
        and affine["factor"] == pytest.approx(0.434)
        and affine["value"] == pytest.approx(2.0)
    )
    bias = RNG.standard_normal(48)
    channel = diagnose(X + bias, X)[0]
    assert (channel["kind"], channel["axis"]) == ("channel_offset", 1)
    assert channel["min"] == pytest.approx(-bias.max()) and channel["max"] == pytest.approx(-bias.min())
    gains = 1 + 0.2 * RNG.standard_normal(32)
    per_row = diagnose(X, X * gains[:, None])[0]
    assert (per_row["kind"], per_row["axis"]) == ("channel_scale", 0)
    x = RNG.standard_normal(4000) * 2
    a = np.tanh(x)
    b = np.tanh(x) + 0.01 * np.sin(3 * a)  # another formula of the same value
    f = diagnose(a, b)[0]
    assert f["kind"] == "elementwise" and f["explained"] > 0.9


def test_constant_candidate():
    assert kinds(diagnose(X, np.zeros_like(X))) == ["constant"]


def test_findings_are_ordered_and_alternatives_pruned():
    # log vs log10: a scale of ln(10) also "explains" much of the error as an offset
    p = RNG.uniform(1e-3, 10, (20, 30))
    findings = diagnose(10 * np.log10(p), 10 * np.log(p))
    assert kinds(findings) == ["scale"] and findings[0]["factor"] == pytest.approx(math.log(10))
    # padding is also a per-index scale of 0: only the padding (and its band) is said
    b = X.copy()
    b[:, 40:] = 0.0
    assert kinds(diagnose(X, b)) == ["padding", "localized"]
    # two errors in one stage: both named, the larger first
    two = X.copy()
    two[:, 40:] = 0.0
    two[3:5, :10] += 5.0
    findings = diagnose(X, two)
    assert kinds(findings) == ["localized", "localized", "padding", "localized"]
    assert [(f["axis"], f["start"], f["stop"]) for f in findings] == [(0, 3, 5), (1, 0, 10), (1, 40, 48), (1, 40, 48)]
    assert findings[2]["explained"] == pytest.approx(1 - findings[1]["explained"])


def test_large_and_tiny_magnitudes_are_fitted_in_scaled_units():
    for magnitude in (1e-200, 1e200):
        a = X * magnitude
        f = diagnose(a, a + 0.5 * magnitude)[0]
        assert f["kind"] == "offset" and f["value"] == pytest.approx(0.5 * magnitude)


def test_complex_and_integer_stages():
    z = X[:4, :6] + 1j * X[4:8, :6]
    assert kinds(diagnose(z, z * 2.0)) == ["scale"]
    ids = np.arange(12)
    assert kinds(diagnose(ids, ids + 1, "int64", "int64")) == ["offset"]


def test_cross_stage_proportional_finding_for_a_dropped_residual():
    h = RNG.standard_normal((50, 16)) * 5
    act = np.tanh(RNG.standard_normal((50, 16)))
    a = MemoryTrace({"h": h, "act": act, "out": act + h})
    b = MemoryTrace({"h": h, "act": act, "out": act})
    report = diff(a, b)
    f = report["out"].diagnosis[0]
    assert (f["kind"], f["stage"], f["factor"]) == ("proportional", "h", pytest.approx(-1.0))
    assert report.root_cause == "out"


def test_root_cause_is_where_the_error_is_born_not_where_it_is_largest():
    x = RNG.standard_normal((8, 8))
    a = {"w": x, "enc": x, "norm": x * 2, "out": x * 40}
    b = {"w": x, "enc": x, "norm": x * 2 * 0.01, "out": x * 40 * 0.01 + 3.0}
    report = diff(MemoryTrace(a), MemoryTrace(b))
    assert report.first_divergence == "norm" and report.root_cause == "norm"
    norm, out = report["norm"], report["out"]
    assert norm.jump >= JUMP_RATIO and out.jump < JUMP_RATIO
    assert report["w"].growth is None and report["enc"].growth == pytest.approx(1.0)
    out_json = report.to_dict()
    assert out_json["root_cause"] == "norm" and out_json["stages"][2]["growth"] > 1e6


def test_a_small_resampler_difference_is_first_divergence_but_not_the_root_cause():
    x = RNG.standard_normal((64, 100))
    a = {"resampled": x, "mel": x * 2, "standardized": x * 2}
    padded = x * 2
    padded = padded.copy()
    padded[:, 80:] = 0.0
    b = {"resampled": x * (1 + 3e-8), "mel": x * 2 * (1 + 3e-8), "standardized": padded}
    report = diff(MemoryTrace(a), MemoryTrace(b))
    assert report["resampled"].verdict is Verdict.SMALL
    assert report.first_divergence == "resampled" and report.root_cause == "standardized"
    line = summary_line(report)
    assert "First divergence: resampled (SMALL" in line
    assert "Root cause: standardized, where the error is born" in line and "0.0 padding in indices 80-99" in line


def test_nan_born_in_a_stage_is_its_root_cause():
    x = RNG.standard_normal(10)
    y = x.copy()
    y[3] = np.nan
    report = diff(MemoryTrace({"a": x, "b": x, "c": x}), MemoryTrace({"a": x, "b": y, "c": y}))
    assert report.root_cause == "b" and report["b"].diagnosis == [{"kind": "nonfinite", "side": "b", "count": 1}]
    assert report.to_dict()["stages"][1]["rel_err"] is None  # infinite: null in JSON


def test_profiles_and_worst_locations():
    a = np.zeros((4, 5))
    b = a.copy()
    b[2, 1:3] = [1.0, -3.0]
    rows, cols = axis_profiles(a, b)
    assert rows["mean_diff"][2] == pytest.approx(-0.4) and cols["max_abs"] == [0.0, 1.0, 3.0, 0.0, 0.0]
    assert [w["index"] for w in worst_locations(a, b, 5)] == [[2, 2], [2, 1]]
    c = b.copy()
    c[0, 0] = np.nan
    assert worst_locations(a, c, 1)[0]["index"] == [0, 0]


def test_json_is_safe_with_every_kind():
    a = {"mel": X, "pad": X, "shape": X, "layout": X[:, :5], "nan": X}
    padded = X.copy()
    padded[:, 40:] = 0.0
    nan = X.copy()
    nan[0, 0] = np.inf
    b = {"mel": X - 1.5, "pad": padded, "shape": X[:, :47], "layout": np.ascontiguousarray(X[:, :5].T), "nan": nan}
    out = diff(MemoryTrace(a), MemoryTrace(b)).to_dict()
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert [s["diagnosis"][0]["kind"] for s in out["stages"]] == ["offset", "padding", "shape", "layout", "nonfinite"]
