"""Pairing: which stage of the candidate is which stage of the reference, and how their shapes line up.

- :mod:`.align`: pairs stage names (exact, map file, normalised, tuple outputs), in execution order;
- :mod:`.names`: normalised names and the map file (``--map``);
- :mod:`.layout`: lines up two stages whose shapes differ (singleton axes, permuted axes, one axis
  longer);
- :mod:`.options`: ``--tol`` and ``--map`` entries that match no stage.
"""
