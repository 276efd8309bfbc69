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
    from hypothesis import HealthCheck, settings
except ImportError:  # an environment without the test extras (examples/whisper_pair's venv)
    settings = None

if settings is not None:
    # parent: hypothesis' own defaults. Without it a profile inherits the loaded one, which hypothesis
    # makes its own derandomized "ci" wherever it detects CI (CI, GITHUB_ACTIONS...): "dev" would be too
    settings.register_profile(
        "ci",
        settings.get_profile("default"),
        derandomize=True,
        deadline=None,  # a loaded CI machine must not fail a test on timing
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile("dev", settings.get_profile("default"), print_blob=True)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/report_schema.py, shared by every test directory
#: where the modules that import a framework when imported live: numtrace's backends and the tests'
#: helpers that build models; which framework each needs follows from its name and the backend
#: registry (``numtrace.backends.framework_of``: ``torch_hooks.py`` and ``torch_models.py`` need torch)
FRAMEWORK_MODULES = ("src/numtrace/backends", "tests/backends")


def _needs(key: str) -> str | None:
    """The framework the file ``key`` (relative to the root) imports when imported, or None."""
    path = Path(key)
    if path.suffix != ".py" or path.parent.as_posix() not in FRAMEWORK_MODULES:
        return None
    from numtrace.backends import framework_of

    return framework_of(path.stem)


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
    framework = _needs(key)
    return True if framework is not None and not _installed(framework) else None
