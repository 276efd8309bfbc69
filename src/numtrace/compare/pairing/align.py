"""Pair the stages of two traces: names first, then an alignment of the two executions, then twins.

Passes, each over the stages the earlier ones left unpaired:

1. ``exact`` / ``mapped``: equal names once the map file's prefixes are
   stripped and its renames applied (``exact`` when neither name changed).
2. ``normalized``: equal :func:`~numtrace.compare.pairing.names.normalize` keys
   (``decoder.finalProj`` meets ``decoder.final_proj``, ``enc.layers.0`` meets
   ``enc.0``); a key shared by two unpaired stages of one side pairs nothing.
3. ``tuple``: a flattened first output ``x.0`` meets a single output ``x``
   (``x@1.0`` meets ``x@1``: call indices meet call indices).
4. ``aligned``: the two executions aligned in order, on the evidence of names, shapes and
   values (:mod:`numtrace.compare.pairing.sequence`): ``mlp.0`` meets ``mlp1``, ``mod3.out``
   meets ``Mod3.output``; each such pair has a score and says what it rests on.
5. ``twin``: a stage still unpaired that repeats an earlier stage of its own trace (a
   ``Sequential``'s output is its last layer's; :mod:`numtrace.compare.pairing.twins`) is
   paired through that stage, and says so ("= mlp.2").

A module input recorded by ``trace run --inputs`` (``attn.input.0``) pairs only with an input
in passes 2 to 5: the input of a rotation has the shape of its output and, at the first
position, its values; aligned with the other side's output, it would take that output's place.

Passes 2 to 4 are automatic: a map file with ``automatic = false`` (what ``trace align``
writes) leaves only its own renames and exact names. Stages the map file ignores take no part.
Order of the pairs: the reference's execution order, reference-only stages in place (a
candidate-side twin right after the pair of the stage it repeats); candidate-only stages at
the end, in the candidate's order. When the reference has no stored order (a file
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
from .evidence import Signature
from .module_inputs import is_recorded_input
from .names import NameMap, as_name_map, normalize, tuple_stem
from .sequence import Stage, align_leftovers
from .twins import find_twins

HOW_NOTES = {
    "mapped": "paired by the map file",
    "normalized": "paired by normalised name",
    "tuple": "paired as first output x.0 with single output x",
}
#: stages larger than this give the alignment a signature of their first chunk only
SIGNATURE_READ_MAX = 1 << 22


@dataclass(frozen=True)
class Pair:
    """A reference stage and its candidate counterpart; None on the side that lacks it.

    ``how`` says how the names were paired: ``exact``, ``mapped``, ``normalized``, ``tuple``,
    ``aligned`` (with ``score`` in [0, 1] and ``evidence`` in words), ``twin`` (``twin`` is
    ``(side, stage)``: the stage of that side this one repeats), or ``missing`` for a one-sided
    stage (which may still have a ``twin``). Only the names take part in equality, so
    ``Pair("x", None)`` equals any one-sided pair of x.
    """

    name_a: str | None
    name_b: str | None
    how: str = field(default="exact", compare=False)
    score: float | None = field(default=None, compare=False)
    evidence: str = field(default="", compare=False)
    twin: tuple[str, str] | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """The pair's display name: the reference's, else the candidate's."""
        return self.name_a if self.name_a is not None else self.name_b  # type: ignore[return-value]

    @property
    def note(self) -> str:
        """A sentence for a pairing that was not exact ("" otherwise)."""
        if self.how == "aligned":
            return f"paired by alignment (score {self.score:.2f}: {self.evidence})"
        if self.twin is not None:
            side = "reference" if self.twin[0] == "a" else "candidate"
            through = ", paired through it" if self.how == "twin" else ""
            return f"= {self.twin[1]} (the {side}'s same values){through}"
        return HOW_NOTES.get(self.how, "")


