"""Pair the stages of two traces: exact names, then mapped, normalised and tuple names.

Passes, each over the stages the earlier ones left unpaired:

1. ``exact`` / ``mapped``: equal names once the map file's prefixes are
   stripped and its renames applied (``exact`` when neither name changed).
2. ``normalized``: equal :func:`~numtrace.compare.pairing.names.normalize` keys
   (``decoder.finalProj`` meets ``decoder.final_proj``, ``enc.layers.0`` meets
   ``enc.0``); a key shared by two unpaired stages of one side pairs nothing.
3. ``tuple``: a flattened first output ``x.0`` meets a single output ``x``
   (``x@1.0`` meets ``x@1``: call indices meet call indices).

Stages the map file ignores take no part. Order of the pairs: the reference's
execution order, reference-only stages in place; candidate-only stages at the
end, in the candidate's order. When the reference has no stored order (a file
written without ``numtrace.order``) but the candidate has one, the paired
stages follow the candidate's order and the reference's other stages come
after them in natural order.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> a = MemoryTrace({"enc": np.zeros(1), "dec.final_proj": np.zeros(1)})
    >>> b = MemoryTrace({"enc": np.zeros(1), "dec/finalProj": np.zeros(1), "vocoder": np.zeros(1)})
    >>> [(p.name_a, p.name_b, p.how) for p in align(a, b)]
    [('enc', 'enc', 'exact'), ('dec.final_proj', 'dec/finalProj', 'normalized'), (None, 'vocoder', 'missing')]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from ...errors import UsageError
from ...trace import Trace, natural_sorted
from .names import NameMap, as_name_map, normalize, tuple_stem

HOW_NOTES = {
    "mapped": "paired by the map file",
    "normalized": "paired by normalised name",
    "tuple": "paired as first output x.0 with single output x",
}


@dataclass(frozen=True)
class Pair:
    """A reference stage and its candidate counterpart; None on the side that lacks it.

    ``how`` says how the names were paired: ``exact``, ``mapped``,
    ``normalized``, ``tuple``, or ``missing`` for a one-sided stage (it takes
    no part in equality, so ``Pair("x", None)`` equals any one-sided pair of x).
    """

    name_a: str | None
    name_b: str | None
    how: str = field(default="exact", compare=False)

    @property
    def name(self) -> str:
        """The pair's display name: the reference's, else the candidate's."""
        return self.name_a if self.name_a is not None else self.name_b  # type: ignore[return-value]

    @property
    def note(self) -> str:
        """A sentence for a pairing that was not exact ("" otherwise)."""
        return HOW_NOTES.get(self.how, "")


def match_names(names_a: list[str], names_b: list[str], names: NameMap | None = None) -> dict[str, tuple[str, str]]:
    """``{reference name: (candidate name, how)}`` for every pair found (module docstring).

    Example:
        >>> match_names(["lstm.0", "lstm.1", "x@1"], ["lstm", "X@1"])
        {'x@1': ('X@1', 'normalized'), 'lstm.0': ('lstm', 'tuple')}
    """
    names = names or NameMap()
    free_a = [n for n in names_a if not names.ignores(n, "a")]
    free_b = [n for n in names_b if not names.ignores(n, "b")]
    pairs: dict[str, tuple[str, str]] = {}

    def run(key_a, key_b, how_of) -> None:
        nonlocal free_a, free_b
        index_b: dict[str, list[str]] = {}
        for name in free_b:
            index_b.setdefault(key_b(name), []).append(name)
        count_a: dict[str, int] = {}
        for name in free_a:
            count_a[key_a(name)] = count_a.get(key_a(name), 0) + 1
        for name in free_a:
            key = key_a(name)
            found = index_b.get(key, [])
            if key is None or len(found) != 1 or count_a[key] != 1:
                continue
            pairs[name] = (found[0], how_of(name, found[0]))
        taken = {b for b, _ in pairs.values()}
        free_a = [n for n in free_a if n not in pairs]
        free_b = [n for n in free_b if n not in taken]

    run(names.key_a, names.key_b, lambda a, b: "exact" if a == b else "mapped")
    run(lambda n: normalize(names.key_a(n)), lambda n: normalize(names.key_b(n)), lambda a, b: "normalized")
    run(lambda n: tuple_stem(normalize(names.key_a(n))), lambda n: normalize(names.key_b(n)), lambda a, b: "tuple")
    run(lambda n: normalize(names.key_a(n)), lambda n: tuple_stem(normalize(names.key_b(n))), lambda a, b: "tuple")
    return pairs


