"""How findings are ordered, and which are dropped as other words for a complete one.

Findings are sorted by ``explained``; exact ties (within :data:`TIE`) by
specificity (:data:`PRIORITY`). Once a finding explains :data:`COMPLETE` of
the error, the richer models after it are dropped, and the one-parameter ones
kept only when they tie. Used by :func:`numtrace.compare.diagnose.diagnose`.

Example:
    >>> found = [{"kind": "scale", "explained": 1.0}, {"kind": "offset", "explained": 1.0},
    ...          {"kind": "channel_offset", "explained": 1.0}, {"kind": "localized", "explained": 0.2, "_wide": True}]
    >>> [f["kind"] for f in pruned(ordered(found))]
    ['offset', 'scale', 'localized']
"""

from __future__ import annotations

#: Once a finding explains this share, the models with more parameters that come after it
#: are other words for the same error (padding is also "a per-index scale of 0") and are
#: dropped; the one-parameter models (offset, scale, sign, shift) stay only when they tie.
COMPLETE = 0.99
SIMPLE_KINDS = frozenset({"offset", "scale", "sign", "shift", "constant"})
RICH_KINDS = frozenset({"affine", "channel_offset", "channel_scale", "elementwise", "layout", "proportional"})
#: Findings whose explained shares differ by less than this tie (float rounding of an exact
#: fit): the more specific comes first, and a tied one-parameter model is kept.
TIE = 1e-6
PRIORITY = ("padding", "shift", "sign", "offset", "scale", "localized", "constant", "layout", "proportional",
            "affine", "channel_offset", "channel_scale", "elementwise")


def pruned(found: list[dict]) -> list[dict]:
    """Drop whole-stage models that come after a finding that already explains it all."""
    out, complete = [], None
    for finding in found:
        kind = finding["kind"]
        if complete is not None:
            if kind in RICH_KINDS:
                continue
            if kind in SIMPLE_KINDS and finding["explained"] < complete - TIE:
                continue
        out.append(finding)
        if complete is None and finding["explained"] >= COMPLETE and not finding.get("_wide"):
            complete = finding["explained"]
    return [{k: v for k, v in f.items() if not k.startswith("_")} for f in out]


def ordered(found: list[dict]) -> list[dict]:
    """Most explaining first; exact ties by :data:`PRIORITY` (a wide band after the models)."""
    rank = {kind: float(i) for i, kind in enumerate(PRIORITY)}

    def place(f: dict) -> float:  # a one-element "padding" is first of all a localized error
        if f.get("_single"):
            return rank["localized"] + 0.5
        return len(rank) if f.get("_wide") else rank.get(f["kind"], len(rank))

    out: list[dict] = []
    for finding in sorted(found, key=lambda f: -f["explained"]):
        group = out[-1] if out and out[-1][0]["explained"] - finding["explained"] < TIE else None
        if group is None:
            out.append([finding])
        else:
            group.append(finding)
    return [f for group in out for f in sorted(group, key=place)]
