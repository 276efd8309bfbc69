"""`trace diff` in a real terminal: the demo and a 300-stage trace at 80, 100, 120 and 200 columns.

Each rendering is kept in tests/cli/snapshots/ (``NUMTRACE_UPDATE_SNAPSHOTS=1`` rewrites them, to be
reviewed before a commit) and checked: no line wider than the terminal, no number broken across
lines, no column cut below its header, the diagnosis never cut to a stub, and on the long trace
the first divergence and root cause always shown while runs of MATCH stages take one line.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import numtrace
from numtrace.cli import app
from numtrace.report.layouts import choose_layout
from numtrace.report.words import fmt
from numtrace.run import run_script

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
WIDTHS = (80, 100, 120, 200)
HEADERS = {"narrow": ("stage", "verdict", "rel err", "max |Δ|"),
           "medium": ("stage", "shape", "verdict", "out of tol", "rel err", "growth", "max |Δ|", "mean |Δ|", "diagnosis"),
           "wide": ("stage", "shape", "reference", "candidate", "[min, max]", "mean±std", "max |Δ|", "rel err",
                    "verdict", "out of tol", "diagnosis")}  # fmt: skip


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """The demo's two traces and a 303-stage LLM-like pair with an offset planted at layer 17."""
    folder = tmp_path_factory.mktemp("layouts")
    pipeline = str(ROOT / "examples" / "audio_pipeline" / "pipeline.py")
    run_script(pipeline, ["--dtype", "float64"], str(folder / "reference.safetensors"))
    run_script(pipeline, ["--dtype", "float32", "--pad-with", "zero"], str(folder / "candidate.safetensors"))
    rng = np.random.default_rng(0)
    modules = "attn_ln q_proj k_proj v_proj o_proj self_attn mlp_ln up_proj down_proj block".split()
    names = ["embed"] + [f"model.layers.{i}.{m}" for i in range(30) for m in modules] + ["norm", "lm_head"]
    ref, cand, x = {}, {}, rng.standard_normal((4, 32)).astype(np.float32)
    for i, name in enumerate(names):
        x = np.tanh(x + 0.1 * rng.standard_normal(x.shape).astype(np.float32))
        ref[name], cand[name] = x.astype(np.float64), x + (0.05 if i >= names.index("model.layers.17.up_proj") else 0)
    numtrace.save(folder / "long_ref.safetensors", ref, order=names)
    numtrace.save(folder / "long_cand.safetensors", cand, order=names)
    sys.path.insert(0, str(ROOT / "tests" / "planted"))
    from porting_pipeline import traces as planted

    for trace, path in zip(planted(bugs=("extra_frame",)), ("frames_ref.safetensors", "frames_port.safetensors")):
        stages = {name: (trace.read(name), trace.info(name).dtype) for name in trace.order}
        numtrace.save(folder / path, stages, order=trace.order)
    return folder


def render(folder, a, b, width, *extra):
    cwd = os.getcwd()
    os.chdir(folder)  # labels are the relative paths given, as a user types them
    try:
        result = CliRunner().invoke(app, ["diff", a, b, "--width", str(width), *extra], env={"COLUMNS": str(width)})
    finally:
        os.chdir(cwd)
    assert result.exit_code == 1, result.output
    return result.stdout


def snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("NUMTRACE_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}: NUMTRACE_UPDATE_SNAPSHOTS=1 writes it, to be reviewed"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} changed: NUMTRACE_UPDATE_SNAPSHOTS=1 to review"


def flat(text: str) -> str:
    """The words of a rendering, table borders and line breaks removed."""
    return " ".join(text.translate({ord(c): " " for c in "│┃"}).split())


def numbers_of(report) -> list[str]:
    """The numbers every layout shows whole: each stage's verdict, relative error and max |Δ|."""
    out = []
    for stage in report.stages:
        if stage.diff is not None:
            out += [fmt(stage.diff.abs_max), fmt(stage.diff.rel_rms, 2)]
    return out


@pytest.mark.parametrize("width", WIDTHS)
def test_the_demo_reads_whole_at_every_width(traces, width):
    text = render(traces, "reference.safetensors", "candidate.safetensors", width)
    snapshot(f"demo-{width}", text)
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width
    layout = choose_layout(width)
    header = "\n".join(lines[:8])
    for word in HEADERS[layout]:  # no column cut below its header
        assert word in header, (layout, word)
    report = numtrace.diff(traces / "reference.safetensors", traces / "candidate.safetensors")
    for number in numbers_of(report):  # no number broken across lines
        assert number in text, number
    # the diagnosis of the LARGE stage is never a stub: its words are all there, in order
    words = flat(text) if layout != "wide" else flat(text.split("frontend.standardized", 1)[1])
    assert "0.0 padding in indices 251-311 of axis 1" in words
    assert "reference -42.47 there" in words


@pytest.mark.parametrize("width", (*WIDTHS, 160))
def test_long_shapes_and_names_never_crop_the_table(traces, width):
    """Shapes like (161, 512) vs (162, 512) and names paired across styles need more room than the
    wide layout has at 160 columns: the next layout is used, never a cropped table."""
    text = render(traces, "frames_ref.safetensors", "frames_port.safetensors", width)
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width
    for line in lines:  # a table cropped by the terminal loses its right border
        if line.startswith(("┏", "┃", "┡", "│", "└")):
            assert line.rstrip()[-1] in "┓┃┩│┘", line
    report = numtrace.diff(traces / "frames_ref.safetensors", traces / "frames_port.safetensors")
    for number in numbers_of(report):
        assert number in text, number
    finding = "error in index 161 of axis 1 (1 of 200), candidate = reference + 38.44 there, explains 100%"
    for phrase in ("axis 0 has 161 vs 162 elements; overlap compared", finding):  # wrapped, never cut
        assert all(word in text for word in phrase.split()), phrase
    if width == 200:  # the wide layout, its diagnosis column read cell by cell
        assert "mean±std" in text
        column = " ".join(line.rstrip()[:-1].rsplit("│", 1)[-1].strip() for line in lines if line.startswith("│"))
        assert "axis 0 has 161 vs 162 elements; overlap compared" in column and finding in column


@pytest.mark.parametrize("width", WIDTHS)
def test_a_300_stage_trace_stays_scannable(traces, width):
    text = render(traces, "long_ref.safetensors", "long_cand.safetensors", width)
    snapshot(f"long-{width}", text)
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width
    assert len(lines) < 40  # 303 stages: the runs take one line each
    assert "178 stages MATCH: embed … model.layers.17.mlp_ln (identical)" in flat(text)
    assert "model.layers.17.up_proj" in text and "▶★" in text
    assert "124 stages LARGE, the error inherited from upstream" in flat(text)
    every = render(traces, "long_ref.safetensors", "long_cand.safetensors", width, "--all")
    assert "model.layers.3.q_proj" in every and "model.layers.3.q_proj" not in text


def test_wide_and_narrow_force_a_layout(traces):
    wide = render(traces, "reference.safetensors", "candidate.safetensors", 80, "--wide")
    assert "mean±std" in wide
    narrow = render(traces, "reference.safetensors", "candidate.safetensors", 200, "--narrow")
    assert "mean±std" not in narrow and "↳ 0.0 padding" in narrow
    result = CliRunner().invoke(app, ["diff", str(traces / "reference.safetensors"),
                                      str(traces / "candidate.safetensors"), "--wide", "--narrow"])  # fmt: skip
    assert result.exit_code == 2 and "--wide and --narrow" in result.stderr
