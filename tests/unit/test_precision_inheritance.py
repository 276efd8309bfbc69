"""The tolerance follows the precision the data went through, not only the stage's own dtypes.

The candidate computes its front end in float32, then NumPy 2's type promotion (a float64 weight)
carries on in float64: both sides of `encoder.conv1` are float64, yet it holds float32 rounding
from upstream. Judged at float64's tolerance it was LARGE (rel err ~1e-6) and named root cause.
"""

import json

import numpy as np
import pytest

import numtrace
from numtrace.compare import ToleranceTable, diff
from numtrace.compare.precision import Inherited, Precisions, coarsest_so_far
from numtrace.trace import MemoryTrace

RNG = np.random.default_rng(7)
AUDIO = RNG.standard_normal(4096)
W_CONV = RNG.standard_normal((16, 64, 3)) / 8.0
W_OUT = RNG.standard_normal((10, 16)) / 4.0


def pipeline(front: type = np.float64, bug: str | None = None) -> MemoryTrace:
    """A small audio model: float64 weights; the front end in ``front``."""
    with numtrace.record() as rec:
        audio = numtrace.tap("audio", AUDIO.astype(front))
        frames = np.lib.stride_tricks.sliding_window_view(audio, 128)[::32]
        spec = numtrace.tap("frontend.spec", np.abs(np.fft.rfft(frames * np.hanning(128).astype(front), axis=1)))
        mel = numtrace.tap("frontend.mel", np.log(spec[:, :64] ** 2 + front(1e-6)).T.copy())
        x = numtrace.tap("frontend.standardize", (mel - mel.mean()) / mel.std())
        # the weights are float64: NumPy 2 promotes a float32 front end to float64 from here on
        padded = np.pad(x, ((0, 0), (1, 1)))
        conv = np.einsum("oik,itk->ot", W_CONV, np.stack([padded[:, k : k + x.shape[1]] for k in range(3)], -1))
        conv = numtrace.tap("encoder.conv1", conv)
        act = numtrace.tap("encoder.act", np.tanh(conv) + (0.01 if bug == "bias" else 0.0))
        numtrace.tap("encoder.out", W_OUT @ act)
    return rec.trace


def test_inherited_float32_rounding_is_not_large_and_the_table_says_where_it_comes_from():
    reference, candidate = pipeline(), pipeline(np.float32)
    assert candidate.info("encoder.conv1").dtype == "float64"
    plain = diff(reference, candidate, tolerances=ToleranceTable.from_options(["encoder.*=1.49e-8"]))
    assert plain["encoder.conv1"].verdict.value == "LARGE"  # float64's own tolerance: what it was before
    report = diff(reference, candidate)
    assert [s.verdict.value for s in report.stages] == ["MATCH"] * 7
    conv = report["encoder.conv1"]
    assert 1e-7 < conv.rel_err < 1e-4  # float32 rounding, carried into float64 stages
    assert conv.precision == Inherited("float32", "audio", "b")
    assert round(conv.tolerance.rtol, 7) == 0.0003453
    assert report.root_cause is None and bool(report)
    tolerance = report.to_dict()["stages"][4]["tolerance"]
    assert tolerance["inherited"] == {"dtype": "float32", "from": "audio", "side": "candidate"}
    assert report["audio"].precision is None  # its own dtypes already say float32


def test_a_planted_bug_downstream_of_the_inherited_precision_is_still_large():
    report = diff(pipeline(), pipeline(np.float32, bug="bias"))
    assert report["encoder.conv1"].verdict.value == "MATCH"
    assert report["encoder.act"].verdict.value == "LARGE"
    assert report.root_cause == "encoder.act"
    assert report["encoder.act"].diagnosis[0]["kind"] == "offset"


def test_an_explicit_tolerance_wins_over_the_inherited_one():
    report = diff(pipeline(), pipeline(np.float32), tolerances=ToleranceTable.from_options(["encoder.conv1=1e-12"]))
    assert report["encoder.conv1"].verdict.value == "LARGE"
    assert report["encoder.conv1"].precision is None
    assert report["encoder.act"].precision is not None


