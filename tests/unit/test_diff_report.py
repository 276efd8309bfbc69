import json
import math

import numpy as np
import pytest

from numtrace import dtypes
from numtrace.compare import (
    DiffReport,
    StageResult,
    Tolerance,
    ToleranceTable,
    Verdict,
    diff,
)
from numtrace.errors import UsageError
from numtrace.trace import MemoryTrace


def python_side(seed=0):
    """Use case 2: the Python reference, mel in [-10.38, 0.0]."""
    rng = np.random.default_rng(seed)
    mel = rng.uniform(-10.38, 0.0, (1, 80, 312)).astype(np.float32)
    mel.flat[0], mel.flat[1] = -10.38, 0.0
    return {
        "encoder.out": rng.standard_normal((1, 20, 64)).astype(np.float32),
        "ode.step.0": rng.standard_normal((1, 80, 312)).astype(np.float32),
        "decoder.final_proj": mel,
        "tokens": np.arange(12, dtype=np.int64),
    }


def make(stages, label, drop=(), **changes):
    stages = {k: v for k, v in stages.items() if k not in drop}
    stages.update(changes)
    return MemoryTrace(stages, label=label)


@pytest.fixture
def ref():
    return python_side()


def test_mel_offset_use_case(ref):
    a = make(ref, "py.safetensors")
    b = make(ref, "swift.safetensors", **{"decoder.final_proj": ref["decoder.final_proj"] - np.float32(1.46)})
    report = diff(a, b)
    assert isinstance(report, DiffReport)
    assert [s.verdict for s in report.stages] == [Verdict.MATCH, Verdict.MATCH, Verdict.LARGE, Verdict.MATCH]
    assert report.first_divergence == "decoder.final_proj"
    stage = report["decoder.final_proj"]
    assert isinstance(stage, StageResult) and stage.only_in is None and stage.name_b is None
    assert stage.diff.abs_mean == pytest.approx(1.46, abs=1e-5)
    assert stage.a.max == 0.0 and stage.b.max == pytest.approx(-1.46, abs=1e-6)
    assert stage.tolerance == Tolerance(math.sqrt(np.finfo(np.float32).eps))
    # diagnosed (issue 3): a constant offset that explains the whole error
    assert [f["kind"] for f in stage.diagnosis] == ["offset"]
    assert stage.diagnosis[0]["value"] == pytest.approx(-1.46, abs=1e-5)
    assert stage.diagnosis[0]["explained"] > 0.999
    assert report.root_cause == "decoder.final_proj"
    assert stage.note.startswith(f"{80 * 312} of {80 * 312} values outside tolerance; worst ")
    assert report["tokens"].tolerance == Tolerance(0.0, 0.0)
    assert report.counts == {"MATCH": 3, "SMALL": 0, "LARGE": 1, "MISSING": 0}
    assert not report and report.failed() and report.failed("small")
    assert not report.failed("never")


def test_to_dict_follows_spec_section_3(ref):
    a = make(ref, "a.st")
    b = make(
        ref,
        "b.st",
        drop=("tokens",),
        extra=np.ones(3),
        **{"decoder.final_proj": ref["decoder.final_proj"] - np.float32(1.46)},
    )
    out = diff(a, b).to_dict()
    text = json.dumps(out, allow_nan=False)  # JSON-safe: no NaN/inf anywhere
    assert json.loads(text) == out
    assert list(out) == [
        "a",
        "b",
        "first_divergence",
        "root_cause",
        "largest_jump",
        "summary",
        "compared",
        "status",
        "incomplete",
        "ignored",
        "stages",
    ]
    assert out["root_cause"] == "decoder.final_proj" and out["ignored"] == {"a": [], "b": []}
    assert out["largest_jump"] is None and out["compared"] == 3 and out["incomplete"] == []
    assert (out["a"], out["b"], out["first_divergence"]) == ("a.st", "b.st", "decoder.final_proj")
    assert out["summary"] == {"MATCH": 2, "SMALL": 0, "LARGE": 1, "MISSING": 2}
    names = [(s["name"], s["verdict"]) for s in out["stages"]]
    assert names == [
        ("encoder.out", "MATCH"),
        ("ode.step.0", "MATCH"),
        ("decoder.final_proj", "LARGE"),
        ("tokens", "MISSING"),
        ("extra", "MISSING"),
    ]
    large = out["stages"][2]
    assert "name_b" not in large and "only_in" not in large
    assert set(large) == {
        "name",
        "verdict",
        "a",
        "b",
        "diff",
        "diagnosis",
        "note",
        "tolerance",
        "pairing",
        "rel_err",
        "growth",
        "born_here",
    }
    assert large["pairing"] == "exact" and large["rel_err"] > 0.1 and large["growth"] > 1e3
    assert large["a"] == {
        "shape": [1, 80, 312],
        "dtype": "float32",
        "min": pytest.approx(-10.38),
        "max": 0.0,
        "mean": pytest.approx(float(ref["decoder.final_proj"].astype(np.float64).mean())),
        "std": pytest.approx(float(ref["decoder.final_proj"].astype(np.float64).std())),
        "abs_max": pytest.approx(10.38),
        "count": 80 * 312,
        "nan": 0,
        "posinf": 0,
        "neginf": 0,
    }
    assert type(large["a"]["count"]) is int and type(large["a"]["mean"]) is float
    d = large["diff"]
    assert d["abs_max"] == pytest.approx(1.46, abs=1e-5) and d["abs_mean"] == pytest.approx(1.46, abs=1e-5)
    for key in (
        "rms",
        "rel_rms",
        "rel_max",
        "cosine",
        "snr_db",
        "mismatched",
        "total",
        "mismatch_fraction",
        "max_ratio",
        "worst_index",
        "worst_a",
        "worst_b",
        "rtol",
        "atol",
        "nonfinite_a",
        "nonfinite_b",
    ):
        assert key in d
    assert d["mismatch_fraction"] == 1.0 and isinstance(d["worst_index"], list)
    assert large["tolerance"] == {"rtol": pytest.approx(3.4527e-4, rel=1e-4), "atol": None}
    assert [f["kind"] for f in large["diagnosis"]] == ["offset"] and large["note"]
    tokens, extra = out["stages"][3], out["stages"][4]
    assert tokens["only_in"] == "a" and tokens["b"] is None and tokens["diff"] is None and tokens["tolerance"] is None
    assert tokens["a"]["dtype"] == "int64" and tokens["note"] == "only in the reference"
    assert extra["only_in"] == "b" and extra["a"] is None and extra["b"]["shape"] == [3]
    assert out["stages"][0]["note"] == ""


