"""The module inputs a trace recorded (``trace run --inputs``): ``<module>.input``, ``input`` for
an unprefixed root, with call indices (``enc.input@2``) and keys for several inputs
(``enc.input.0``, ``enc.input.mask``).

A diff with a replay (:mod:`numtrace.compare.own`) leaves the reference's inputs out of the
pairing (:func:`without_inputs`): the candidate's module is run on them, they are not stages to
judge. So does any diff where only one side recorded inputs (:func:`inputs_on_one_side`).

Example:
    >>> recorded_inputs(["enc.input.0", "enc.input.mask", "enc", "enc.input@1"])
    {('enc', ''): {'0': 'enc.input.0', 'mask': 'enc.input.mask'}, ('enc', '@1'): {'': 'enc.input@1'}}
"""

from __future__ import annotations

import dataclasses
import re

from .names import NameMap

#: the reference's recorded module inputs, left out of the pairing
INPUT_GLOBS = ["input", "input@*", "input.*", "*.input", "*.input@*", "*.input.*"]
_INPUT_PART = re.compile(r"input(@\d+)?")


def without_inputs(names: NameMap | None, side: str = "a") -> NameMap:
    """``names`` with the recorded inputs of one side (``"a"``, the reference, or ``"b"``) ignored."""
    names = names or NameMap()
    if side == "b":
        return dataclasses.replace(names, ignore_b=list(names.ignore_b) + INPUT_GLOBS)
    return dataclasses.replace(names, ignore_a=list(names.ignore_a) + INPUT_GLOBS)


def is_recorded_input(name: str) -> bool:
    """Whether a stage is a module input that ``trace run --inputs`` recorded.

    Example:
        >>> [is_recorded_input(n) for n in ("attn.input.0", "input", "attn", "input_layernorm")]
        [True, True, False, False]
    """
    return _parse_input(name) is not None


def inputs_on_one_side(order_a: list[str], order_b: list[str]) -> str | None:
    """``"a"`` when only the reference recorded module inputs (``trace run --inputs``), ``"b"``
    when only the candidate did, else None: one side's inputs have nothing to be compared with
    (they are ignored, and the report lists them), where both sides' inputs pair as stages.

    Example:
        >>> inputs_on_one_side(["enc.input", "enc"], ["enc"]), inputs_on_one_side(["enc.input"], ["enc.input"])
        ('a', None)
    """
    has_a = any(map(is_recorded_input, order_a))
    has_b = any(map(is_recorded_input, order_b))
    return "a" if has_a and not has_b else "b" if has_b and not has_a else None


def split_call(name: str) -> tuple[str, str]:
    """``blocks.0.attn@2`` -> ``("blocks.0.attn", "@2")``; ``fc`` -> ``("fc", "")``."""
    base, at, call = name.rpartition("@")
    return (base, at + call) if at and call.isdigit() else (name, "")


def recorded_inputs(order: list[str]) -> dict[tuple[str, str], dict[str, str]]:
    """``{(module, call): {key: stage}}`` of the input stages in a trace's order (key ``""``
    when the call had one input)."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for stage in order:
        parsed = _parse_input(stage)
        if parsed is not None:
            module, call, key = parsed
            found.setdefault((module, call), {})[key] = stage
    return found


def _parse_input(stage: str) -> tuple[str, str, str] | None:
    """``(module, call, key)`` of an input stage (at the leftmost ``input`` part followed by a
    call index, a key or the end), None for any other stage."""
    parts = stage.split(".")
    for n, part in enumerate(parts):
        match = _INPUT_PART.fullmatch(part)
        if match is not None:
            return ".".join(parts[:n]), match.group(1) or "", ".".join(parts[n + 1 :])
    return None
