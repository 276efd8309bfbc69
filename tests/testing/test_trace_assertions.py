"""numtrace.testing assertions: verdicts, tolerance forms, and failure messages verbatim.

The findings line is the diagnosis engine's, in the words of report.words: the
expected messages take it from the report, so these tests pin the layout and
the figures of numtrace.testing, not the wording of another module.
"""

import inspect

import numpy as np
import pytest

import numtrace
from numtrace import compare
from numtrace.compare import Tolerance, ToleranceTable
from numtrace.errors import ToleranceError
from numtrace.report.words import describe_findings
from numtrace.testing import TraceMismatch, assert_close_diagnosed, assert_traces_close, tolerance_table


def failure(function, *args, **kwargs) -> TraceMismatch:
    with pytest.raises(TraceMismatch) as info:
        function(*args, **kwargs)
    assert isinstance(info.value, AssertionError)
    return info.value


def words(err: TraceMismatch, name: str) -> str:
    return describe_findings(err.report[name].diagnosis)


def test_two_arrays_with_an_offset_message_verbatim():
    a = np.array([1.0, 2.0, 4.0, 8.0])
    err = failure(assert_close_diagnosed, a, a + 0.5, {"atol": 0.1})
    assert err.report.stages[0].diagnosis[0]["kind"] == "offset"
    assert (
        str(err)
        == f"""\
Arrays differ: SMALL, 4 / 4 values (100%) out of tolerance
  shape (4,), float64; tolerance rtol=0, atol=0.1; worst 5x its tolerance
  max |Δ| 0.5, mean |Δ| 0.5, relative rms 0.1085
  reference [min, max] mean±std: [1, 8] 3.75±2.681
  candidate [min, max] mean±std: [1.5, 8.5] 4.25±2.681
  findings: {words(err, "array")}
  worst elements (index: reference, candidate, |Δ|):
    (0,): 1, 1.5, 0.5
    (1,): 2, 2.5, 0.5
    (2,): 4, 4.5, 0.5
    (3,): 8, 8.5, 0.5"""
    )


def test_padding_with_zero_db_message_verbatim():
    # USE-CASES §1 in miniature: the candidate pads with 0.0 dB where the reference pads with silence
    mel = np.array([[-60.0, -50.0, -77.0, -77.0], [-40.0, -30.0, -77.0, -77.0]])
    bad = mel.copy()
    bad[:, 2:] = 0.0
    reference = {"audio": np.arange(5.0), "mel": mel, "features": mel.T.copy()}
    candidate = {"audio": np.arange(5.0), "mel": bad, "features": bad.T.copy()}
    err = failure(assert_traces_close, reference, candidate, tolerance={"default": 1e-3, "mel": {"atol": 0.01}})
    assert [f["kind"] for f in err.report["mel"].diagnosis][:1] == ["padding"]
    assert (
        str(err)
        == f"""\
Traces differ: 2 / 3 stages (66.7%) fail (a stage fails when it is SMALL, LARGE or MISSING)
  reference: <reference>
  candidate: <candidate>

First divergence: mel (LARGE)
  shape (2, 4), float64; tolerance rtol=0, atol=0.01
  4 / 8 values (50%) out of tolerance, worst 7700x its tolerance
  max |Δ| 77, mean |Δ| 38.5, relative rms 0.8567
  reference [min, max] mean±std: [-77, -30] -61±17.85
  candidate [min, max] mean±std: [-60, 0] -22.5±23.85
  findings: {words(err, "mel")}
  worst elements (index: reference, candidate, |Δ|):
    (0, 2): -77, 0, 77
    (0, 3): -77, 0, 77
    (1, 2): -77, 0, 77
    (1, 3): -77, 0, 77

Stages (reference order):
  1 MATCH   audio     max |Δ| 0
  2 LARGE   mel       max |Δ| 77, 50% out of tolerance; {words(err, "mel")}  <- first divergence
  3 LARGE   features  max |Δ| 77, 50% out of tolerance; {words(err, "features")}"""
    )


