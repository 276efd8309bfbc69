"""How findings are ordered, and which are dropped as other words for a complete one.

Findings are sorted by ``explained``; exact ties (within :data:`TIE`) by
specificity (:data:`PRIORITY`). Once a finding explains :data:`COMPLETE` of
the error, the richer models after it are dropped, and the one-parameter ones
kept only when they tie. A transform that explains less than :data:`CAUSE_MIN`
is not a cause: :func:`as_causes` moves it into an ``unexplained`` finding.
Used by :func:`numtrace.compare.diagnosis.diagnose.diagnose`.

Example:
    >>> found = [Finding.of("scale", explained=1.0), Finding.of("offset", explained=1.0),
    ...          Finding.of("channel_offset", explained=1.0), Finding.of("localized", explained=0.2, wide=True)]
    >>> [f.kind for f in pruned(ordered(found))]
    ['offset', 'scale', 'localized']
"""

from __future__ import annotations

from ..findings import Finding

#: Once a finding explains this share, the models with more parameters that come after it
#: are other words for the same error (padding is also "a per-index scale of 0") and are
#: dropped; the one-parameter models (offset, scale, sign, shift) stay only when they tie.
COMPLETE = 0.99
SIMPLE_KINDS = frozenset({"offset", "scale", "sign", "shift", "constant"})
RICH_KINDS = frozenset({"affine", "channel_offset", "channel_scale", "elementwise", "layout", "proportional"})
#: Findings whose explained shares differ by less than this tie (float rounding of an exact
#: fit): the more specific comes first, and a tied one-parameter model is kept.
TIE = 1e-6
PRIORITY = (
    "padding",
    "shift",
    "sign",
    "offset",
    "scale",
    "localized",
    "constant",
    "layout",
    "proportional",
    "affine",
    "channel_offset",
    "channel_scale",
    "elementwise",
)


#: A transform (offset, scale, layout, shift...) is offered as the cause of a stage's error only
#: when it explains at least this share of it (a linear shift: of the overlap's error).
CAUSE_MIN = 0.8
#: Findings that say *where* the error is, not what transform it is: each earns its place by its
#: own test, and two of them may share a stage (two bugs), so they are never demoted.
WHERE_KINDS = frozenset({"padding", "localized"})


def cause_share(finding: Finding) -> float:
    """The share of the error a fitted finding accounts for, as a cause (0 when it has none)."""
    return float(finding.get("overlap_explained", finding.get("explained", 0.0)))


def as_causes(fitted: list[Finding], has_error: bool) -> list[Finding]:
    """``fitted`` (ordered findings) with the transforms that explain less than :data:`CAUSE_MIN`
    of the error taken out: a transform that explains half the error is not its cause. When no
    transform remains, they are kept as ``partial`` in one ``unexplained`` finding (also when
    nothing was fitted to an error at all): saying so is the finding. Findings of *where* the
    error is (:data:`WHERE_KINDS`) stay; rounding (``precision``) is left as it is.

    Example:
        >>> as_causes([Finding.of("scale", factor=-0.058, explained=0.519)], True)
        [Finding(kind='unexplained', partial=[Finding(kind='scale', factor=-0.058, explained=0.519)])]
        >>> [f.kind for f in as_causes([Finding.of("offset", explained=0.97)], True)]
        ['offset']
        >>> [f.kind for f in as_causes([Finding.of("localized", explained=0.6),
        ...                             Finding.of("localized", explained=0.4)], True)]
        ['localized', 'localized']
    """
    if any(f["kind"] == "precision" for f in fitted):
        return fitted
    weak = [f for f in fitted if f["kind"] not in WHERE_KINDS and cause_share(f) < CAUSE_MIN]
    kept = [f for f in fitted if not any(f is w for w in weak)]
    causes = [f for f in kept if f["kind"] not in WHERE_KINDS]
    if causes or not (weak or (has_error and not kept)):
        return kept
    return kept + [Finding.of("unexplained", partial=weak)]


def pruned(found: list[Finding]) -> list[Finding]:
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
        if complete is None and finding["explained"] >= COMPLETE and not finding.wide:
            complete = finding["explained"]
    return out


def ordered(found: list[Finding]) -> list[Finding]:
    """Most explaining first; exact ties by :data:`PRIORITY` (a wide band after the models)."""
    rank = {kind: float(i) for i, kind in enumerate(PRIORITY)}

    def place(f: Finding) -> float:  # a one-element "padding" is first of all a localized error
        if f.single:
            return rank["localized"] + 0.5
        return len(rank) if f.wide else rank.get(f.kind, len(rank))

    out: list[list[Finding]] = []
    for finding in sorted(found, key=lambda f: -f["explained"]):
        group = out[-1] if out and out[-1][0]["explained"] - finding["explained"] < TIE else None
        if group is None:
            out.append([finding])
        else:
            group.append(finding)
    return [f for group in out for f in sorted(group, key=place)]
