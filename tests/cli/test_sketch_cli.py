"""`trace show`, `trace diff --stage` and `trace plot` on stats-only (sketch) traces, long profiles
summarized in `trace diff --stage`, and `trace diff --help` at 80 columns."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import numtrace
from numtrace.compare.verdict import VERDICT_HELP

SCRIPT = """
    import sys
    import numpy as np
    import numtrace

    rng = np.random.default_rng(0)
    bug = "--bug" in sys.argv
    x = rng.standard_normal((1, 8, 30)).astype(np.float32)
    numtrace.tap("enc", x)
    mel = x * 2
    if bug:
        mel[:, 3:5] += 1.0
    numtrace.tap("mel", mel)
    numtrace.tap("vec", np.linspace(0.0, 1.0, 50) + (0.5 if bug else 0.0))
    numtrace.tap("wide", np.arange(40 * 3, dtype=np.float64).reshape(2, 20, 3))
    numtrace.tap("nan", np.array([1.0, np.nan, 3.0]))
"""


@pytest.fixture(scope="module")
def sketches(tmp_path_factory):
    """A reference and a buggy candidate recorded by `trace run --stats`, and the candidate in full."""
    from typer.testing import CliRunner

    from numtrace.cli import app

    root = tmp_path_factory.mktemp("sketch-cli")
    (root / "pipe.py").write_text(textwrap.dedent(SCRIPT))
    paths = {"ref": root / "ref.st", "cand": root / "cand.st", "full": root / "full.st", "fullref": root / "fullref.st"}
    runs = [("ref", ["--stats"], []), ("cand", ["--stats"], ["--bug"]), ("full", [], ["--bug"]), ("fullref", [], [])]
    cwd = os.getcwd()
    os.chdir(root)  # the recorded argv is `pipe.py ...`, as a user would type it
    try:
        for label, flags, args in runs:
            result = CliRunner().invoke(app, ["run", *flags, "-o", str(paths[label]), "pipe.py", *args])
            assert result.exit_code == 0, result.output
    finally:
        os.chdir(cwd)
    return paths


def one_error_line(code, out, err):
    assert code == 2, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("trace: error: "), err
    assert "Traceback" not in out + err
    return lines[0]


# --- trace show ------------------------------------------------------------------------------------


def test_show_lists_the_recorded_shapes_statistics_and_hashes_of_a_sketch(invoke, sketches):
    code, out, err = invoke("show", sketches["ref"], "--width", "200")
    assert code == 0, err
    assert "stats-only trace (recorded with --stats)" in out
    rows = {line.split("│")[2].strip(): line for line in out.splitlines() if line.count("│") > 5}
    assert set(rows) == {"enc", "mel", "vec", "wide", "nan"}
    assert "(1, 8, 30)" in rows["mel"] and "float32" in rows["mel"] and "8 on axis 1" in rows["mel"]
    assert "(50,)" in rows["vec"] and "[0, 1] 0.5±" in rows["vec"] and "—" in rows["vec"]
    assert "(1 NaN)" in rows["nan"]
    with numtrace.load(sketches["ref"]) as trace:
        digest = json.loads(trace.metadata["numtrace.sketch.mel"])["hash"]
    assert digest.removeprefix("blake2b:")[:12] in rows["mel"]
    assert "trace run --only 'PATTERN' -o ref-full.st pipe.py" in out


def test_show_json_of_a_sketch_and_of_a_full_trace(invoke, sketches):
    code, out, _ = invoke("show", sketches["ref"], "--json")
    report = json.loads(out)
    assert code == 0 and report["stats_only"] is True
    mel = next(s for s in report["stages"] if s["name"] == "mel")
    assert mel["shape"] == [1, 8, 30] and mel["dtype"] == "float32" and mel["count"] == 240
    assert mel["axis"] == 1 and mel["channels"] == 8 and mel["hash"].startswith("blake2b:")
    code, out, _ = invoke("show", sketches["fullref"], "--json")
    full = json.loads(out)
    assert code == 0 and full["stats_only"] is False
    full_mel = next(s for s in full["stages"] if s["name"] == "mel")
    assert {k: full_mel[k] for k in ("shape", "dtype", "count", "nan")} == {
        k: mel[k] for k in ("shape", "dtype", "count", "nan")
    }
    assert full_mel["mean"] == pytest.approx(mel["mean"], rel=1e-9)


def test_show_one_stage_of_a_sketch(invoke, sketches):
    code, out, err = invoke("show", sketches["ref"], "wide", "--width", "200")
    assert code == 0, err
    assert "(stats-only trace, recorded with --stats)" in out
    assert "stage wide (4 of 5): shape (2, 20, 3) float64, 120 values" in out
    assert "hash: blake2b:" in out and "non-finite: none" in out
    means = next(line for line in out.splitlines() if "channel means along axis 1 (20):" in line)
    assert "..." in means and means.count(".") < 40  # numpy's summary of a long array: head ... tail
    assert "values: not recorded; to record them: trace run --only wide -o ref-full.st pipe.py" in out
    code, out, _ = invoke("show", sketches["ref"], "nan")
    assert code == 0 and "non-finite: 1 NaN" in out and "channel means: none" in out


def test_show_one_stage_of_a_full_trace_and_as_json(invoke, sketches):
    code, out, _ = invoke("show", sketches["fullref"], "vec")
    assert code == 0 and "values:" in out and "[0." in out and "..." in out
    code, out, _ = invoke("show", sketches["ref"], "wide", "--json")
    stage = json.loads(out)
    assert code == 0 and stage["stats_only"] and stage["axis"] == 1
    assert stage["channel_means"] == pytest.approx(
        [float(np.arange(120.0).reshape(2, 20, 3)[:, c].mean()) for c in range(20)]
    )
    code, out, _ = invoke("show", sketches["fullref"], "wide", "--json")
    assert json.loads(out)["channel_means"] == stage["channel_means"] and json.loads(out)["hash"] == stage["hash"]


def test_show_an_unknown_stage_exits_two_with_one_line(invoke, sketches):
    line = one_error_line(*invoke("show", sketches["ref"], "nope"))
    assert "no stage 'nope'" in line


# --- trace diff --stage -----------------------------------------------------------------------------


def test_diff_stage_of_two_sketches_compares_the_sketches(invoke, sketches):
    code, out, err = invoke("diff", sketches["ref"], sketches["cand"], "--stage", "mel", "--width", "200")
    assert code == 1, err
    assert "stage mel: LARGE, compared by sketch (the reference" in out and "are stats-only traces" in out
    assert "reference: shape (1, 8, 30) float32" in out and "candidate: shape (1, 8, 30) float32" in out
    assert "hash: differ" in out and "statistics, candidate − reference: min" in out
    assert "diagnosis: error in indices 3-4 of axis 1 (2 of 8)" in out
    assert "channel means along axis 1 (8 channels)" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 5}
    assert "LARGE" in rows["3"] and "LARGE" in rows["4"] and "MATCH" in rows["2"] and "MATCH" in rows["5"]
    assert "reference: trace run --only mel -o ref-full.st pipe.py" in out
    assert "candidate: trace run --only mel -o cand-full.st pipe.py --bug" in out
    assert "error profile" not in out and "Traceback" not in out + err


def test_diff_stage_by_sketch_as_json(invoke, sketches):
    code, out, _ = invoke("diff", sketches["ref"], sketches["cand"], "--stage", "mel", "--json")
    detail = json.loads(out)
    assert code == 1 and detail["compared_by"] == "sketch" and detail["stats_only"] == ["a", "b"]
    assert detail["channels"]["verdict"] == ["MATCH"] * 3 + ["LARGE"] * 2 + ["MATCH"] * 3
    assert detail["channels"]["delta"][3] == pytest.approx(1.0, rel=1e-6)
    assert detail["diagnosis"][0]["kind"] == "localized" and detail["profiles"] == [] and detail["worst"] == []


def test_diff_stage_sketch_against_full_trace(invoke, sketches):
    code, out, err = invoke("diff", sketches["ref"], sketches["full"], "--stage", "enc")
    assert code == 0, err
    assert "stage enc: MATCH, compared by sketch (the reference" in out and "is a stats-only trace" in out
    assert "hash: equal" in out and "identical bytes" in out and "trace run --only" not in out
    code, out, err = invoke("diff", sketches["full"], sketches["ref"], "--stage", "vec", "--width", "200")
    assert code == 1, err
    assert "candidate = reference - 0.5 (constant offset)" in out
    assert "no channel means to compare" in out
    assert "candidate: trace run --only vec -o ref-full.st pipe.py" in out


def test_diff_stage_by_sketch_bad_stage_exits_two(invoke, sketches):
    line = one_error_line(*invoke("diff", sketches["ref"], sketches["cand"], "--stage", "nope"))
    assert "no stage 'nope'" in line


# --- trace plot ------------------------------------------------------------------------------------


def _png(path):
    return path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_overview_and_channel_means_of_sketches(invoke, sketches, tmp_path):
    overview, stage = tmp_path / "overview.png", tmp_path / "mel.png"
    code, out, err = invoke("plot", sketches["ref"], sketches["cand"], "-o", overview)
    assert code == 0 and _png(overview), err
    code, out, err = invoke("plot", sketches["ref"], sketches["full"], "--stage", "mel", "-o", stage)
    assert code == 0 and _png(stage), err


def test_plot_stage_without_channel_means_exits_two_and_says_how_to_record_it(invoke, sketches, tmp_path):
    out = tmp_path / "vec.png"
    line = one_error_line(*invoke("plot", sketches["ref"], sketches["fullref"], "--stage", "vec", "-o", out))
    assert "stats-only trace, recorded with --stats" in line
    assert "record it in full: trace run --only vec -o ref-full.st pipe.py" in line
    assert not out.exists()


# --- long profiles and --help ------------------------------------------------------------------------


@pytest.fixture
def long_axis(tmp_path):
    rng = np.random.default_rng(3)
    x = -42.0 + 80.0 * rng.random((64, 312))
    padded, noisy = x.copy(), x.copy()
    padded[:, 251:] = 0.0
    noisy[:, ::2] += 1e-6 * (1.0 + rng.random(156))  # every other frame just out of tolerance
    for label, values in {"ref": x, "padded": padded, "noisy": noisy}.items():
        numtrace.save(tmp_path / f"{label}.st", {"std": values})
    return tmp_path


def _profile_rows(out, axis):
    block = out.split(f"error profile along axis {axis}")[1].split("\n\n")[0]
    return [line for line in block.splitlines() if line.startswith("│")]


def test_long_profile_collapses_runs_of_equal_verdict(invoke, long_axis):
    code, out, _ = invoke("diff", long_axis / "ref.st", long_axis / "padded.st", "--stage", "std", "--width", "160")
    assert code == 1
    rows = _profile_rows(out, 1)
    assert [r.split("│")[1].strip() for r in rows] == ["0-250", "251-311"]
    assert "MATCH" in rows[0] and "LARGE" in rows[1]
    assert "312 indices in 2 runs" in out


def test_long_profile_keeps_head_worst_and_tail_and_counts_hidden_rows(invoke, long_axis):
    code, out, _ = invoke("diff", long_axis / "ref.st", long_axis / "noisy.st", "--stage", "std", "--width", "160")
    rows = _profile_rows(out, 1)
    assert len(rows) <= 3 + 6 + 3 + 7  # head, worst, tail, and the hidden-rows markers between
    indices = [r.split("│")[1].strip() for r in rows]
    assert indices[:3] == ["0", "1", "2"] and indices[-3:] == ["309", "310", "311"]
    hidden = [r for r in rows if "hidden" in r]
    assert hidden and sum(int(r.split("│")[3].split()[0]) for r in hidden) + len(rows) - len(hidden) == 312
    detail = json.loads(invoke("diff", long_axis / "ref.st", long_axis / "noisy.st", "--stage", "std", "--json")[1])
    assert len(detail["profiles"][1]["verdict"]) == 312  # the JSON keeps every index


def test_diff_help_reads_well_at_80_columns():
    exe = shutil.which("trace", path=str(Path(sys.executable).parent)) or shutil.which("trace")
    if exe is None:
        pytest.skip("the `trace` console script is not installed (pip install -e .)")
    env = {**os.environ, "COLUMNS": "80"}
    result = subprocess.run([exe, "diff", "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    for line in VERDICT_HELP.splitlines():  # every line of the rule printed whole, none re-wrapped
        assert line.strip() in lines, line
    assert "[tolerance]" in result.stdout  # not eaten as rich markup
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
