"""Own error and inherited error: each stage against the candidate's module run on the reference's
inputs (a replay trace, ``trace replay``).

A stage's **total** error (reference output against candidate output) mixes what its module does
wrong with what it was fed. Its **own** error is the reference output against the candidate's
module called on the reference's recorded inputs: the module alone. Per stage:

- ``own``: the own verdict, relative error and diagnosis (:class:`OwnError`), for every compared
  stage the replay holds;
- ``inherited``: the stage is SMALL or LARGE in total but its own verdict is MATCH: its error
  comes from its inputs;
- ``below_tolerance``: the own verdict is MATCH, but the own error is far above rounding and a
  fit from input and output explains it (the exact GELU for the tanh one): a bug under the
  tolerance, named without failing;
- ``within``: a module whose own error is not MATCH (or below the tolerance) because a module it
  contains is wrong (a block whose attention is wrong): that submodule's stage. The **own errors** of a report are the
  stages whose own verdict is not MATCH and not ``within`` another: each one a place where a bug
  lives (there may be several).

With a replay, the root cause is the first stage whose own verdict is not MATCH
(:func:`own_root_cause`).

Example:
    >>> from types import SimpleNamespace as S
    >>> def stage(name, total, own): return S(name=name, verdict=S(value=total), own=OwnError(S(value=own), 0.1, []))
    >>> stages = [stage("l0.attn", "LARGE", "LARGE"), stage("l0", "LARGE", "LARGE"), stage("l1", "LARGE", "MATCH")]
    >>> mark(stages, {"l0.attn": "l0.attn", "l0": "l0", "l1": "l1"})
    >>> own_errors(stages), stages[1].own.within, stages[2].own.inherited, own_root_cause(stages)
    (['l0.attn'], 'l0.attn', True, 'l0.attn')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .findings import Finding


@dataclass
class OwnError:
    """A stage's own error: its verdict, relative error and diagnosis against the replay."""

    verdict: Any  # a Verdict
    rel_err: float | None
    diagnosis: list[Finding] = field(default_factory=list)
    note: str = ""
    inherited: bool = False
    within: str | None = None
    #: MATCH, but far above rounding and explained by a fit from input and output (exact vs tanh GELU)
    below_tolerance: bool = False

    @property
    def failing(self) -> bool:
        return self.verdict.value in ("SMALL", "LARGE")

    @property
    def flagged(self) -> bool:
        """An own error worth naming: failing, or below the tolerance with a finding that explains it."""
        return self.failing or self.below_tolerance

    def to_dict(self, json_float, json_safe) -> dict:
        out: dict = {
            "verdict": self.verdict.value,
            "rel_err": json_float(self.rel_err),
            "diagnosis": [json_safe(f) for f in self.diagnosis],
            "inherited": self.inherited,
            "within": self.within,
            "below_tolerance": self.below_tolerance,
        }
        if self.note:
            out["note"] = self.note
        return out


def _module(call: str) -> str:
    """``blocks.0.attn@2`` -> ``blocks.0.attn``."""
    return call.split("@", 1)[0]


def _contains(outer: str, inner: str) -> bool:
    """Module ``outer`` contains module ``inner`` (``""`` is the whole model)."""
    return outer != inner and (outer == "" or inner.startswith(outer + "."))


def mark(stages, modules: dict[str, str]) -> None:
    """Set ``inherited`` and ``within`` on the stages' :class:`OwnError` (module docstring).

    ``modules`` maps a stage's candidate name to the reference module call it was replayed as
    (the replay trace's record); a failing stage is ``within`` the first failing stage recorded
    before it, since its module's previous call, of a module it contains.
    """
    failing: list[tuple[str, str]] = []  # (stage name, module) of the failing stages so far
    for stage in stages:
        own = getattr(stage, "own", None)
        if own is None:
            continue
        own.inherited = stage.verdict.value in ("SMALL", "LARGE") and own.verdict.value == "MATCH"
        if not own.flagged:
            continue
        module = _module(modules.get(getattr(stage, "name_b", None) or stage.name, stage.name))
        inner = [name for name, m in failing if _contains(module, m)]
        own.within = inner[0] if inner else None
        failing = [(name, m) for name, m in failing if not _contains(module, m)]  # this call consumed them
        failing.append((stage.name, module))


def own_errors(stages) -> list[str]:
    """The stages whose own verdict is not MATCH and that no submodule explains, in order."""
    return [s.name for s in stages if getattr(s, "own", None) is not None and s.own.failing and s.own.within is None]


def below_tolerance(stages) -> list[str]:
    """The stages whose own error is MATCH but explained by a fit far above rounding (an error born
    under the tolerance), that no submodule explains, in order."""
    return [
        s.name for s in stages if getattr(s, "own", None) is not None and s.own.below_tolerance and s.own.within is None
    ]


def own_root_cause(stages) -> str | None:
    """The first stage whose own verdict is not MATCH (None when every replayed stage matches)."""
    found = own_errors(stages)
    return found[0] if found else None
