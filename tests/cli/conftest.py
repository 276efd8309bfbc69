import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import numtrace
from numtrace.cli import app
from report_schema import check_cli_output

BIN = Path(sys.executable).parent


@pytest.fixture
def invoke():
    """Run the typer app in-process; returns (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def _invoke(*args: str):
        result = runner.invoke(app, [str(a) for a in args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        check_cli_output(args, result.stdout, result.exit_code)
        return result.exit_code, result.stdout, result.stderr

    return _invoke


@pytest.fixture
def trace_cmd():
    """Run the installed `trace` console script in a subprocess."""
    exe = shutil.which("trace", path=str(BIN)) or shutil.which("trace")
    if exe is None:
        pytest.skip("the `trace` console script is not installed (pip install -e .)")

    def _run(*args: str, cwd=None):
        env = {**os.environ, "COLUMNS": "200"}
        result = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)
        check_cli_output(args, result.stdout, result.returncode)
        return result

    return _run


def mel_like(shape=(1, 80, 50), seed=0):
    rng = np.random.default_rng(seed)
    return (-10.0 + 10.0 * rng.random(shape)).astype(np.float32)


@pytest.fixture
def traces(tmp_path):
    """A reference and candidates: identical, with an offset in one stage, and with a tiny drift."""
    enc = np.random.default_rng(1).standard_normal((4, 16)).astype(np.float32)
    mel = mel_like()
    paths = {}
    for label, final in {
        "ref": mel,
        "same": mel.copy(),
        "offset": mel - 1.46,
        "drift": mel * (1 + 2e-3),
    }.items():
        path = tmp_path / f"{label}.safetensors"
        numtrace.save(
            path,
            {"encoder.out": enc, "decoder.final_proj": final, "decoder.vocoder": final * 2},
            order=["encoder.out", "decoder.final_proj", "decoder.vocoder"],
        )
        paths[label] = path
    return paths
