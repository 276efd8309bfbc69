"""Test-session settings shared by every test directory.

Hypothesis profiles: CI runs are reproducible, local runs keep exploring.
``HYPOTHESIS_PROFILE=ci`` (set by ``.ci/run``, or any environment with ``CI`` set) derandomizes
every property test: the same examples on every run, so a landing is never blocked by a rare
draw; the local default profile draws new examples each run, which is how such cases are found.
A case found that way is kept with ``@example`` next to its test.

Optional frameworks: ``--doctest-modules`` imports every module under the test paths. The
modules of a framework backend (and the test helpers that build its models) import that
framework, so where it is not installed they are not collected (their tests skip themselves
with ``pytest.importorskip``): ``pytest`` collects cleanly with only numtrace's core installed.
"""

import importlib.util
import os
import sys
from pathlib import Path

try:
    from hypothesis import settings
except ImportError:  # an environment without the test extras (examples/whisper_pair's venv)
    settings = None

if settings is not None:
    settings.register_profile("ci", derandomize=True, print_blob=True)
    settings.register_profile("dev", print_blob=True)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/report_schema.py, shared by every test directory
#: modules that import a framework when imported, and the framework they need
NEEDS = {
    "src/numtrace/backends/torch.py": "torch",
    "src/numtrace/backends/torch_hooks.py": "torch",
    "src/numtrace/backends/torch_sites.py": "torch",
    "src/numtrace/backends/fastai.py": "fastai",
    "src/numtrace/backends/mlx.py": "mlx",
    "src/numtrace/backends/mlx_batch.py": "mlx",
    "src/numtrace/backends/mlx_capture.py": "mlx",
    "src/numtrace/backends/mlx_compile.py": "mlx",
    "src/numtrace/backends/mlx_replay.py": "mlx",
    "src/numtrace/backends/torch_replay.py": "torch",
    "tests/backends/torch_models.py": "torch",
    "tests/backends/mlx_ports.py": "mlx",
}


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    try:
        key = collection_path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return None
    framework = NEEDS.get(key)
    return True if framework is not None and not _installed(framework) else None
