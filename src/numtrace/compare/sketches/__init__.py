"""Sketches: stats-only traces (``trace run --stats``) and their comparison.

- :mod:`.format`: a stage's sketch (statistics, channel means, hash), written and read;
- :mod:`.diff`: a diff when either trace is stats-only (statistics against the tolerance);
- :mod:`.detail`: one stage compared by sketch (``trace diff --stage``).
"""
