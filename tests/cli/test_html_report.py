"""`trace diff A B --html report.html`: one self-contained page, checked as a file and in a real browser.

The browser checks run headless Chromium (Debian's ``chromium``; .ci/run installs it) on the page
with a view in its address (``#sort=rel_err:desc&verdict=LARGE``), dump the DOM once the scripts
and images are done, and read back what the page did: rows shown, their order, images decoded.
Without a browser they are skipped, saying so.
"""

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import numtrace
from numtrace.cli import app
from numtrace.commands.html import write_html
from numtrace.compare import diff
from numtrace.formats import load
from numtrace.run import run_script

ROOT = Path(__file__).resolve().parents[2]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class Page(HTMLParser):
    """The parts of a page the tests read: <body>'s attributes, the table rows, images, ids, links."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.body: dict = {}
        self.rows: list[dict] = []
        self.images: list[dict] = []
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.scripts_with_src = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "body":
            self.body = attrs
        elif tag == "tr" and "data-verdict" in attrs:
            self.rows.append(attrs)
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        elif tag in ("script", "link") and ("src" in attrs or "href" in attrs):
            self.scripts_with_src += 1

    def shown(self) -> list[str]:
        return [row["data-stage"] for row in self.rows if "hidden" not in row]


def mixed_traces(folder: Path) -> tuple[Path, Path]:
    """Nine stages: exact matches, an error born under the tolerance, a band offset that carries on
    (with a NaN in the candidate), a fresh offset, and a stage on each side only."""
    rng = np.random.default_rng(1)
    reference, candidate, order = {}, {}, []
    x = rng.standard_normal((8, 40)).astype(np.float32)
    for name in ("input", "conv1", "conv2", "only_ref", "norm", "attn", "proj", "head"):
        x = np.tanh(x + 0.2 * rng.standard_normal(x.shape).astype(np.float32))
        order.append(name)
        reference[name], y = x.copy(), x.copy()
        if name == "conv2":
            y = y * np.float32(1.0005)
        if name in ("attn", "proj"):
            y[:, 10:14] += 0.5
        if name == "proj":
            y[0, 0] = np.nan
        if name == "head":
            y = y + np.float32(0.3)
        candidate[name] = y
    del candidate["only_ref"]
    candidate["only_cand"] = np.ones(3, np.float32)
    a, b = folder / "mixed_ref.safetensors", folder / "mixed_cand.safetensors"
    numtrace.save(a, reference, order=order)
    numtrace.save(b, candidate, order=[n for n in order if n != "only_ref"] + ["only_cand"])
    return a, b


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Two pages written by the CLI: the demo (float32 port, zero padding) and the mixed pair."""
    folder = tmp_path_factory.mktemp("html")
    pipeline = str(ROOT / "examples" / "audio_pipeline" / "pipeline.py")
    run_script(pipeline, ["--dtype", "float64"], str(folder / "reference.safetensors"))
    run_script(pipeline, ["--dtype", "float32", "--pad-with", "zero"], str(folder / "candidate.safetensors"))
    written = {}
    for key, (a, b) in {
        "demo": (folder / "reference.safetensors", folder / "candidate.safetensors"),
        "mixed": mixed_traces(folder),
    }.items():
        out = folder / f"{key}.html"
        result = CliRunner().invoke(app, ["diff", str(a), str(b), "--html", str(out)])
        assert result.exit_code == 1, result.output  # both have a LARGE stage
        with load(str(a)) as ref, load(str(b)) as cand:
            written[key] = (out, diff(ref, cand))
    return written