def match_names(names_a: list[str], names_b: list[str], names: NameMap | None = None) -> dict[str, tuple[str, str]]:
    """``{reference name: (candidate name, how)}`` for every pair the name passes find (1 to 3 of
    the module docstring; with ``automatic = false`` in the map, pass 1 alone).

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
        keys = {name: key_a(name) for name in free_a}
        count_a: dict[str, int] = {}
        for key in keys.values():
            count_a[key] = count_a.get(key, 0) + 1
        for name, key in keys.items():
            found = index_b.get(key, [])
            if key is None or len(found) != 1 or count_a[key] != 1:
                continue
            if how_of is not exact_or_mapped and is_recorded_input(name) != is_recorded_input(found[0]):
                continue
            pairs[name] = (found[0], how_of(name, found[0]))
        taken = {b for b, _ in pairs.values()}
        free_a = [n for n in free_a if n not in pairs]
        free_b = [n for n in free_b if n not in taken]

    def exact_or_mapped(a: str, b: str) -> str:
        return "exact" if a == b else "mapped"

    run(names.key_a, names.key_b, exact_or_mapped)
    if names.automatic:
        run(lambda n: normalize(names.key_a(n)), lambda n: normalize(names.key_b(n)), lambda a, b: "normalized")
        run(lambda n: tuple_stem(normalize(names.key_a(n))), lambda n: normalize(names.key_b(n)), lambda a, b: "tuple")
        run(lambda n: normalize(names.key_a(n)), lambda n: tuple_stem(normalize(names.key_b(n))), lambda a, b: "tuple")
    return pairs


def stage_view(trace: Trace, name: str) -> Stage:
    """How the alignment sees a stage: its recorded shape, and its values (or a sketch's statistics)."""
    from ..sketches.format import is_sketch_trace, read_sketch

    if is_sketch_trace(trace):
        recorded = read_sketch(trace, name)[1]
        known = None
        if all(recorded.get(key) is not None for key in ("mean", "std", "min", "max")):
            known = Signature(recorded["mean"], recorded["std"], None, recorded["min"], recorded["max"])
        return Stage(name, tuple(recorded["shape"]), None, _signature=known, _signed=True)
    info = trace.info(name)

    def read():
        if info.size <= SIGNATURE_READ_MAX:
            return trace.read(name)
        return next(iter(trace.iter_chunks(name, 1 << 20)))

    return Stage(name, tuple(info.shape), read)


def match_stages(
    reference: Trace, candidate: Trace, names: NameMap | None = None
) -> tuple[dict[str, Pair], dict[str, str], dict[str, str]]:
    """``({reference name: Pair}, twins of the reference, twins of the candidate)``: the name
    passes, the twins among the stages they leave (``{stage: the stage it repeats}``), and the
    alignment of the others (passes 1 to 4; a twin is paired through its stage by :func:`align`)."""
    names = names or NameMap()
    order_a = [n for n in reference.order if not names.ignores(n, "a")]
    order_b = [n for n in candidate.order if not names.ignores(n, "b")]
    found = {a: Pair(a, b, how) for a, (b, how) in match_names(order_a, order_b, names).items()}
    taken = {pair.name_b for pair in found.values()}
    twins_a = find_twins(reference, [n for n in order_a if n not in found])
    twins_b = find_twins(candidate, [n for n in order_b if n not in taken])
    if names.automatic and len(found) < min(len(order_a), len(order_b)):
        for inputs in (False, True):  # outputs with outputs, recorded inputs with inputs
            side_a = [stage_view(reference, n) for n in order_a if n not in twins_a and is_recorded_input(n) == inputs]
            side_b = [stage_view(candidate, n) for n in order_b if n not in twins_b and is_recorded_input(n) == inputs]
            if not side_a or not side_b:
                continue
            anchors = [(a, pair.name_b) for a, pair in found.items() if pair.name_b is not None]
            for a, (b, score, words) in align_leftovers(side_a, side_b, anchors).items():
                found[a] = Pair(a, b, "aligned", score, words)
    return found, twins_a, twins_b


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
    matched, found_a, found_b = match_stages(reference, candidate, names)
    by_b = {pair.name_b: a for a, pair in matched.items()}
    if not reference.has_order and candidate.has_order:
        shared = [by_b[b] for b in order_b if b in by_b]
        order_a = shared + natural_sorted(n for n in order_a if n not in matched)
    left_b = [n for n in order_b if n not in by_b and not names.ignores(n, "b")]
    twins_a, twins_b = _resolved(found_a, matched), _resolved(found_b, by_b)
    after: dict[str, list[Pair]] = {}  # reference stage -> the candidate twins paired through it
    for b, (twin, a) in twins_b.items():
        if a is not None:
            after.setdefault(a, []).append(Pair(a, b, "twin", twin=("b", twin)))
    pairs = []
    for name in order_a:
        if names.ignores(name, "a"):
            continue
        if name in matched:
            pairs.append(matched[name])
            pairs += after.get(name, [])
        elif name in twins_a:
            twin, partner = twins_a[name]
            how = "twin" if partner is not None else "missing"
            pairs.append(Pair(name, partner, how, twin=("a", twin)))
        else:
            pairs.append(Pair(name, None, "missing"))
    for n in left_b:
        if n in twins_b and twins_b[n][1] is not None:
            continue
        repeated = twins_b[n][0] if n in twins_b else None
        pairs.append(Pair(None, n, "missing", twin=("b", repeated) if repeated else None))
    if only:
        globs = list(only)

        def keep(name: str | None) -> bool:
            return name is not None and any(fnmatchcase(name, glob) for glob in globs)

        pairs = [pair for pair in pairs if keep(pair.name_a) or keep(pair.name_b)]
    return pairs


def _resolved(twins: dict[str, str], partners) -> dict[str, tuple[str, str | None]]:
    """``{stage: (the stage it repeats, that stage's partner on the other side or None)}``;
    a twin of a twin is followed to the first stage of the chain that has a partner."""
    out = {}
    for name, twin in twins.items():
        seen = {name}
        while twin not in partners and twin in twins and twin not in seen:
            seen.add(twin)
            twin = twins[twin]
        partner = partners.get(twin)
        partner = partner.name_b if isinstance(partner, Pair) else partner
        if partner is not None and is_recorded_input(name) != is_recorded_input(partner):
            partner = None  # an input repeats the output it was fed, but is no stage of the other side's
        out[name] = (twin, partner)
    return out


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
