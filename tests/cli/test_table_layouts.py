"""`trace diff` in a real terminal: the demo and a 300-stage trace at 80, 100, 120 and 200 columns.

Each rendering is kept in tests/cli/snapshots/ (``NUMTRACE_UPDATE_SNAPSHOTS=1`` rewrites them, to be
reviewed before a commit) and checked: no line wider than the terminal, no number broken across
lines, no column cut below its header, the diagnosis never cut to a stub, and on the long trace
the first divergence and root cause always shown while runs of MATCH stages take one line.
"""

import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import numtrace
from numtrace.cli import app
from numtrace.report.layouts import choose_layout, fmt_growth
from numtrace.report.words import fmt, fmt_percent, fmt_shape, fmt_side
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
    save_pair(folder, "paired", *port_with_other_names(rng))
    y = rng.standard_normal((4, 8)).astype(np.float32)
    ref = {"embed": y, LONG_NAMES[0]: y * 2, LONG_NAMES[1]: y * 3, "head": y * 4}
    save_pair(folder, "names", ref, {**ref, LONG_NAMES[1]: y * 3 + 1, "head": y * 4 + 1})
    return folder


#: a 68- and a 73-character stage name
LONG_NAMES = ("model.encoder.layers.11.self_attention.attention_output.output_dense",
              "decoder.transformer.blocks.23.cross_attention.key_value_projection_output")  # fmt: skip


def save_pair(folder, name, ref, cand):
    numtrace.save(folder / f"{name}_ref.safetensors", ref, order=list(ref))
    numtrace.save(folder / f"{name}_cand.safetensors", cand, order=list(cand))


def port_with_other_names(rng):
    """30 stages alike, then an MLP whose Sequential (``mlp.0``-``mlp.2`` and the container ``mlp``,
    equal to ``mlp.2``) the port writes as ``mlp1``/``mlp2`` and a function, then an offset."""

    def values(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    ref = {f"pre.{i}": values(2, 16) for i in range(30)}
    up, down, h = values(1, 50, 256), values(1, 50, 64), values(1, 50, 64)
    ref |= {"encoder.blocks.0.mlp.0": up, "encoder.blocks.0.mlp.1": np.maximum(up, 0), "encoder.blocks.0.mlp.2": down,
            "encoder.blocks.0.mlp": down.copy(), "encoder.blocks.0": h, "encoder.out": h * 3}  # fmt: skip
    cand = {name: ref[name] for name in ref if name.startswith("pre.")}
    cand |= {"encoder.blocks.0.mlp1": up + 1e-7, "encoder.blocks.0.mlp2": down + 1e-7, "encoder.blocks.0": h,
             "encoder.out": h * 3 + 1}  # fmt: skip
    return ref, cand


@pytest.fixture(scope="module")
def long_report(traces):
    return numtrace.diff(traces / "long_ref.safetensors", traces / "long_cand.safetensors")


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


def layout_of(text: str) -> str:
    """The layout a rendering is in, read from its header."""
    header = "\n".join(text.splitlines()[:8])
    return "wide" if "mean±std" in header else "medium" if "out of tol" in header else "narrow"


def stage_rows(text: str) -> dict[int, list[str]]:
    """Each stage row's lines, by the number in its # column: from that line to the next stage row
    (a run's lines and the diagnosis below a narrow row included), the summary left out."""
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if re.search(r"(^|\s)#(\s|$)", line))
    column = lines[top].index("#")  # the numbers are right-aligned under it
    rows: dict[int, list[str]] = {}
    current = None
    for line in lines[top + 1 :]:
        if re.match(r"\d+ stages?: ", line):
            break
        number = re.search(r"(?:^|[\s│])(\d+)$", line[: column + 1])
        if number:
            current = rows.setdefault(int(number.group(1)), [])
        if current is not None:
            current.append(line)
    return rows


def cells_of(stage, layout: str) -> list[str]:
    """What ``layout`` shows in a stage's cells, each whole on one line: the verdict, relative error
    and max |Δ|, and in the wider layouts the share out of tolerance, growth, mean |Δ|, and both
    sides' [min, max] and mean±std and the shape."""
    d = stage.diff
    out = [stage.verdict.value] + ([fmt(d.rel_rms, 2), fmt(d.abs_max)] if d is not None else ["—"])
    if layout != "narrow" and d is not None:
        out += [fmt_percent(d.mismatched, d.total), fmt_growth(stage), fmt(d.abs_mean)]
    if layout == "wide":
        out += [fmt_shape(stage.a, stage.b)]
        out += [line for side in (stage.a, stage.b) if side is not None for line in fmt_side(side, True).split("\n")]
    return out


