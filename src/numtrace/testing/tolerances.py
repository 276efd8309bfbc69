"""Tolerances as test code writes them: a number, a Tolerance, a dict of globs, a table.

Every form becomes a :class:`~numtrace.compare.ToleranceTable` (the rule of
``trace diff --tol`` and ``--tol-file``): glob rules match stage names with
fnmatch, the LAST matching rule wins, ``default`` applies to every floating
stage no rule names, and stages nothing names keep numtrace's default
(``sqrt(eps)`` of the coarser dtype, atol relative to the reference's peak).

Accepted forms:

- ``None``: numtrace's defaults.
- ``1e-3``: rtol for every floating stage (atol stays relative to the peak).
- ``Tolerance(1e-3, atol=1e-6)``: that tolerance for every floating stage.
- ``"mel=1e-2"`` or a list of such ``--tol`` strings.
- a dict, in order, later entries winning, as in ``[tool.numtrace]``:
  ``{"default": 1e-4, "mel": {"rtol": 1e-3}, "db": {"atol": 0.01}, "enc.*": "rtol=1e-3,atol=1e-6"}``.
  A value is a number (rtol), a ``Tolerance``, a ``{rtol, atol}`` dict (rtol
  defaults to 0: ``{"atol": 0.01}`` is purely absolute) or a ``--tol`` string.
- ``{"rtol": R, "atol": A}`` (only those keys): one tolerance for every floating stage.
- a ``ToleranceTable``, used as it is.

Example:
    >>> table = tolerance_table({"default": 1e-4, "mel": {"atol": 0.01}})
    >>> table.lookup("mel", "float32", "float32"), table.lookup("enc", "float32", "float32")
    (Tolerance(rtol=0.0, atol=0.01), Tolerance(rtol=0.0001, atol=None))
    >>> merge_tables(table, tolerance_table(1e-2)).lookup("enc", "float32", "float32")
    Tolerance(rtol=0.01, atol=None)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

from ..compare.verdict import Tolerance, ToleranceTable, parse_tol_option, spec_keys, unknown_key
from ..errors import ToleranceError

__all__ = ["tolerance_table", "tolerance_spec", "merge_tables"]


def tolerance_spec(value: object, where: str = "tolerance") -> Tolerance:
    """One tolerance value (number, Tolerance, {rtol, atol} dict or ``--tol`` string) as a Tolerance."""
    if isinstance(value, Tolerance):
        return value
    problem = ""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:  # type: ignore[operator]  # numbers.Real declares only < and <=
            return Tolerance(float(value))
    elif isinstance(value, str):
        try:
            glob, spec = parse_tol_option(value)
        except ToleranceError:
            glob = ""
        if glob is None:
            return spec
        problem = unknown_key(spec_keys(value))
    elif isinstance(value, Mapping) and value and set(value) <= {"rtol", "atol"}:
        try:
            return Tolerance(value.get("rtol", 0.0), value.get("atol"))
        except ToleranceError as err:
            raise ToleranceError(f"{where}: {err}") from None
    elif isinstance(value, Mapping):
        problem = unknown_key(value)
    raise ToleranceError(
        f"{where}: bad tolerance {value!r}; {problem + '; ' if problem else ''}expected a number (rtol), a Tolerance, "
        "{'rtol': R, 'atol': A} (either key; rtol defaults to 0) or a string like 'rtol=1e-3,atol=1e-6'"
    )


def tolerance_table(tolerance: object = None, where: str = "tolerance") -> ToleranceTable | None:
    """Any accepted form (see the module docstring) as a ToleranceTable; None stays None."""
    if tolerance is None or isinstance(tolerance, ToleranceTable):
        return tolerance
    if isinstance(tolerance, str):
        return ToleranceTable.from_options([tolerance])
    if isinstance(tolerance, (list, tuple)) and all(isinstance(item, str) for item in tolerance):
        return ToleranceTable.from_options(list(tolerance))
    table = ToleranceTable()
    if isinstance(tolerance, Mapping) and not _is_spec(tolerance):
        for glob, value in tolerance.items():
            if not isinstance(glob, str) or not glob:
                raise ToleranceError(f"{where}: stage globs must be non-empty strings, got {glob!r}")
            spec = tolerance_spec(value, f"{where} for {glob!r}")
            table.add(None if glob == "default" else glob, spec)
        return table
    table.add(None, tolerance_spec(tolerance, where))
    return table


def _is_spec(mapping: Mapping) -> bool:
    """``{"rtol": .., "atol": ..}`` is one tolerance for every stage, not two globs."""
    return bool(mapping) and set(mapping) <= {"rtol", "atol"}


def merge_tables(*tables: ToleranceTable | None) -> ToleranceTable | None:
    """One table: rules of later tables win over earlier ones, and so does their default."""
    present = [table for table in tables if table is not None]
    if not present:
        return None
    merged = ToleranceTable()
    for table in present:
        merged.rules.extend(table.rules)
        if table.default is not None:
            merged.default = table.default
    return merged