def test_the_page_is_self_contained_with_one_row_per_stage(pages):
    for out, report in pages.values():
        text = out.read_text(encoding="utf-8")
        page = Page(text)
        assert [row["data-stage"] for row in page.rows] == [s.name for s in report.stages]
        assert [row["data-verdict"] for row in page.rows] == [s.verdict.value for s in report.stages]
        assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", text), "a resource from the network"
        assert "@import" not in text and page.scripts_with_src == 0
        assert page.images, "no heatmap"
        for image in page.images:
            assert image["src"].startswith("data:image/png;base64,")
            assert base64.b64decode(image["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        for link in page.links:  # every in-page link has its target
            assert link.startswith("#") and link[1:] in page.ids, link


def test_the_page_says_what_the_table_says(pages):
    out, report = pages["demo"]
    text = out.read_text(encoding="utf-8")
    assert 'class="outcome o-fails">fails' in text
    assert "First divergence: frontend.standardized" in text
    assert "0.0 padding in indices 251-311 of axis 1" in text  # the finding, in the tool's words
    assert text.count('<article id="stage-') == report.counts["LARGE"] + report.counts["SMALL"]
    assert "▶★ first divergence = root cause: frontend.standardized" in text  # marked on the chart
    mixed = pages["mixed"][0].read_text(encoding="utf-8")
    assert "NaN / inf" in mixed and "0 (exact)" in mixed  # the chart's own lines for them
    assert "grey: NaN or inf" in mixed
    assert mixed.count("MISSING (on one side only)") == 2


def test_every_divergent_stage_has_findings_profiles_and_heatmaps(pages):
    out, report = pages["mixed"]
    text = out.read_text(encoding="utf-8")
    for i, stage in enumerate(report.stages, 1):
        if stage.verdict.value not in ("SMALL", "LARGE"):
            assert f'id="stage-{i}"' not in text
            continue
        article = text.split(f'<article id="stage-{i}">', 1)[1].split("</article>", 1)[0]
        assert article.count("<img") == 3  # reference, candidate, difference
        assert article.count('class="profile"') == 2  # one error profile per axis
        assert "<li>" in article


def test_html_write_error_is_one_line_and_exit_2(tmp_path):
    a, b = mixed_traces(tmp_path)
    result = CliRunner().invoke(app, ["diff", str(a), str(b), "--html", str(tmp_path / "no" / "such" / "r.html")])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "cannot write the HTML report" in result.stderr
    assert not list(tmp_path.rglob("*.tmp"))


def test_json_and_html_together(tmp_path):
    a, b = mixed_traces(tmp_path)
    result = CliRunner().invoke(app, ["diff", str(a), str(b), "--json", "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 1 and result.stdout.lstrip().startswith("{")
    assert (tmp_path / "r.html").exists()


def test_write_html_on_a_matching_pair(tmp_path):
    a = numtrace.trace.MemoryTrace({"x": np.arange(6.0).reshape(2, 3)})
    path = write_html(diff(a, a), a, a, tmp_path / "same.html")
    text = Path(path).read_text(encoding="utf-8")
    assert 'class="outcome o-passes">passes' in text and "nothing to show in detail" in text


# -- in a real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    exe = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if exe is None:
        pytest.skip("no Chromium to open the HTML report in (apt-get install chromium; .ci/run does)")
    return exe


def render(browser: str, page: Path, view: str = "") -> Page:
    """The page's DOM after its scripts ran and its images loaded, opened at ``#view``."""
    url = page.resolve().as_uri() + (f"#{view}" if view else "")
    args = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
            "--dump-dom", url]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = Page(done.stdout)
    assert dom.body.get("data-ready") == "1", "the page's script did not finish"
    return dom


def test_the_page_renders_with_every_row_and_image(browser, pages):
    for out, report in pages.values():
        dom = render(browser, out)
        assert dom.body["data-rows"] == str(len(report.stages))
        assert dom.shown() == [s.name for s in report.stages]
        assert int(dom.body["data-image-count"]) == len(Page(out.read_text(encoding="utf-8")).images) > 0
        assert dom.body["data-images"] == dom.body["data-image-count"], "an image did not decode"


def test_filter_by_verdict_and_name(browser, pages):
    out, report = pages["mixed"]
    dom = render(browser, out, "verdict=LARGE,MISSING")
    wanted = [s.name for s in report.stages if s.verdict.value in ("LARGE", "MISSING")]
    assert dom.shown() == wanted and dom.body["data-rows"] == str(len(wanted))
    dom = render(browser, out, "verdict=LARGE&q=pro")
    assert dom.shown() == ["proj"]


def test_sort_by_a_column_both_ways(browser, pages):
    out, report = pages["mixed"]
    compared = sorted((s for s in report.stages if s.diff is not None), key=lambda s: -s.diff.rel_rms)
    dom = render(browser, out, "sort=rel_err:desc")
    assert dom.body["data-sort"] == "rel_err:desc"
    missing = [s.name for s in report.stages if s.diff is None]
    order = dom.shown()
    assert order[: len(compared)][:4] == [s.name for s in compared][:4]  # exact zeros tie: index order
    assert order[-len(missing) :] == missing  # no value sorts last, either way
    ascending = render(browser, out, "sort=rel_err:asc").shown()
    assert ascending[0] == "input" and ascending[-len(missing) :] == missing
    by_growth = render(browser, out, "sort=growth:desc").shown()
    assert by_growth[0] == "proj"  # an infinite growth is the largest, not unknown


def test_screenshot_is_not_blank(browser, pages, tmp_path):
    out, _ = pages["demo"]
    shot = tmp_path / "page.png"
    args = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--window-size=1400,1600", f"--screenshot={shot}", out.resolve().as_uri()]  # fmt: skip
    subprocess.run(args, capture_output=True, timeout=120, check=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a blank page compresses to a few KB
