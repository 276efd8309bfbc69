"""The planted-bug suite: each classic porting bug is localized to its stage, with its finding.

``porting_pipeline.py`` holds one model written twice (a NumPy reference and a
port with other names and another style); each bug switches one mistake on in
the port. For each: the first divergence, the root cause and the finding that
names the kind of error (with its parameters where they are known).
"""

import json

import numpy as np
import pytest
from porting_pipeline import BUGS, DT, N_FRAMES, traces

from numtrace.compare import Verdict, diff
from numtrace.report.table import summary_line
from numtrace.report.words import describe_findings


def finding(stage, kind):
    for f in stage.diagnosis:
        if f["kind"] == kind:
            return f
    raise AssertionError(f"{stage.name}: no {kind} finding in {stage.diagnosis}")


def lead(stage):
    """The stage's first finding other than dtype."""
    fitted = [f for f in stage.diagnosis if f["kind"] != "dtype"]
    assert fitted, f"{stage.name}: no finding"
    return fitted[0]


@pytest.fixture(scope="module")
def clean():
    return diff(*traces())


def test_the_port_without_bugs_matches_everywhere_with_names_aligned(clean):
    assert clean.counts == {"MATCH": 24, "SMALL": 0, "LARGE": 0, "MISSING": 0}
    assert clean.first_divergence is None and clean.root_cause is None
    pairing = {s.name: (s.name_b, s.pairing) for s in clean.stages}
    assert pairing["decoder.final_proj"] == ("decoder.finalProj", "normalized")
    assert pairing["encoder.0.in_proj.weight"] == ("encoder.layers.0.inProj.weight", "normalized")
    assert pairing["ode.state@3"] == (None, "exact")  # name_b only when it differs


# bug -> (first divergence, root cause, kind of the root cause's first finding, check of its fields)
EXPECTED = {
    "pad_zero": (
        "frontend.standardized",
        "frontend.standardized",
        "padding",
        lambda f: (f["axis"], f["start"], f["stop"], f["value"]) == (1, 161, N_FRAMES, 0.0) and f["value_a"] < -20,
    ),
    "extra_frame": (
        "frontend.frames",
        "frontend.standardized",
        "localized",
        lambda f: (f["axis"], f["start"], f["stop"]) == (1, 161, 162),
    ),
    "frame_shift": ("frontend.frames", "frontend.frames", "shift", lambda f: (f["axis"], f["lag"]) == (0, -1)),
    "wrong_window": ("frontend.windowed", "frontend.windowed", "channel_scale", lambda f: f["axis"] == 1),
    "float16_power": ("frontend.power", "frontend.power", "nonfinite", lambda f: f["side"] == "b" and f["count"] > 0),
    "wrong_filter_band": (
        "frontend.mel",
        "frontend.mel",
        "localized",
        lambda f: (f["axis"], f["start"], f["stop"]) == (0, 40, 44),
    ),
    "log_not_log10": ("frontend.log", "frontend.log", "scale", lambda f: f["factor"] == pytest.approx(np.log(10))),
    "db_reference": ("frontend.log", "frontend.log", "offset", lambda f: f["value"] < -10),
    "transposed_weight": (
        "encoder.0.in_proj.weight",
        "encoder.0.in_proj.weight",
        "layout",
        lambda f: f["perm"] == [1, 0],
    ),
    "dropped_bias": ("encoder.0.in_proj", "encoder.0.in_proj", "channel_offset", lambda f: f["axis"] == 1),
    "layernorm_eps": ("encoder.0.norm", "encoder.0.norm", "channel_scale", lambda f: f["axis"] == 0 and f["max"] < 1),
    "norm_gain_init": ("encoder.0.norm", "encoder.0.norm", "scale", lambda f: f["factor"] == pytest.approx(0.01)),
    "gelu_tanh": ("encoder.0.act", "encoder.0.act", "elementwise", lambda f: f["of"] == "encoder.0.norm"),
    "dropped_residual": (
        "encoder.0.out",
        "encoder.0.out",
        "proportional",
        lambda f: f["stage"] == "encoder.0.in_proj" and f["factor"] == pytest.approx(-1.0),
    ),
    "velocity_sign": ("ode.velocity", "ode.velocity", "sign", lambda f: True),
    "doubled_step": (
        "ode.state@1",
        "ode.state@1",
        "proportional",
        lambda f: f["stage"] == "ode.velocity@1" and f["factor"] == pytest.approx(DT),
    ),
}


def test_every_bug_has_an_expectation():
    assert set(EXPECTED) | {"mel_layout"} == set(BUGS)


@pytest.mark.parametrize("bug", sorted(EXPECTED))
def test_bug_is_localized_to_its_stage_with_its_finding(bug):
    first, root, kind, check = EXPECTED[bug]
    report = diff(*traces([bug]))
    assert (report.first_divergence, report.root_cause) == (first, root), summary_line(report)
    stage = report[root]
    f = lead(stage)
    assert f["kind"] == kind, describe_findings(stage.diagnosis)
    assert check(f), f
    # every stage before the first divergence matches; the summary names the root cause
    names = [s.name for s in report.stages]
    assert all(s.verdict is Verdict.MATCH for s in report.stages[: names.index(first)])
    assert f"Root cause: {root}, where the error is born" in summary_line(report)
    json.dumps(report.to_dict(), allow_nan=False)


def test_the_extra_frame_is_a_shape_finding_at_the_first_divergence():
    report = diff(*traces(["extra_frame"]))
    frames = report["frontend.frames"]
    assert frames.verdict is Verdict.SMALL
    assert lead(frames) == {"kind": "shape", "axis": 0, "a_len": 161, "b_len": 162, "a_start": 0, "b_start": 0}
    assert report["frontend.mel"].diagnosis[0]["kind"] == "shape"  # (64, 161) vs (64, 162): frames are axis 1


def test_a_recorded_layout_difference_is_not_a_bug():
    report = diff(*traces(["mel_layout"]))
    mel = report["frontend.mel"]
    assert mel.verdict is Verdict.MATCH and mel.diagnosis == [{"kind": "layout", "perm": [1, 0]}]
    assert report.first_divergence is None


def test_two_bugs_at_once_give_two_origins():
    report = diff(*traces(["wrong_filter_band", "dropped_bias"]))
    assert report.first_divergence == report.root_cause == "frontend.mel"
    assert lead(report["frontend.mel"])["kind"] == "localized"
