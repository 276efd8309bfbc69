"""Findings: what kind of error a stage holds, as typed, immutable values that serialise to the report.

A :class:`Finding` is one entry of a stage's ``diagnosis`` (the report's
vocabulary: docs/report.md): its ``kind`` (``offset``, ``scale``, ``padding``,
``unexplained``...) and the kind's own fields (``value``, ``factor``, ``axis``,
``start``, ``stop``...), with the shares every fitted finding carries
(``explained``, ``residual``) and where it was seen (``source``: ``sample``,
``sketch``). It is built by keyword (:meth:`Finding.of`), never changed (a
new one comes from :meth:`Finding.replace`), and :meth:`Finding.to_dict` is
its JSON. It also reads like the JSON object it stands for (``f["axis"]``,
``f.get("explained")``, ``dict(f)``, equality with such a dict), so a report
consumer sees one shape whether it holds the object or the JSON.

Two flags order findings and never reach the JSON: ``wide`` (a band over most
of an axis: listed after the models) and ``single`` (a one-element padding:
listed after the localized finding that says the same).

Example:
    >>> f = Finding.of("offset", value=-1.46, explained=0.999, residual=0.01)
    >>> f.kind, f["value"], f.explained, f == {"kind": "offset", "value": -1.46, "explained": 0.999, "residual": 0.01}
    ('offset', -1.46, 0.999, True)
    >>> f.replace(source="sample").to_dict()
    {'kind': 'offset', 'value': -1.46, 'explained': 0.999, 'residual': 0.01, 'source': 'sample'}
    >>> f
    Finding(kind='offset', value=-1.46, explained=0.999, residual=0.01)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, eq=False)
class Finding(Mapping):
    """One finding (module docstring). ``params`` holds the kind's fields in the report's order."""

    kind: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    wide: bool = False
    single: bool = False

    @classmethod
    def of(cls, kind: str, *, wide: bool = False, single: bool = False, **fields: Any) -> "Finding":
        """A finding of ``kind`` with its fields, by keyword."""
        return cls(kind, MappingProxyType(dict(fields)), wide, single)

    @property
    def explained(self) -> float | None:
        """The share of the stage's error it accounts for (0..1), None for findings that are no fit."""
        value = self.params.get("explained")
        return None if value is None else float(value)

    @property
    def residual(self) -> float | None:
        """The relative error left after it, on the scale of ``diff.rel_rms``."""
        value = self.params.get("residual")
        return None if value is None else float(value)

    @property
    def source(self) -> str | None:
        """Where it was seen when not in the whole stage: ``sample`` (a window) or ``sketch``."""
        return self.params.get("source")

    def replace(self, *, drop: tuple[str, ...] = (), **fields: Any) -> "Finding":
        """A copy with ``fields`` set (added at the end when new) and the ``drop`` keys left out."""
        params = {key: value for key, value in self.params.items() if key not in drop}
        params.update(fields)
        return Finding(self.kind, MappingProxyType(params), self.wide, self.single)

    def to_dict(self) -> dict:
        """The finding as the report's JSON object (nested findings, as in ``partial``, too)."""
        return {"kind": self.kind, **{key: _plain(value) for key, value in self.params.items()}}

    def __getitem__(self, key: str) -> Any:
        return self.kind if key == "kind" else self.params[key]

    def __iter__(self) -> Iterator[str]:
        yield "kind"
        yield from self.params

    def __len__(self) -> int:
        return 1 + len(self.params)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self.to_dict() == {key: _plain(value) for key, value in other.items()}
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a dict, so unhashable like one

    def __repr__(self) -> str:
        fields = "".join(f", {key}={value!r}" for key, value in self.params.items())
        return f"Finding(kind={self.kind!r}{fields})"


def _plain(value: Any) -> Any:
    if isinstance(value, Finding):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