def test_precision_comes_from_either_side_in_its_own_order_and_skips_integers():
    kinds = {"ids": "int64", "emb": "float32", "body": "bfloat16", "head": "float32"}
    up = coarsest_so_far(list(kinds), kinds.get, "b")
    assert up["ids"] is None and up["emb"].dtype == "float32" and up["head"] == Inherited("bfloat16", "body", "b")
    a = MemoryTrace({"ids": np.arange(3), "emb": np.zeros(3, np.float32), "head": np.zeros(3, np.float32)})
    b = MemoryTrace(
        {
            "ids": np.arange(3),
            "emb": np.zeros(3, np.float32),
            "body": (np.zeros(3, np.float32), "bfloat16"),
            "head": np.zeros(3, np.float32),
            "tokens": np.arange(3),
        },
        order=["ids", "emb", "body", "head", "tokens"],
    )
    precisions = Precisions(a, b)
    from numtrace.compare.pairing.align import Pair

    assert precisions.at(Pair("head", "head")) == Inherited("bfloat16", "body", "b")
    assert precisions.at(Pair("ids", "ids")) is None  # integers stay exact
    assert precisions.at(Pair(None, "tokens")) is None
    assert precisions.at(Pair("emb", "emb")) is None


def test_a_trace_without_stored_order_adds_only_its_own_dtypes(tmp_path):
    """Natural sort is not execution order: it must not pass rounding 'upstream'."""
    from safetensors.numpy import save_file

    path = tmp_path / "swift.safetensors"
    save_file({"a_late": np.zeros(2, np.float16), "b_early": np.zeros(2)}, str(path))
    with numtrace.load(path) as swift:
        reference = MemoryTrace({"a_late": np.zeros(2), "b_early": np.zeros(2)}, order=["b_early", "a_late"])
        from numtrace.compare.pairing.align import Pair

        assert Precisions(reference, swift).at(Pair("b_early", "b_early")) is None


def test_bfloat16_body_then_float32_logits_in_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    body = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 64))
    head = torch.nn.Linear(64, 100)
    x = torch.randn(4, 32)

    def run(half: bool, bug: bool = False):
        with numtrace.record(backend="torch") as rec, torch.no_grad():
            h = numtrace.tap("body", body.to(torch.bfloat16)(x.bfloat16()) if half else body.float()(x))
            logits = head(h.float()) + (0.5 if bug else 0.0)
            numtrace.tap("logits", logits)
        return rec.trace

    reference = run(False)
    candidate = run(True)
    assert candidate.info("logits").dtype == "float32"
    before = diff(reference, candidate, tolerances=ToleranceTable.from_options(["logits=3.45e-4"]))
    assert before["logits"].verdict.value != "MATCH"  # bfloat16 rounding at float32's tolerance
    report = diff(reference, candidate)
    assert report["logits"].verdict.value == "MATCH"
    assert report["logits"].precision == Inherited("bfloat16", "body", "b")
    assert diff(reference, run(True, bug=True))["logits"].verdict.value == "LARGE"


def test_cli_table_and_json_name_the_inherited_precision(tmp_path):
    from typer.testing import CliRunner

    from numtrace.cli import app
    from report_schema import check_cli_output

    ref, cand = tmp_path / "ref.safetensors", tmp_path / "cand.safetensors"
    for path, trace in ((ref, pipeline()), (cand, pipeline(np.float32))):
        numtrace.save(path, {n: trace.read(n) for n in trace.order}, order=trace.order)
    result = CliRunner().invoke(app, ["diff", str(ref), str(cand), "--width", "200"])
    assert result.exit_code == 0, result.output
    assert "tolerance float32, inherited from audio" in result.output
    args = ["diff", str(ref), str(cand), "--json"]
    result = CliRunner().invoke(app, args)
    check_cli_output(args, result.stdout, result.exit_code)
    data = json.loads(result.stdout)
    assert data["stages"][4]["tolerance"]["inherited"]["dtype"] == "float32"
