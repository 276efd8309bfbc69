"""How a module call is named in a trace: the rules every framework backend shares.

- A module at dotted ``path`` under ``prefix`` is the stage ``prefix.path``;
  the root model's own output is ``prefix``, or ``output`` with no prefix
  (:func:`stage_name`).
- Its inputs are ``<stage>.input``; the root's are ``input`` (or
  ``prefix.input``), not ``output.input`` (:func:`input_stage_name`). They
  are recorded as one value (:func:`input_value`): positional arguments as
  ``0``, ``1``..., keyword arguments by name; numbers, flags, strings and None
  are arguments, not data, and are left out.
- ``seq.0`` is both a container's first child and element 0 of its tuple
  output: when an output's flattened keys could meet a child's name, the
  output goes under ``<stage>.output`` instead (:func:`output_stage`).
- :class:`ModuleSite` holds one module's names by these rules; each framework's
  ``Site`` (:mod:`~numtrace.backends.torch_sites`, :mod:`~numtrace.backends.mlx_batch`)
  adds what it records there.

Example:
    >>> stage_name("", ""), stage_name("enc", "layers.0"), input_stage_name("", "")
    ('output', 'enc.layers.0', 'input')
    >>> site = ModuleSite("enc", "blocks.0", frozenset({"0", "attn"}))
    >>> site.stage, site.scope, site.input_stage, site.output_for(["0", "1"])
    ('enc.blocks.0', 'enc.blocks.0', 'enc.blocks.0.input', 'enc.blocks.0.output')
    >>> ModuleSite("enc", "").stage, ModuleSite("enc", "").scope, ModuleSite("", "").scope
    ('enc', 'enc', '')
    >>> output_stage("blocks.0", frozenset({"0", "attn"}), ["0", "1"])
    'blocks.0.output'
    >>> sorted(input_value((1.0, "x"), {"mask": [1], "causal": True}))
    ['mask']
"""

from __future__ import annotations

from typing import Any, Iterable


def stage_name(prefix: str, path: str) -> str:
    """The stage name of a module at ``path`` ('' for the root) under ``prefix``."""
    if not path:
        return prefix or "output"
    return f"{prefix}.{path}" if prefix else path


def input_stage_name(prefix: str, path: str) -> str:
    """The stage name of a module's inputs: ``<stage>.input``; the root's are ``input``."""
    return f"{stage_name(prefix, path)}.input" if path else stage_name(prefix, "input")


def input_value(args: tuple, kwargs: dict | None) -> dict:
    """A call's inputs as one tappable value: positional ``0``, ``1``... and keyword names."""

    def data(v: Any) -> bool:
        return v is not None and not isinstance(v, (bool, int, float, complex, str))

    value = {str(i): a for i, a in enumerate(args) if data(a)}
    value.update((k, v) for k, v in (kwargs or {}).items() if data(v))
    return value


def output_stage(stage: str, children: frozenset, keys: Iterable[str]) -> str:
    """``stage``, or ``<stage>.output`` when the output's flattened ``keys`` (more than one) could
    meet a child's name (``output_`` and so on while a child has that name too)."""
    keys = list(keys)
    if children and len(keys) > 1 and any(key.split(".", 1)[0] in children for key in keys):
        suffix = "output"
        while suffix in children:
            suffix += "_"
        return f"{stage}.{suffix}"
    return stage


class ModuleSite:
    """One module's names in a trace, the same for every framework: ``stage`` (its output),
    ``scope`` (what the modules it calls are named under: the root's is the bare ``prefix``),
    ``input_stage`` and ``children`` (names its output's keys must not take, :func:`output_stage`)."""

    __slots__ = ("stage", "scope", "input_stage", "children")

    def __init__(self, prefix: str, path: str, children: frozenset = frozenset()) -> None:
        self.stage = stage_name(prefix, path)
        self.scope = self.stage if path else prefix
        self.input_stage = input_stage_name(prefix, path)
        self.children = children

    def output_for(self, keys: Iterable[str]) -> str:
        """The stage an output of flattened ``keys`` is recorded under (:func:`output_stage`)."""
        return output_stage(self.stage, self.children, keys)
