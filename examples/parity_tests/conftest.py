"""Hypothesis profiles for this suite: CI runs are reproducible, local runs keep exploring.

This directory is a rootdir of its own, so the repository's conftest.py is not read here.
``HYPOTHESIS_PROFILE=ci`` (set by the repository's ``.ci/run``), or any environment with ``CI``
set, derandomizes the property test: the same clips on every run. Without it each run draws new
clips, which is how a rare failing one is found (keep it with ``@example``).
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
