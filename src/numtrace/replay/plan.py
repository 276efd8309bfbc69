"""What a replay feeds each module call of the candidate: the reference module it pairs with, and
the inputs the reference recorded for that call.

The candidate's stages are paired with the reference's as ``trace diff`` pairs them (names, the
alignment of the two executions, a map file), leaving out the reference's recorded inputs
(``trace run --inputs``: ``<module>.input``, ``<module>.input@2.0``...) and twins (a container
that only repeats a child's output is not that child). A candidate module call whose output
stages pair with the output stages of one reference module call is replayed on that call's
recorded inputs; any other is listed with the reason.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> x = np.ones((2, 3))
    >>> ref = MemoryTrace({"fc.input": x, "fc": x * 2, "fc.input@1": x * 2, "fc@1": x * 4},
    ...                   order=["fc.input", "fc", "fc.input@1", "fc@1"])
    >>> plan = ReplayPlan(ref, MemoryTrace({"model.fc": x * 2, "model.fc@1": x * 4}))
    >>> plan.target("model.fc@1", [""])
    Target(module='fc', call='@1', inputs={'': 'fc.input@1'})
    >>> plan.target("Other", [""])
    'no reference stage pairs with its output'
"""

from __future__ import annotations

from typing import NamedTuple

from ..compare.pairing.align import match_stages
from ..compare.pairing.module_inputs import recorded_inputs, split_call, without_inputs
from ..compare.pairing.names import NameMap
from ..trace import Trace


class Target(NamedTuple):
    """One reference module call: its stage name without call index, the call (``""`` or
    ``@N``), and its recorded inputs ``{key: stage}`` (key ``""`` when it had one input)."""

    module: str
    call: str
    inputs: dict[str, str]


class ReplayPlan:
    """The pairing of a candidate's stages with a reference's, for replay (module docstring)."""

    def __init__(self, reference: Trace, candidate: Trace, names: NameMap | None = None) -> None:
        found, _, _ = match_stages(reference, candidate, without_inputs(names))
        self.partner = {pair.name_b: a for a, pair in found.items() if pair.name_b is not None}
        self.inputs = recorded_inputs(list(reference.order))
        self._modules = {module for module, _ in self.inputs}
        self.reference_has_inputs = bool(self.inputs)

    def module_of(self, stage: str) -> tuple[str, str] | None:
        """The reference module call whose output ``stage`` is: ``(module, call)``, the longest
        module with recorded inputs that ``stage`` names (``""`` for an unprefixed root, whose
        output is ``output`` and inputs ``input``), or None."""
        parts = stage.split(".")
        for n in range(len(parts), 0, -1):
            head = ".".join(parts[:n])
            module, call = split_call(head)
            if module in self._modules:
                return module, call
            if n == 1 and module == "output" and "" in self._modules:  # an unprefixed root: output, input
                return "", call
        return None

    def target(self, stage: str, keys: list[str]) -> Target | str:
        """The reference call the candidate call of output ``stage`` (flattened ``keys``, ``[""]``
        for one array) replays, or why there is none."""
        stages = [f"{stage}.{key}" if key else stage for key in keys]
        partners = [self.partner[s] for s in stages if s in self.partner]
        if not partners:
            return "no reference stage pairs with its output"
        modules = {self.module_of(a) for a in partners}
        if None in modules:
            return f"the reference recorded no inputs for {partners[0]} (record it with trace run --inputs)"
        if len(modules) > 1:
            shown = ", ".join(sorted(f"{m}{c}" for m, c in modules if m is not None))  # type: ignore[misc]
            return f"its outputs pair with stages of several reference modules ({shown})"
        module, call = next(iter(modules))  # type: ignore[misc]
        inputs = self.inputs.get((module, call))
        if not inputs:
            return f"the reference recorded no inputs for call {call or '0'} of {module or 'the model'}"
        return Target(module, call, inputs)
