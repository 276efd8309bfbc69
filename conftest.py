"""Hypothesis profiles: CI runs are reproducible, local runs keep exploring.

``HYPOTHESIS_PROFILE=ci`` (set by ``.ci/run``, or any environment with ``CI`` set) derandomizes
every property test: the same examples on every run, so a landing is never blocked by a rare
draw; the local default profile draws new examples each run, which is how such cases are found.
A case found that way is kept with ``@example`` next to its test.
"""

import os

try:
    from hypothesis import settings
except ImportError:  # an environment without the test extras (examples/whisper_pair's venv)
    settings = None

if settings is not None:
    settings.register_profile("ci", derandomize=True, print_blob=True)
    settings.register_profile("dev", print_blob=True)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