def assert_cells_whole(text: str, report, shown: set[int]) -> None:
    """Every number of every stage row shown (``shown``: their # numbers) whole on one line of its row:
    not wrapped (``0.000177±0.38`` / ``01``), folded or cropped, nor split across cells."""
    layout = layout_of(text)
    rows = stage_rows(text)
    assert set(rows) == shown, sorted(set(rows) ^ shown)
    for number, lines in rows.items():
        stage = report.stages[number - 1]
        assert stage.name.split(".")[0] in lines[0], (number, lines[0])  # the row of that stage
        broken = [cell for cell in cells_of(stage, layout) if not any(cell in line for line in lines)]
        assert not broken, (layout, stage.name, broken, lines)


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
    assert_cells_whole(text, report, set(range(1, len(report.stages) + 1)))
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
def test_a_300_stage_trace_stays_scannable(traces, long_report, width):
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
    for rendering, shown in ((text, {179}), (every, set(range(1, 304)))):
        lines = rendering.splitlines()
        assert max(len(line.rstrip()) for line in lines) <= width
        layout = layout_of(rendering)
        assert layout == choose_layout(width)
        header = "\n".join(lines[:8])
        for word in HEADERS[layout]:  # no column cut below its header
            assert word in header, (layout, word)
        assert_cells_whole(rendering, long_report, shown)  # and every number whole, side statistics included


def test_wide_and_narrow_force_a_layout(traces):
    wide = render(traces, "reference.safetensors", "candidate.safetensors", 80, "--wide")
    assert "mean±std" in wide
    narrow = render(traces, "reference.safetensors", "candidate.safetensors", 200, "--narrow")
    assert "mean±std" not in narrow and "↳ 0.0 padding" in narrow
    result = CliRunner().invoke(app, ["diff", str(traces / "reference.safetensors"),
                                      str(traces / "candidate.safetensors"), "--wide", "--narrow"])  # fmt: skip
    assert result.exit_code == 2 and "--wide and --narrow" in result.stderr


def rows_of(text: str) -> dict[str, str]:
    """Each stage row's words (its ``↔`` line and its narrow ``↳`` line included), by stage name."""
    out = {}
    for number, lines in stage_rows(text).items():
        words = flat("\n".join(lines))
        tokens = words.split()
        out[tokens[tokens.index(str(number)) + 1]] = words
    return out


def test_the_narrow_table_says_how_a_stage_was_paired_as_the_wide_one_does(traces):
    """A MATCH stage paired by the alignment or through a twin has its pairing under it in the
    narrow table, the words of the wide table's diagnosis; an exact MATCH stays one line, and a
    run of MATCH stages stays one line (--all shows the notes of the stages in it)."""
    narrow = render(traces, "paired_ref.safetensors", "paired_cand.safetensors", 80)
    wide = render(traces, "paired_ref.safetensors", "paired_cand.safetensors", 200)
    assert layout_of(narrow) == "narrow" and layout_of(wide) == "wide"
    twin = "= encoder.blocks.0.mlp.2 (the reference's same values), paired through it"
    rows = rows_of(narrow)
    diagnoses = {  # the wide table's diagnosis column, row by row
        name: " ".join(" ".join(line.rstrip()[:-1].rsplit("│", 1)[-1].split()) for line in lines).strip()
        for name, lines in zip(rows_of(wide), stage_rows(wide).values())
    }
    assert "↔ encoder.blocks.0.mlp2 ↳ paired by alignment (score " in rows["encoder.blocks.0.mlp.2"]
    assert f"↔ encoder.blocks.0.mlp2 ↳ {twin}" in rows["encoder.blocks.0.mlp"]
    for name in ("encoder.blocks.0.mlp.2", "encoder.blocks.0.mlp"):  # the wide table's words
        assert rows[name].split("↳ ", 1)[1] == diagnoses[name]
    assert "↳" not in rows["encoder.blocks.0"]  # an exact MATCH: one line
    assert "31 stages MATCH: pre.* … encoder.*" in flat(narrow)  # pre.0-29 and the aligned mlp.0: one run
    assert "encoder.blocks.0.mlp.0" not in rows and "encoder.blocks.0.mlp.0" not in diagnoses
    every = rows_of(render(traces, "paired_ref.safetensors", "paired_cand.safetensors", 80, "--all"))
    assert "↔ encoder.blocks.0.mlp1 ↳ paired by alignment (score " in every["encoder.blocks.0.mlp.0"]
    assert "↳" not in every["pre.0"]


def name_pieces(text: str, name: str) -> list[str]:
    """How a stage name is wrapped in its column: its piece on each line, in order."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if name[:16] in line)
    column = lines[first].index(name[:16])
    pieces: list[str] = []
    for line in lines[first:]:
        pieces.append(line[column:].split()[0])
        if "".join(pieces) == name:
            return pieces
    raise AssertionError(f"{name} not found whole in its column: {pieces}")


@pytest.mark.parametrize("width", (80, 101, 120, 140))
def test_long_stage_names_break_at_dots_and_underscores(traces, width):
    text = render(traces, "names_ref.safetensors", "names_cand.safetensors", width)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    for name in LONG_NAMES:
        pieces = name_pieces(text, name)
        assert len(pieces) > 1 and all(piece[-1] in "._" for piece in pieces[:-1]), pieces
    if width == 140:  # the medium layout: the stage column takes what the diagnosis does not need
        assert layout_of(text) == "medium"
        assert [len(name_pieces(text, name)) for name in LONG_NAMES] == [2, 2]  # not 3 in 30 columns
        diagnosis = "candidate = reference + 1 (constant offset, explains 100%)"
        table = text.split("4 stages:")[0]
        assert diagnosis not in table and table.count("explains 100%)") == 2  # wrapped, in 40 columns
