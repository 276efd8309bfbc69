"""The example suite examples/parity_tests runs green as it is, and red with each planted bug.

It runs in a subprocess, as a user runs it (`pytest examples/parity_tests`), from
an empty directory so that hypothesis' example database starts empty.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "parity_tests"

pytestmark = pytest.mark.slow


def run_example(tmp_path, bug=""):
    env = {**os.environ, "BUG": bug, "COLUMNS": "200"}
    command = [sys.executable, "-m", "pytest", str(EXAMPLE), "-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout + result.stderr


def test_the_example_passes_as_it_is(tmp_path):
    code, out = run_example(tmp_path)
    assert code == 0, out
    assert "4 passed" in out


def test_the_example_catches_the_frame_count_bug(tmp_path):
    code, out = run_example(tmp_path, "frames")
    assert code == 1, out
    assert "4 failed" in out
    # 312 frames in the reference, 313 in the port: the first divergence is the framing
    assert "E       First divergence: frontend.frames (SMALL)" in out
    assert "shape (312, 256) vs (313, 256)" in out
    assert "samples=1," in out  # shrunk to the shortest clip


def test_the_example_catches_the_zero_db_padding_bug(tmp_path):
    code, out = run_example(tmp_path, "padding")
    assert code == 1, out
    assert "3 failed, 1 passed" in out  # the 312-frame clip needs no padding
    assert "E       First divergence: frontend.features (LARGE)" in out
    assert "E         4 MATCH   frontend.db" in out  # everything before the padding matches
    assert "padding" in out.split("E       First divergence: frontend.features (LARGE)")[1].split("worst elements")[0]


PROBE = """
from hypothesis import settings


def pytest_sessionfinish(session):
    print("derandomize:", settings.default.derandomize)
"""


@pytest.mark.parametrize(
    "profile, ci, derandomized",
    [("ci", None, True), ("dev", None, False), (None, "true", True), (None, None, False), ("dev", "true", False)],
)
def test_the_property_test_draws_the_same_clips_in_ci_and_new_ones_locally(tmp_path, profile, ci, derandomized):
    """The example is a rootdir of its own: the root conftest.py's CI profile never reached it.

    A machine that looks like CI to hypothesis (``CI`` set) makes hypothesis load its own derandomized
    profile first: an explicit ``HYPOTHESIS_PROFILE=dev`` must still explore there.
    """
    (tmp_path / "profile_probe.py").write_text(PROBE)  # `python -m pytest` imports it from the cwd
    env = {key: value for key, value in os.environ.items() if key not in ("HYPOTHESIS_PROFILE", "CI")}
    env.update({"HYPOTHESIS_PROFILE": profile} if profile else {})
    env.update({"CI": ci} if ci else {})
    command = [sys.executable, "-m", "pytest", str(EXAMPLE), "-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
    command += ["-p", "profile_probe", "-q", "-s", "-k", "odd_lengths"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"derandomize: {derandomized}" in result.stdout