def test_identical_traces_all_match(ref):
    report = diff(make(ref, "a"), make(ref, "b"))
    assert report.first_divergence is None and bool(report)
    assert report.counts == {"MATCH": 4, "SMALL": 0, "LARGE": 0, "MISSING": 0}
    assert report.to_dict()["first_divergence"] is None
    assert all(s["diff"]["snr_db"] is None for s in report.to_dict()["stages"])


def test_failed_modes():
    a = MemoryTrace({"s": np.zeros(4), "m": np.zeros(1), "l": np.zeros(2)})
    small = MemoryTrace({"s": np.array([0, 0, 0, 5e-8]), "l": np.ones(2), "other": np.ones(1)})
    report = diff(a, small, tolerances=ToleranceTable(default=Tolerance(0.0, 1e-8)))
    assert [s.verdict.value for s in report.stages] == ["SMALL", "MISSING", "LARGE", "MISSING"]
    assert report.failed("large") and report.failed("small") and report.failed("missing")
    assert not report.failed("never")
    only_small = diff(a, small, only=["s"], tolerances=ToleranceTable(default=Tolerance(0.0, 1e-8)))
    assert not only_small.failed() and only_small.failed("small") and not only_small.failed("missing")
    assert bool(only_small) and only_small.first_divergence == "s"
    only_missing = diff(a, small, only=["m"])  # nothing compared: never a pass, unless asked
    assert only_missing.incomplete == ["nothing was compared: the two traces have no stage in common"]
    assert only_missing.failed() and only_missing.failed("missing") and only_missing.first_divergence is None
    assert not only_missing.failed(allow_incomplete=True) and not only_missing.failed("never")
    assert only_missing.failed("missing", allow_incomplete=True)
    with pytest.raises(UsageError, match="'sometimes'"):
        report.failed("sometimes")


def test_shapes_that_differ_by_one_axis_compare_the_overlap():
    # issue 3 changed this: a length mismatch compares the overlap (at least SMALL),
    # singleton axes are squeezed; only unalignable shapes stay LARGE without a diff.
    a = MemoryTrace({"mel": np.zeros((1, 80, 312), np.float32)})
    b = MemoryTrace({"mel": np.zeros((1, 80, 313), np.float32)})
    stage = diff(a, b).stages[0]
    assert stage.verdict is Verdict.SMALL and stage.diff is not None and stage.diff.total == 80 * 312
    assert stage.diagnosis == [{"kind": "shape", "axis": 2, "a_len": 312, "b_len": 313, "a_start": 0, "b_start": 0}]
    assert "overlap matches" in stage.note
    assert stage.a.shape == (1, 80, 312) and stage.b.count == 80 * 313
    assert diff(a, b).first_divergence == "mel"
    # two axes differ: not alignable, LARGE with a note; ranks that differ by singleton axes are squeezed
    c = MemoryTrace({"mel": np.zeros((1, 81, 313), np.float32)})
    d = MemoryTrace({"mel": (np.zeros((80, 312)), "bfloat16")})
    unaligned = diff(a, c).stages[0]
    assert unaligned.verdict is Verdict.LARGE and unaligned.diff is None and unaligned.diagnosis == []
    assert unaligned.note == "shapes differ: reference (1, 80, 312), candidate (1, 81, 313)"
    other = diff(a, d).stages[0]
    assert other.verdict is Verdict.MATCH and other.diagnosis == [{"kind": "dtype", "a": "float32", "b": "bfloat16"}]
    assert "singleton axes squeezed" in other.note
    json.dumps(diff(a, b).to_dict(), allow_nan=False)