def test_one_frame_too_many_passes_on_large_and_fails_on_any_verbatim():
    # 3 vs 4 frames whose overlap agrees: the engine says SMALL, so only a strict rule fails it
    frames = np.arange(12.0).reshape(3, 4)
    longer = np.vstack([frames, np.zeros((1, 4))])
    report = assert_traces_close({"frames": frames}, {"frames": longer}, fail_on="large")
    assert report["frames"].verdict.value == "SMALL"
    err = failure(assert_traces_close, {"frames": frames}, {"frames": longer})  # fail_on="any" by default
    assert (
        str(err)
        == f"""\
Traces differ: 1 / 1 stages (100%) fail (a stage fails when it is SMALL, LARGE or MISSING)
  reference: <reference>
  candidate: <candidate>

First divergence: frames (SMALL)
  shape (3, 4) vs (4, 4), float64; tolerance rtol=1.49e-08, atol=1.639e-07
  0 / 12 overlapping values (0%) out of tolerance, worst 0x its tolerance
  max |Δ| 0, mean |Δ| 0, relative rms 0
  {err.report["frames"].note}
  reference [min, max] mean±std: [0, 11] 5.5±3.452
  candidate [min, max] mean±std: [0, 11] 4.125±3.822
  findings: {words(err, "frames")}

Stages (reference order):
  1 SMALL   frames  max |Δ| 0, 0% out of tolerance; {words(err, "frames")}  <- first divergence"""
    )


def test_a_missing_stage_is_the_first_failing_stage_verbatim():
    err = failure(assert_traces_close, {"enc": np.ones(2), "dec": np.ones(2)}, {"enc": np.ones(2)}, fail_on="missing")
    assert (
        str(err)
        == """\
Traces differ: 1 / 2 stages (50%) fail (a stage fails when it is LARGE or MISSING)
  reference: <reference>
  candidate: <candidate>

First failing stage: dec (MISSING)
  shape (2,)
  only in the reference
  reference [min, max] mean±std: [1, 1] 1±0

Stages (reference order):
  1 MATCH   enc  max |Δ| 0
  2 MISSING dec  only in the reference"""
    )


def test_a_non_finite_mismatch_is_named():
    err = failure(assert_close_diagnosed, np.array([1.0, 2.0]), np.array([1.0, np.nan]))
    assert "worst a non-finite mismatch" in str(err)
    assert "    (1,): 2, nan, nan" in str(err)


def test_long_traces_list_only_the_stages_that_do_not_match():
    reference = {f"layer.{i}": np.ones(3) for i in range(45)}
    candidate = {**reference, "layer.30": np.ones(3) * 2}
    err = failure(assert_traces_close, reference, candidate)
    tail = str(err).split("Stages (reference order):\n")[1]
    assert tail.splitlines()[0].startswith("  31 LARGE   layer.30  max |Δ| 1, 100% out of tolerance")
    assert tail.splitlines()[1] == "  (44 more stages MATCH)"


def test_reference_first_the_tolerance_is_relative_to_the_reference():
    tol = Tolerance(0.00499, atol=0.0)
    assert_close_diagnosed(100.5, 100.0, tol)  # 0.5 <= 0.00499 * 100.5
    with pytest.raises(AssertionError):
        assert_close_diagnosed(100.0, 100.5, tol)  # 0.5 > 0.00499 * 100


def test_arrays_lists_numbers_and_recorded_dtypes_are_accepted():
    assert assert_close_diagnosed([1.0, 2.0], np.array([1.0, 2.0], np.float32)).verdict.value == "MATCH"
    assert assert_close_diagnosed(3, 3).verdict.value == "MATCH"
    bf16 = numtrace.dtypes.decode(numtrace.dtypes.encode(np.array([1.1, 2.2], np.float32), "bfloat16"), "bfloat16")
    result = assert_close_diagnosed(np.array([1.1, 2.2]), (bf16, "bfloat16"))
    assert result.b.dtype == "bfloat16"


def test_every_kind_of_source_works_and_paths_are_labelled(tmp_path):
    x = np.linspace(0.0, 1.0, 10)
    ref_path = numtrace.save(tmp_path / "ref.safetensors", {"x": x})
    bad_path = numtrace.save(tmp_path / "bad.safetensors", {"x": x + 1})
    with numtrace.record() as recording:
        numtrace.tap("x", x)
    for source in (
        ref_path,
        tmp_path / "ref.safetensors",
        numtrace.load(ref_path),
        recording,
        recording.trace,
        {"x": x},
    ):
        assert assert_traces_close(source, {"x": x}).first_divergence is None
    err = failure(assert_traces_close, ref_path, bad_path)
    assert f"  reference: {ref_path}\n  candidate: {bad_path}\n" in str(err)
    with pytest.raises(TypeError, match="the candidate must be a trace file path"):
        assert_traces_close(ref_path, 42)
    with pytest.raises(numtrace.TraceFileError):
        assert_traces_close(tmp_path / "missing.safetensors", ref_path)


