"""Options that apply to no stage: a ``--tol`` rule or ``--map`` entry that matches nothing.

A tolerance written for ``decoder.*`` when the stages are ``model.decoder.*``, or a map entry with
a typo, changes nothing, and a diff that then passes has passed on something nobody asked for.
:func:`unused_options` names each such entry with the closest stage names, for one clear line and
exit status 2 (``trace diff``). Tolerances are looked up by the reference's stage names, so a rule
must match one of those.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare.verdict import ToleranceTable
    >>> a = MemoryTrace({"model.decoder.out": np.zeros(1)})
    >>> unused_options(a, a, ToleranceTable.from_options(["decoder.*=atol=1"]), None)
    ["tolerance rule 'decoder.*' matches no stage of the reference (closest: model.decoder.out)"]
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from ...errors import UsageError
from ..verdict import ToleranceTable, did_you_mean
from .names import NameMap, closest


def unused_options(reference, candidate, tolerances: ToleranceTable | None, names: NameMap | None) -> list[str]:
    """One sentence per tolerance rule or map entry that matches no stage (empty when all apply)."""
    names_a, names_b = list(reference.order), list(candidate.order)
    problems = []
    for glob in tolerances.unmatched(names_a) if tolerances is not None else []:
        text = f"tolerance rule {glob!r} matches no stage of the reference"
        in_b = [name for name in names_b if fnmatchcase(name, glob)]
        if in_b:
            text += f" (it matches the candidate's {in_b[0]}: tolerances are looked up by the reference's stage names)"
        else:
            hint = closest(glob, names_a)
            text += f" (closest: {', '.join(hint)})" if hint else did_you_mean(glob, ["rtol", "atol"])
        problems.append(text)
    if names is not None:
        for entry, role, hint in names.unused(names_a, names_b):
            where = f"{names.source}: " if names.source else ""
            text = f"{where}{entry} matches no stage of " + ("either trace" if role == "either" else f"the {role}")
            problems.append(text + (f" (closest: {', '.join(hint)})" if hint else ""))
    return problems


def check_options(reference, candidate, tolerances: ToleranceTable | None, names: NameMap | None) -> None:
    """:func:`unused_options` as one :class:`~numtrace.errors.UsageError` (for ``trace diff``, ``trace plot``)."""
    problems = unused_options(reference, candidate, tolerances, names)
    if problems:
        raise UsageError("; ".join(problems))
