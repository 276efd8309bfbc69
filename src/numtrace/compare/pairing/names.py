"""Stage-name rules: normalised names and the user's name map (``--map FILE``).

Two ports rarely agree on names: ``decoder.finalProj`` (Swift) against
``decoder.final_proj`` (Python), ``encoder/layers/0`` against ``encoder.0``.
:func:`normalize` turns a name into a key on which such spellings meet;
:class:`NameMap` holds what the user states in a map file (prefixes to strip,
renames, stages to ignore).

Normalisation: ``.``, ``/`` and ``:`` are one separator; inside a component,
case, ``_`` and ``-`` are ignored (``finalProj``, ``final_proj``, ``Final-Proj``
all meet); an MLX ``Sequential``'s ``layers.N`` is torch's bare ``N``; call
indices (``@N``) are kept, so ``x@1`` meets only ``x@1``.

Example:
    >>> normalize("decoder/finalProj@2"), normalize("encoder.layers.0.conv")
    ('decoder.finalproj@2', 'encoder.0.conv')
    >>> m = NameMap.from_dict({"strip_prefix_b": ["swift."], "rename": {"ode.v*": "ode.velocity*"}})
    >>> m.key_b("swift.ode.v@3"), m.ignores("x", "a")
    ('ode.velocity@3', False)
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache

from ...errors import UsageError
from ...tomlfile import read_toml
from ..verdict import did_you_mean

_SEPARATORS = re.compile(r"[./:]+")
_IGNORED_CHARS = re.compile(r"[_\-]")


@lru_cache(maxsize=1 << 16)
def normalize(name: str) -> str:
    """The key on which differently spelled stage names meet (see the module docstring)."""
    parts = [_IGNORED_CHARS.sub("", part).lower() for part in _SEPARATORS.split(name) if part]
    kept = [
        part for i, part in enumerate(parts) if not (part == "layers" and i + 1 < len(parts) and parts[i + 1].isdigit())
    ]
    return ".".join(kept)


def tuple_stem(key: str) -> str | None:
    """``x.0`` -> ``x``: the single-output name a flattened first element meets (else None)."""
    return key[:-2] if key.endswith(".0") and len(key) > 2 else None


@dataclass(frozen=True)
class Rename:
    """One rename rule: a glob (``*``/``?`` captured in order) or ``re:REGEX`` -> template.

    Example:
        >>> Rename.parse("blocks.*.mlp", "layers.*.ffn").apply("blocks.3.mlp")
        'layers.3.ffn'
        >>> Rename.parse(r"re:ode\\.v(\\d+)", r"ode.velocity@\\1").apply("ode.v7")
        'ode.velocity@7'
    """

    pattern: str
    template: str
    regex: re.Pattern
    is_regex: bool

    @classmethod
    def parse(cls, pattern: str, template: str, where: str = "map") -> "Rename":
        if not isinstance(template, str) or not template:
            raise UsageError(f"{where}: rename {pattern!r} needs a non-empty string target, got {template!r}")
        if pattern.startswith("re:"):
            try:
                regex = re.compile(pattern[3:])
            except re.error as err:
                raise UsageError(f"{where}: bad regular expression {pattern[3:]!r}: {err}") from None
            return cls(pattern, template, regex, True)
        captures = pattern.count("*") + pattern.count("?")
        if template.count("*") + template.count("?") > captures:
            raise UsageError(f"{where}: rename target {template!r} has more wildcards than {pattern!r}")
        body = "".join("(.*?)" if c == "*" else "(.)" if c == "?" else re.escape(c) for c in pattern)
        return cls(pattern, template, re.compile(body), False)

    def apply(self, name: str) -> str | None:
        """The renamed name, or None when the rule does not match ``name`` (whole-name match)."""
        match = self.regex.fullmatch(name)
        if match is None:
            return None
        if self.is_regex:
            try:
                return match.expand(self.template)
            except (re.error, IndexError) as err:
                raise UsageError(f"rename {self.pattern!r} -> {self.template!r}: {err}") from None
        groups = iter(match.groups())
        return "".join(next(groups) if c in "*?" else c for c in self.template)


_LIST_KEYS = ("strip_prefix", "strip_prefix_a", "strip_prefix_b", "ignore", "ignore_a", "ignore_b")


@dataclass
class NameMap:
    """What a map file says about names; the empty map changes nothing.

    ``key_a``/``key_b`` give the name under which a stage is paired: the first
    matching prefix stripped (per side, then both), and for the candidate the
    first matching rename applied. ``ignores(name, side)`` drops a stage.
    """

    strip_a: list[str] = field(default_factory=list)
    strip_b: list[str] = field(default_factory=list)
    ignore_a: list[str] = field(default_factory=list)
    ignore_b: list[str] = field(default_factory=list)
    renames: list[Rename] = field(default_factory=list)
    #: False: no automatic pairing (normalised names, tuples, alignment), only exact names and these renames
    automatic: bool = True
    source: str = ""
    #: the file's lists as written (``strip_prefix``, ``ignore_b``...), to tell which entries are unused
    lists: dict = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not (self.strip_a or self.strip_b or self.ignore_a or self.ignore_b or self.renames) and self.automatic

    def ignores(self, name: str, side: str) -> bool:
        globs = self.ignore_a if side == "a" else self.ignore_b
        return any(fnmatchcase(name, glob) for glob in globs)

    def key_a(self, name: str) -> str:
        return _strip(name, self.strip_a)

    def key_b(self, name: str) -> str:
        name = _strip(name, self.strip_b)
        for rule in self.renames:
            renamed = rule.apply(name)
            if renamed is not None:
                return renamed
        return name

    @classmethod
    def from_dict(cls, data: dict, where: str = "map") -> "NameMap":
        """Build from parsed TOML (see docs/diagnosis.md for the format)."""
        unknown = [key for key in data if key not in (*_LIST_KEYS, "automatic", "rename")]
        if unknown:
            # the closest key when one is close ('ignor', '[renames]'), else every key
            hint = did_you_mean(str(unknown[0]), [*_LIST_KEYS, "automatic", "rename"])
            hint = hint or f"; expected {', '.join(_LIST_KEYS)}, automatic or a [rename] table"
            raise UsageError(f"{where}: unknown key {unknown[0]!r}{hint}")
        automatic = data.get("automatic", True)
        if not isinstance(automatic, bool):
            raise UsageError(f"{where}: automatic must be true or false, got {automatic!r}")
        lists = {key: _string_list(data.get(key, []), key, where) for key in _LIST_KEYS}
        renames_table = data.get("rename", {})
        if not isinstance(renames_table, dict):
            raise UsageError(f'{where}: [rename] must be a table of "candidate pattern" = "reference name"')
        renames = [Rename.parse(p, t, where) for p, t in renames_table.items()]
        return cls(
            strip_a=lists["strip_prefix_a"] + lists["strip_prefix"],
            strip_b=lists["strip_prefix_b"] + lists["strip_prefix"],
            ignore_a=lists["ignore_a"] + lists["ignore"],
            ignore_b=lists["ignore_b"] + lists["ignore"],
            renames=renames,
            automatic=automatic,
            source=where,
            lists=lists,
        )

    def unused(self, names_a, names_b) -> list[tuple[str, str, list[str]]]:
        """The entries that apply to no stage: ``(entry as written, its side's role, closest names)``.

        Example:
            >>> m = NameMap.from_dict({"ignore_b": ["cache.*"], "rename": {"ode.v*": "ode.velocity*"}})
            >>> [entry for entry, _, _ in m.unused(["ode.velocity"], ["ode.v", "caches.k"])]
            ["ignore_b 'cache.*'"]
        """
        names_a, names_b = list(names_a), list(names_b)
        pools = {"_a": ("reference", names_a), "_b": ("candidate", names_b), "": ("either", names_a + names_b)}
        out = []
        for key in _LIST_KEYS:
            prefix = key.startswith("strip_prefix")
            role, pool = pools[key[len("strip_prefix" if prefix else "ignore") :]]
            for entry in self.lists.get(key, []):
                if prefix:
                    used = any(name.startswith(entry) and len(name) > len(entry) for name in pool)
                else:
                    used = any(fnmatchcase(name, entry) for name in pool)
                if not used:
                    out.append((f"{key} {entry!r}", role, closest(entry + ("*" if prefix else ""), pool)))
        stripped = [_strip(name, self.strip_b) for name in names_b]
        for rule in self.renames:
            if not any(rule.apply(name) is not None for name in stripped):
                out.append((f"rename {rule.pattern!r}", "candidate", closest(rule.pattern, stripped)))
        return out

    @classmethod
    def load(cls, path) -> "NameMap":
        """Read a map file (TOML); any problem is a :class:`UsageError` naming the file."""
        data = read_toml(path, "map file", UsageError)
        return cls.from_dict(data, f"map file {str(path)!r}")


def map_text(pairs, names: NameMap | None = None, header: str = "") -> str:
    """A map file (TOML) that pairs exactly as ``pairs`` (from :func:`~numtrace.compare.pairing.align.align`)
    do: ``automatic = false``, the prefixes and ignores of ``names`` (the map the pairs were made
    with), and one rename per pair whose names differ, commented with how it was made. Twins are
    found again from the values; they are listed as comments.

    Example:
        >>> from numtrace.compare.pairing.align import Pair
        >>> print(map_text([Pair("a.mlp.0", "a.mlp1", "aligned", 0.93, "same shape"), Pair("x", "x")]))
        automatic = false  # pair only by these renames and equal names
        <BLANKLINE>
        [rename]  # candidate name = reference name
        "a.mlp1" = "a.mlp.0"  # aligned, score 0.93: same shape
        <BLANKLINE>
    """
    names = names or NameMap()
    lines = [f"# {line}" for line in header.splitlines()] + [
        "automatic = false  # pair only by these renames and equal names"
    ]
    for key in _LIST_KEYS:
        if names.lists.get(key):
            lines.append(f"{key} = [{', '.join(json.dumps(v) for v in names.lists[key])}]")
    renames, twins = [], []
    for pair in pairs:
        if pair.name_a is None or pair.name_b is None:
            continue
        if pair.how == "twin":
            side, stage = pair.twin
            twins.append(
                f"# {pair.name_a} ↔ {pair.name_b}: the {'reference' if side == 'a' else 'candidate'}'s {stage} repeated"
            )
            continue
        source, target = _strip(pair.name_b, names.strip_b), names.key_a(pair.name_a)
        if source == target:
            continue
        how = f"aligned, score {pair.score:.2f}: {pair.evidence}" if pair.how == "aligned" else pair.how
        if any(c in source + target for c in "*?"):  # literal names, as a regular expression
            source, target = "re:" + re.escape(source), target.replace("\\", "\\\\")
        renames.append(f"{json.dumps(source)} = {json.dumps(target)}  # {how}")
    lines += ["", "[rename]  # candidate name = reference name"] + renames if renames else []
    if twins:
        lines += ["", "# twins, paired through the stage they repeat (found again from the values):"] + twins
    return "\n".join(lines) + "\n"


def closest(pattern: str, names, n: int = 3) -> list[str]:
    """The names most like a glob that matched none of them (for "did you mean" messages).

    Names matching the glob with a leading or trailing ``*`` (a missing scope prefix, say),
    else the closest spellings.

    Example:
        >>> closest("decoder.*", ["model.decoder.out", "model.encoder.out"])
        ['model.decoder.out']
        >>> closest("model.otu", ["model.out", "encoder.in"])
        ['model.out']
    """
    names = list(dict.fromkeys(names))
    widened = [name for name in names if fnmatchcase(name, "*" + pattern) or fnmatchcase(name, pattern + "*")]
    if widened:
        return widened[:n]
    literal = re.sub(r"[*?\[\]]", "", pattern)
    return difflib.get_close_matches(literal, names, n=n, cutoff=0.6) if literal else []


def as_name_map(value) -> NameMap:
    """A :class:`NameMap` from None (empty), a NameMap, a dict or a path to a TOML file."""
    if value is None:
        return NameMap()
    if isinstance(value, NameMap):
        return value
    if isinstance(value, dict):
        return NameMap.from_dict(value)
    return NameMap.load(value)


def _strip(name: str, prefixes: list[str]) -> str:
    for prefix in prefixes:
        if prefix and name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :]
    return name


def _string_list(value, key: str, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: {key} must be a list of strings, got {value!r}")
    return list(value)