@pytest.mark.parametrize(
    "form",
    [
        1e-2,
        Tolerance(1e-2),
        {"default": 1e-2},
        {"x": 1e-2},
        {"x": {"rtol": 1e-2}},
        {"rtol": 1e-2},
        "1e-2",
        "x=1e-2",
        ["x=rtol=1e-2"],
        {"x": "rtol=1e-2"},
        ToleranceTable(default=Tolerance(1e-2)),
    ],
)
def test_tolerance_forms_agree(form):
    x = np.linspace(1.0, 2.0, 8)
    assert_traces_close({"x": x}, {"x": x * 1.005}, form, fail_on="any")
    with pytest.raises(AssertionError):
        assert_traces_close({"x": x}, {"x": x * 1.05}, form, fail_on="any")


def test_tolerance_tables_last_rule_wins_and_bad_specs_are_refused():
    table = tolerance_table({"default": 1e-4, "mel*": 1e-3, "mel.db": {"atol": 0.01}})
    assert table.lookup("mel.db", "float32", "float32") == Tolerance(0.0, 0.01)
    assert table.lookup("mel.power", "float32", "float32") == Tolerance(1e-3)
    assert table.lookup("enc", "float32", "float32") == Tolerance(1e-4)
    for bad in ({"mel": -1.0}, {"mel": {"rtol": 1e-3, "btol": 1}}, {"mel": "x=1e-3"}, "garbage", {"": 1e-3}):
        with pytest.raises(ToleranceError):
            tolerance_table(bad)


def test_only_compares_the_named_stages():
    reference = {"enc": np.ones(2), "dec": np.ones(2)}
    candidate = {"enc": np.ones(2), "dec": np.zeros(2)}
    report = assert_traces_close(reference, candidate, only="enc")
    assert [s.name for s in report.stages] == ["enc"]
    with pytest.raises(AssertionError):
        assert_traces_close(reference, candidate, only=["enc", "de*"])


def test_map_goes_to_the_engine_or_is_refused(monkeypatch):
    reference = {"decoder.final_proj": np.ones(3)}
    candidate = {"swift.decoder.final_proj": np.ones(3) + 1}
    err = failure(assert_traces_close, reference, candidate, map={"strip_prefix_b": ["swift."]})
    assert err.report.stages[0].name_b == "swift.decoder.final_proj"

    def diff_without_map(reference, candidate, *, tolerances=None, only=None):
        raise AssertionError("not reached")

    monkeypatch.setattr(compare, "diff", diff_without_map)
    assert "map" not in inspect.signature(compare.diff).parameters
    with pytest.raises(TypeError, match="has no 'map' option"):
        assert_traces_close(reference, candidate, map={"strip_prefix_b": ["swift."]})


def test_fail_on_rules():
    reference, candidate = {"x": np.ones(3), "gone": np.ones(1)}, {"x": np.ones(3) * 1.1}
    assert assert_traces_close(reference, {"x": np.ones(3)}, fail_on="large").counts["MISSING"] == 1
    assert_traces_close(reference, candidate, fail_on="never")
    for rule in ("large", "small", "missing", "any", "small,missing", ("small", "missing")):
        with pytest.raises(TraceMismatch):
            assert_traces_close(reference, candidate, fail_on=rule)
    with pytest.raises(ValueError, match="fail_on must be one of"):
        assert_traces_close(reference, candidate, fail_on="sometimes")
    err = failure(assert_traces_close, reference, candidate, fail_on="small,missing")
    assert "(a stage fails when it is SMALL, LARGE or MISSING)" in str(err).splitlines()[0]


def test_the_report_travels_with_the_error():
    err = failure(assert_traces_close, {"x": np.ones(2)}, {"x": np.zeros(2)})
    assert err.report.first_divergence == "x"
    assert err.report.to_dict()["stages"][0]["verdict"] == "LARGE"
