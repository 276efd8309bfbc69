"""A first run without stumbles: missing extras, --version, help at 80 columns, progress on a terminal.

Missing optional dependencies are simulated in a subprocess by a ``sitecustomize`` that makes the
named top-level packages fail to import, as they do when not installed.
"""

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import typer.main
from typer.testing import CliRunner

import numtrace
from numtrace.backends import REGISTRY
from numtrace.cli import app

BIN = Path(sys.executable).parent
BLOCKER = """
import os, sys
_blocked = set(filter(None, os.environ.get("NUMTRACE_TEST_BLOCK", "").split(",")))
class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("first_run")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 16)).astype(np.float32)
    numtrace.save(folder / "a.safetensors", {"x": x, "y": x * 2}, order=["x", "y"])
    numtrace.save(folder / "b.safetensors", {"x": x, "y": x * 2 + 1}, order=["x", "y"])
    (folder / "script.py").write_text("import numpy, numtrace\nnumtrace.tap('x', numpy.ones(3))\n")
    inputs = {"lin.input": x, "lin": x * 2}  # a reference recorded with --inputs, as trace replay needs
    numtrace.save(folder / "ref_inputs.safetensors", inputs, order=list(inputs))
    (folder / "blocker").mkdir()
    (folder / "blocker" / "sitecustomize.py").write_text(BLOCKER)
    return folder


def trace(*args, cwd, env=None, block=""):
    environ = {**os.environ, "NUMTRACE_TEST_BLOCK": block, **(env or {})}
    if block:
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd / "blocker"), environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "numtrace", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=environ, timeout=300)


MISSING = [
    ("matplotlib", "plot", ["plot", "a.safetensors", "b.safetensors", "-o", "out.png"]),
    ("matplotlib", "plot", ["plot", "a.safetensors", "b.safetensors", "--stage", "y", "-o", "out.png"]),
    ("h5py", "hdf5", ["convert", "a.safetensors", "out.h5"]),
    ("h5py", "hdf5", ["run", "-o", "out.h5", "script.py"]),
    ("torch", "torch", ["run", "--backend", "torch", "-o", "t.safetensors", "script.py"]),
    ("mlx", "mlx", ["run", "--backend", "mlx", "-o", "t.safetensors", "script.py"]),
    ("fastai", "fastai", ["run", "--backend", "fastai", "-o", "t.safetensors", "script.py"]),
    ("torch", "torch", ["replay", "-o", "out.safetensors", "ref_inputs.safetensors", "script.py"]),
    ("mlx", "mlx", ["replay", "--backend", "mlx", "-o", "out.safetensors", "ref_inputs.safetensors", "script.py"]),
    ("fastai", "fastai", ["replay", "--backend", "fastai", "-o", "out.st", "ref_inputs.safetensors", "script.py"]),
]


@pytest.mark.parametrize(("package", "extra", "args"), MISSING, ids=[f"{p}-{a[0]}" for p, _, a in MISSING])
def test_a_missing_extra_is_one_line_naming_it(pair, package, extra, args):
    done = trace(*args, cwd=pair, block=package)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"pip install 'numtrace[{extra}]'" in lines[0]
    assert not list(pair.glob("out.*")) and not (pair / "t.safetensors").exists()


def test_a_missing_h5py_when_reading_an_hdf5_trace(pair, tmp_path):
    CliRunner().invoke(app, ["convert", str(pair / "a.safetensors"), str(tmp_path / "a.h5")])
    for args in (["diff", tmp_path / "a.h5", "b.safetensors"], ["show", tmp_path / "a.h5"]):
        done = trace(*args, cwd=pair, block="h5py")
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "pip install 'numtrace[hdf5]'" in done.stderr


def test_html_report_needs_no_extra(pair, tmp_path):
    done = trace("diff", "a.safetensors", "b.safetensors", "--html", tmp_path / "r.html", cwd=pair, block="matplotlib")
    assert done.returncode == 1, done.stderr  # a LARGE stage, and the page written with the core install
    assert (tmp_path / "r.html").read_text(encoding="utf-8").count("data:image/png;base64,") == 3


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"numtrace {numtrace.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", numtrace.__version__)


COMMANDS = [[], *([name] for name in typer.main.get_command(app).commands)]  # every command, align and replay too
PLACEHOLDER = re.compile(r"<(str|int|float|bool|path|text|integer|list\[\w+\])>|\b(TEXT|INTEGER|PATH|FLOAT)\b")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "trace")
def test_help_reads_at_80_columns(command):
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0
    text = result.stdout
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide, too_wide
    assert "<bool>" not in text and "BOOLEAN" not in text  # a flag takes no value
    assert not PLACEHOLDER.search(text), PLACEHOLDER.search(text)  # REFERENCE, not REFERENCE <str>
    assert "[[" not in text  # [STAGE], not [[STAGE]]
    usage = text.split("\n\n", 1)[0]
    arguments = text.split("Arguments:\n", 1)[1].split("\n\n", 1)[0] if "Arguments:" in text else ""
    assert "{" not in usage and "{" not in arguments, usage  # REFERENCE CANDIDATE, not {REFERENCE} {CANDIDATE}
    assert "\x1b[" not in text and "[bold" not in text and "\\[" not in text  # no markup, escaped or not
    assert "SPEC" not in text and "issue" not in text.lower()  # users read docs/, not our tracker
    assert "Usage: " in text and "--help" in text


def test_help_names_arguments_plainly():
    def usage(*command):
        result = CliRunner().invoke(app, [*command, "--help"], terminal_width=80, env={"COLUMNS": "80"})
        return result.stdout.split("\n", 1)[0]

    assert usage("diff") == "Usage: trace diff [OPTIONS] REFERENCE CANDIDATE"
    assert usage("show") == "Usage: trace show [OPTIONS] TRACE [STAGE]"
    assert usage("replay") == "Usage: trace replay [OPTIONS] REFERENCE SCRIPT [ARGS]..."


def test_replay_help_lists_the_backends_of_the_registry():
    result = CliRunner().invoke(app, ["replay", "--help"], terminal_width=200, env={"COLUMNS": "200"})
    models = [entry.name for entry in REGISTRY if entry.models]
    assert f"({', '.join(models[:-1])} or {models[-1]})" in " ".join(result.stdout.split())


def test_wrote_one_stage_is_singular(pair, tmp_path):
    done = trace("run", "-o", tmp_path / "one.safetensors", "script.py", cwd=pair)
    assert done.returncode == 0 and f"wrote 1 stage to {tmp_path / 'one.safetensors'}" in done.stderr


def test_wide_and_narrow_together_is_a_usage_error(pair):
    done = trace("diff", "a.safetensors", "b.safetensors", "--wide", "--narrow", cwd=pair)
    assert done.returncode == 2 and "--wide and --narrow" in done.stderr and "Traceback" not in done.stderr


# -- progress: on a terminal only ------------------------------------------------------------------


def test_no_progress_when_stderr_is_not_a_terminal(pair):
    done = trace("diff", "a.safetensors", "b.safetensors", "--json", cwd=pair, env={"NUMTRACE_PROGRESS_AFTER": "0"})
    assert done.returncode == 1 and done.stdout.lstrip().startswith("{")
    assert done.stderr == "" and "\x1b" not in done.stdout


def on_a_terminal(args, cwd, env):
    """Run ``trace ARGS`` with stderr on a pseudo-terminal (stdout a pipe); returns (rc, stdout, tty text)."""
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "numtrace", *map(str, args)]
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env, "TERM": "xterm", "COLUMNS": "100"},
                               stdout=subprocess.PIPE, stderr=follower, stdin=subprocess.DEVNULL)  # fmt: skip
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    stdout = process.stdout.read().decode()
    process.wait(timeout=60)
    os.close(leader)
    return process.returncode, stdout, seen.decode(errors="replace")


def test_progress_bar_on_a_terminal_for_diff(pair):
    rc, stdout, tty = on_a_terminal(["diff", "a.safetensors", "b.safetensors", "--json"], pair,
                                    {"NUMTRACE_PROGRESS_AFTER": "0"})  # fmt: skip
    assert rc == 1 and stdout.lstrip().startswith("{") and "\x1b" not in stdout  # the JSON untouched
    assert "comparing" in ANSI.sub("", tty)


def test_progress_bar_on_a_terminal_for_run(pair, tmp_path):
    rc, _, tty = on_a_terminal(["run", "-o", tmp_path / "t.safetensors", "script.py"], pair,
                               {"NUMTRACE_PROGRESS_AFTER": "0"})  # fmt: skip
    text = ANSI.sub("", tty)
    assert rc == 0 and "recording" in text and "wrote 1 stage" in text


def test_quick_work_shows_no_bar_even_on_a_terminal(pair):
    rc, _, tty = on_a_terminal(["diff", "a.safetensors", "b.safetensors", "--json"], pair, {})
    assert rc == 1 and "comparing" not in tty  # two small stages: done long before the bar's second