def test_bfloat16_candidate_of_a_float32_reference_matches_with_a_dtype_finding():
    x = (np.random.default_rng(4).standard_normal((8, 50)) * 4).astype(np.float32)
    b16 = dtypes.decode(dtypes.encode(x, "bfloat16"), "bfloat16").reshape(x.shape)
    report = diff(MemoryTrace({"h": x}), MemoryTrace({"h": (b16, "bfloat16")}))
    stage = report.stages[0]
    assert stage.verdict is Verdict.MATCH and stage.diff.abs_max > 0
    assert stage.diagnosis == [{"kind": "dtype", "a": "float32", "b": "bfloat16"}]
    assert stage.tolerance.rtol == pytest.approx(0.0884, rel=1e-3)


def test_nan_cases():
    nan_both = diff(MemoryTrace({"x": np.array([np.nan, 1.0])}), MemoryTrace({"x": np.array([np.nan, 1.0])}))
    assert nan_both.stages[0].verdict is Verdict.MATCH and nan_both.stages[0].diagnosis == []
    one_side = diff(MemoryTrace({"x": np.array([np.nan, 1.0])}), MemoryTrace({"x": np.array([1.0, 1.0])}))
    stage = one_side.stages[0]
    assert stage.verdict is Verdict.LARGE
    assert stage.diagnosis == [{"kind": "nonfinite", "side": "a", "count": 1}]
    assert stage.diff.max_ratio == math.inf and "non-finite" in stage.note
    out = one_side.to_dict()["stages"][0]
    assert out["diff"]["max_ratio"] is None and out["diff"]["worst_a"] is None and out["a"]["nan"] == 1
    json.dumps(one_side.to_dict(), allow_nan=False)
    infs = diff(
        MemoryTrace({"x": np.array([np.inf, -np.inf, 2.0])}), MemoryTrace({"x": np.array([-np.inf, -np.inf, np.inf])})
    )
    assert infs.stages[0].diagnosis == [
        {"kind": "nonfinite", "side": "a", "count": 1},
        {"kind": "nonfinite", "side": "b", "count": 2},
    ]


def test_integer_stages_are_exact_even_under_a_blanket_tolerance():
    a = MemoryTrace({"ids": np.array([5, 17, 900]), "x": np.ones(3)})
    b = MemoryTrace({"ids": np.array([5, 17, 901]), "x": np.ones(3) * 1.0005})
    report = diff(a, b, tolerances=ToleranceTable.from_options(["1e-3"]))
    assert [s.verdict.value for s in report.stages] == ["LARGE", "MATCH"]
    report = diff(a, b, tolerances=ToleranceTable.from_options(["1e-3", "ids=atol=1"]))
    assert [s.verdict.value for s in report.stages] == ["MATCH", "MATCH"]


def test_tolerance_table_globs_apply(ref):
    a = make(ref, "a")
    b = make(ref, "b", **{"decoder.final_proj": ref["decoder.final_proj"] - np.float32(1.46)})
    report = diff(a, b, tolerances=ToleranceTable.from_options(["decoder.*=atol=2"]))
    assert report.counts["MATCH"] == 4
    assert report["decoder.final_proj"].tolerance == Tolerance(0.0, 2.0)
    assert report["decoder.final_proj"].diff.atol == 2.0


def test_chunked_diff_equals_unchunked(ref):
    a = make(ref, "a")
    noisy = ref["ode.step.0"] + np.float32(3e-4)
    b = make(ref, "b", **{"ode.step.0": noisy})
    whole, chunked = diff(a, b), diff(a, b, chunk_elements=7)
    assert [s.verdict for s in whole.stages] == [s.verdict for s in chunked.stages]
    for sw, sc in zip(whole.stages, chunked.stages):
        assert sc.diff.mismatched == sw.diff.mismatched and sc.diff.max_ratio == sw.diff.max_ratio
        assert sc.diff.worst_index == sw.diff.worst_index
        assert sc.diff.abs_mean == pytest.approx(sw.diff.abs_mean, rel=1e-12)
        assert sc.a.std == pytest.approx(sw.a.std, rel=1e-12)


def test_candidate_only_stage_result_fields():
    report = diff(MemoryTrace({}), MemoryTrace({"y": np.ones(2)}))
    stage = report.stages[0]
    assert (stage.name, stage.name_b, stage.verdict, stage.only_in) == ("y", None, Verdict.MISSING, "b")
    assert stage.a is None and stage.b.mean == 1.0 and stage.diff is None
    assert report.first_divergence is None
