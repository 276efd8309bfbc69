"""Helpers of the scale tests (imported as ``scaling``; pytest puts this directory on sys.path)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from report_schema import check_cli_output

BIN = Path(sys.executable).parent


@pytest.fixture
def trace_run():
    """Run the installed `trace` console script in a subprocess: ``trace_run(*args)``."""
    exe = shutil.which("trace", path=str(BIN)) or shutil.which("trace")
    if exe is None:
        pytest.skip("the `trace` console script is not installed (pip install -e .)")

    def _run(*args, timeout=300, **kwargs):
        env = {**os.environ, "COLUMNS": "200"}
        result = subprocess.run(
            [exe, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout, **kwargs
        )
        check_cli_output(args, result.stdout, result.returncode)
        return result

    return _run