def ignored(reference: Trace, candidate: Trace, names: NameMap | None = None) -> dict[str, list[str]]:
    """The stages the map file drops, per side: ``{"a": [...], "b": [...]}``."""
    names = names or NameMap()
    return {
        "a": [n for n in reference.order if names.ignores(n, "a")],
        "b": [n for n in candidate.order if names.ignores(n, "b")],
    }


def align(reference: Trace, candidate: Trace, only: list[str] | None = None, names=None) -> list[Pair]:
    """Pairs of stages in execution order (see the module docstring).

    ``only`` is a list of fnmatch globs; a pair is kept when either of its names
    matches one of them (None or an empty list keeps every pair). ``names`` is
    a :class:`NameMap`, a map-file path, or None.

    Example:
        >>> import numpy as np
        >>> from numtrace.trace import MemoryTrace
        >>> t = MemoryTrace({"enc": np.zeros(1), "dec.0": np.zeros(1), "dec.1": np.zeros(1)})
        >>> [p.name for p in align(t, t, only=["dec.*"])]
        ['dec.0', 'dec.1']
    """
    names = as_name_map(names)
    order_a, order_b = list(reference.order), list(candidate.order)
    matched = match_names(order_a, order_b, names)
    paired_b = {b for b, _ in matched.values()}
    if not reference.has_order and candidate.has_order:
        by_b = {b: a for a, (b, _) in matched.items()}
        shared = [by_b[b] for b in order_b if b in by_b]
        order_a = shared + natural_sorted(n for n in order_a if n not in matched)
    pairs = []
    for name in order_a:
        if names.ignores(name, "a"):
            continue
        if name in matched:
            name_b, how = matched[name]
            pairs.append(Pair(name, name_b, how))
        else:
            pairs.append(Pair(name, None, "missing"))
    pairs += [Pair(None, n, "missing") for n in order_b if n not in paired_b and not names.ignores(n, "b")]
    if only:
        globs = list(only)

        def keep(name: str | None) -> bool:
            return name is not None and any(fnmatchcase(name, glob) for glob in globs)

        pairs = [pair for pair in pairs if keep(pair.name_a) or keep(pair.name_b)]
    return pairs


def find_pair(pairs: list[Pair], name: str) -> Pair | None:
    """The pair whose reference or candidate name is ``name`` (reference names first)."""
    for pair in pairs:
        if pair.name_a == name:
            return pair
    for pair in pairs:
        if pair.name_b == name:
            return pair
    return None


def stage_pair(reference: Trace, candidate: Trace, name: str, map=None) -> Pair | None:  # noqa: A002
    """The pair of the stage called ``name`` on either side (after name alignment), or None."""
    return find_pair(align(reference, candidate, None, as_name_map(map)), name)


def paired_stage(reference: Trace, candidate: Trace, name: str, map=None, what: str = "compare") -> Pair:  # noqa: A002
    """:func:`stage_pair`, or a UsageError when stage ``name`` is in neither trace or in one only.

    Example:
        >>> import numpy as np
        >>> from numtrace.trace import MemoryTrace
        >>> paired_stage(MemoryTrace({"x": np.zeros(1)}), MemoryTrace({"y": np.zeros(1)}), "x")
        Traceback (most recent call last):
        ...
        numtrace.errors.UsageError: stage 'x' is only in the reference: nothing to compare
    """
    pair = stage_pair(reference, candidate, name, map)
    if pair is None:
        raise UsageError(f"no stage {name!r} in either trace; `trace diff A B` lists the stages")
    if pair.name_a is None or pair.name_b is None:
        side = "reference" if pair.name_a is not None else "candidate"
        raise UsageError(f"stage {name!r} is only in the {side}: nothing to {what}")
    return pair
