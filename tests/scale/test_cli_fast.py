"""`trace diff`'s fast start (numtrace/cli_fast.py) behaves exactly like the typer app it bypasses."""

from __future__ import annotations

import numpy as np
import pytest

import numtrace
from numtrace import cli
from numtrace.cli_fast import parse
from report_schema import check_cli_output

ARGS = [
    ["{a}", "{b}", "--width", "150"],
    ["--json", "{a}", "{b}"],
    ["{a}", "{b}", "--only", "mel*", "--only=enc", "--json"],
    ["{a}", "{b}", "--tol", "mel=0.5", "--fail-on", "small", "--width=120"],
    ["{a}", "{b}", "--fail-on", "never", "--width", "150"],
    ["{a}", "{b}", "--stage", "mel", "--json"],
    ["{a}", "{b}", "--map", "{missing}"],
    ["{a}", "{missing}"],
    ["{a}", "{b}", "--fail-on", "bogus"],
    ["{a}", "{b}", "--width", "wide"],
    ["{a}"],
    ["{a}", "{b}", "--nope"],
    ["{a}", "{b}", "--json=yes"],
    ["--help"],
    ["{a}", "{b}", "--only"],
]


@pytest.fixture
def paths(tmp_path):
    x = np.linspace(-10.0, 0.0, 240, dtype=np.float32).reshape(1, 8, 30)
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    numtrace.save(a, {"enc": x, "mel": x, "out": x.sum(axis=2)})
    numtrace.save(b, {"enc": x, "mel": x - np.float32(1.46), "out": x.sum(axis=2)})
    return {"a": str(a), "b": str(b), "missing": str(tmp_path / "missing.toml")}


def _main(monkeypatch, capsys, argv, fast):
    monkeypatch.setenv("NUMTRACE_CLI_FAST", "1" if fast else "0")
    monkeypatch.setenv("COLUMNS", "150")
    monkeypatch.setattr("sys.argv", ["trace", "diff", *argv])
    with pytest.raises(SystemExit) as done:
        cli.main()
    out, err = capsys.readouterr()
    check_cli_output(["diff", *argv], out, done.value.code)
    return done.value.code, out, err


@pytest.mark.parametrize("template", ARGS, ids=[" ".join(a) for a in ARGS])
def test_fast_start_equals_typer(monkeypatch, capsys, paths, template):
    argv = [arg.format(**paths) for arg in template]
    assert _main(monkeypatch, capsys, argv, fast=True) == _main(monkeypatch, capsys, argv, fast=False)


def test_what_the_fast_path_leaves_to_typer(paths):
    a, b = paths["a"], paths["b"]
    assert parse(cli.diff, [a, b])["fail_on"] is cli.FailOn.large
    for argv in ([a], [a, b, "-h"], [a, b, "--"], [a, b, "--width", "x"], [a, b, "--json=1"], [a, b, "c"]):
        assert parse(cli.diff, argv) is None, argv
