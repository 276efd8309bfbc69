"""Hypothesis profiles for this suite: CI runs are reproducible, local runs keep exploring.

This directory is a rootdir of its own, so the repository's conftest.py is not read here.
``HYPOTHESIS_PROFILE=ci`` (set by the repository's ``.ci/run``), or any environment with ``CI``
set, derandomizes the property test: the same clips on every run. Without it each run draws new
clips, which is how a rare failing one is found (keep it with ``@example``).
"""

import os

from hypothesis import HealthCheck, settings

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
