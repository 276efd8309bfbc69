"""Diagnosis: what kind of error a stage holds (offset, scale, padding, shift...), with its parameters.

- :mod:`.diagnose`: every finding kind tested against two aligned arrays;
- :mod:`.fits`: least-squares models of the candidate from the reference;
- :mod:`.regions`: where along an axis the error is (padding, localized bands, shifts);
- :mod:`.ordering`: how findings are ordered, pruned, and which may be offered as a cause;
- :mod:`.sample` and :mod:`.sums`: a stage too large to read whole, from a window and exact sums;
- :mod:`.profile`: per-index error profiles and the worst locations (``--stage``).
"""
