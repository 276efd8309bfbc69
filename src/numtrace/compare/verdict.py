"""Verdicts and tolerances: when are two recordings of a stage "the same"?

The verdict rule (also :data:`VERDICT_HELP`, which ``trace diff --help`` prints):

An element passes when ``|b - a| <= rtol * |a| + atol`` (the rule of
``numpy.testing.assert_allclose``, with the reference ``a`` as "desired").
``ratio`` is the largest ``|b - a| / (rtol * |a| + atol)`` over the elements
(0/0 counts as 0, x/0 as infinite).

- MATCH: ratio <= 1, every element within tolerance.
- SMALL: 1 < ratio <= 10 (:data:`SMALL_FACTOR`): outside tolerance but never by
  more than 10x its tolerance (worth a look; typical of a different but
  equivalent algorithm, e.g. another resampler).
- LARGE: some element more than 10x its tolerance away, a non-finite value on
  one side only (NaN vs number, inf vs finite, +inf vs -inf; NaN vs NaN and
  equal infinities are equal), or shapes that differ and cannot be lined up.
- MISSING: the stage is in one trace only.

Shapes that differ by length-1 axes or a permutation of axes are lined up and
compared (a layout change alone is MATCH); shapes that differ in the length of
one axis are compared on their overlap, with a verdict of at least SMALL (see
:mod:`numtrace.compare.pairing.layout` and :mod:`numtrace.compare.engine`).

Default tolerance: ``rtol = sqrt(eps)`` of the coarser of the two dtypes and
``atol = rtol * max|a| + tiny`` (relative to the reference's scale, ``max|a|``
over its finite values); integer and bool stages must be equal. The coarser
dtype includes the precision a stage inherits, a coarser floating dtype
recorded upstream on either side (:mod:`numtrace.compare.precision`).

Example:
    >>> default_tolerance("float32", "bfloat16")
    Tolerance(rtol=0.08838834764831845, atol=None)
    >>> classify(0.5), classify(3.0), classify(float("inf"))
    (<Verdict.MATCH: 'MATCH'>, <Verdict.SMALL: 'SMALL'>, <Verdict.LARGE: 'LARGE'>)
    >>> parse_tol_option("decoder.*=rtol=1e-3,atol=1e-6")
    ('decoder.*', Tolerance(rtol=0.001, atol=1e-06))
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from dataclasses import dataclass, field
from enum import Enum
from fnmatch import fnmatchcase
from functools import lru_cache

from .. import dtypes
from ..errors import ToleranceError
from ..tomlfile import read_toml

#: An element more than this many times its tolerance away makes a stage LARGE.
SMALL_FACTOR = 10.0

VERDICT_HELP = f"""\
Verdicts (reference A, candidate B; per stage):
  An element passes when |b - a| <= rtol*|a| + atol (the rule of
  numpy.testing.assert_allclose), and
  ratio = max over elements of |b - a| / (rtol*|a| + atol)
  (0/0 counts as 0, x/0 as inf).
  MATCH    ratio <= 1: every element within tolerance.
  SMALL    1 < ratio <= {SMALL_FACTOR:g}: outside tolerance, but never by more than {SMALL_FACTOR:g}x
           it (worth a look; typical of a different but equivalent
           algorithm, e.g. another resampler).
  LARGE    an element more than {SMALL_FACTOR:g}x its tolerance away; a non-finite
           value on one side only (NaN vs number, inf vs finite, +inf vs
           -inf; NaN vs NaN and equal infinities are equal); or
           shapes that differ and cannot be lined up.
  MISSING  the stage is in one trace only.
Shapes are lined up when they differ by length-1 axes or a permutation of
  axes (a layout change alone is MATCH), or in the length of one axis:
  then the overlap is compared, and the verdict is at least SMALL
  (elements on one side only, like a MISSING stage).
Default tolerance: rtol = sqrt(eps) of the coarser dtype (float64 1.5e-8,
  float32 3.45e-4, float16 0.031, bfloat16 0.088) and
  atol = rtol*max|a| + tiny, i.e. relative to the reference's scale;
  integer and bool stages must be equal. Precision is inherited: a
  coarser floating dtype recorded at or before a stage, on either side
  (a float32 front end, a bfloat16 body), sets that stage's tolerance
  ("tolerance float32, inherited from ..."). Override with --tol."""

_FORMS = (
    "expected RTOL, GLOB=RTOL, GLOB=rtol=R,atol=A or atol=A "
    "(e.g. 1e-3, 'decoder.*=1e-3', 'decoder.*=rtol=1e-3,atol=1e-6', 'atol=1e-6')"
)


class Verdict(str, Enum):
    """The outcome for one stage; ``severity`` orders MATCH < SMALL < LARGE < MISSING."""

    MATCH = "MATCH"
    SMALL = "SMALL"
    LARGE = "LARGE"
    MISSING = "MISSING"

    @property
    def severity(self) -> int:
        return _SEVERITY[self.value]

    def __str__(self) -> str:
        return self.value


_SEVERITY = {"MATCH": 0, "SMALL": 1, "LARGE": 2, "MISSING": 3}


def classify(max_ratio: float) -> Verdict:
    """The verdict of an aligned, same-shape stage from its worst ``|b-a| / tolerance``."""
    if max_ratio <= 1.0:
        return Verdict.MATCH
    if max_ratio <= SMALL_FACTOR:
        return Verdict.SMALL
    return Verdict.LARGE


@dataclass(frozen=True)
class Tolerance:
    """``rtol`` and ``atol``; ``atol=None`` means relative to the reference's scale.

    Example:
        >>> Tolerance(1e-3).resolve_atol(peak_a=10.0, dtype_a="float64", dtype_b="float64")
        0.01
        >>> Tolerance(1e-3, atol=1e-6).resolve_atol(10.0, "float64", "float64")
        1e-06
    """

    rtol: float
    atol: float | None = None

    def __post_init__(self) -> None:
        for key, value in (("rtol", self.rtol), ("atol", self.atol)):
            if value is None and key == "atol":
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
                raise ToleranceError(f"bad tolerance {key}={value!r}: must be a finite number >= 0")
            object.__setattr__(self, key, float(value))

    def resolve_atol(self, peak_a: float, dtype_a: str, dtype_b: str) -> float:
        """The absolute tolerance used: ``atol``, or ``rtol * peak_a + tiny(coarser dtype)``."""
        if self.atol is not None:
            return self.atol
        return self.rtol * peak_a + dtypes.tiny(dtypes.coarser(dtype_a, dtype_b))

    def to_dict(self) -> dict:
        return {"rtol": self.rtol, "atol": self.atol}

    def __str__(self) -> str:
        return f"rtol={self.rtol:g}" + ("" if self.atol is None else f",atol={self.atol:g}")


@lru_cache(maxsize=256)  # a Tolerance is immutable: one per dtype combination, not one per stage
def default_tolerance(dtype_a: str, dtype_b: str, precision: str | None = None) -> Tolerance:
    """``rtol = sqrt(eps)`` of the coarser dtype, atol relative; exact dtypes need equality.

    ``precision``: a coarser dtype the stage's data went through upstream
    (:mod:`numtrace.compare.precision`); it applies to floating stages only.

    Example:
        >>> round(default_tolerance("float32", "float64").rtol, 7)
        0.0003453
        >>> round(default_tolerance("float64", "float64", precision="float32").rtol, 7)
        0.0003453
        >>> default_tolerance("int64", "int32", precision="bfloat16")
        Tolerance(rtol=0.0, atol=0.0)
    """
    if not dtypes.is_floating(dtype_a) and not dtypes.is_floating(dtype_b):
        return Tolerance(0.0, 0.0)
    coarse = dtypes.coarser(dtype_a, dtype_b)
    if precision is not None:
        coarse = dtypes.coarser(coarse, precision)
    return Tolerance(math.sqrt(dtypes.eps(coarse)))


@dataclass
class ToleranceTable:
    """Per-stage tolerances: ordered ``(glob, Tolerance)`` rules and a default override.

    ``lookup`` returns the tolerance of the LAST rule whose glob matches the
    stage name (fnmatch, case-sensitive), else the ``default`` override, else
    :func:`default_tolerance`. The ``default`` override applies to stages with a
    floating dtype on at least one side: integer and bool stages stay exact
    unless a glob rule names them.

    Example:
        >>> table = ToleranceTable.from_options(["1e-3", "mel=1e-2"], None)
        >>> table.lookup("mel", "float32", "float32"), table.lookup("enc", "float32", "float32")
        (Tolerance(rtol=0.01, atol=None), Tolerance(rtol=0.001, atol=None))
        >>> table.lookup("tokens", "int64", "int64")
        Tolerance(rtol=0.0, atol=0.0)
    """

    rules: list[tuple[str, Tolerance]] = field(default_factory=list)
    default: Tolerance | None = None

    def add(self, glob: str | None, tolerance: Tolerance) -> None:
        """Append a rule (it wins over earlier ones), or set the default when ``glob`` is None."""
        if glob is None:
            self.default = tolerance
        else:
            self.rules.append((glob, tolerance))

    def lookup(self, name: str, dtype_a: str, dtype_b: str, precision: str | None = None) -> Tolerance:
        """The stage's tolerance: :meth:`override`, else :func:`default_tolerance` (with ``precision``)."""
        found = self.override(name, dtype_a, dtype_b)
        return found if found is not None else default_tolerance(dtype_a, dtype_b, precision)

    def override(self, name: str, dtype_a: str, dtype_b: str) -> Tolerance | None:
        """The tolerance a rule or the default override sets for this stage, None when none does."""
        for glob, tolerance in reversed(self.rules):
            if fnmatchcase(name, glob):
                return tolerance
        exact = not dtypes.is_floating(dtype_a) and not dtypes.is_floating(dtype_b)
        return self.default if not exact else None

    def unmatched(self, names) -> list[str]:
        """The globs of the rules that match none of ``names`` (tolerances are looked up by the
        reference's stage names), in rule order.

        Example:
            >>> ToleranceTable.from_options(["enc.*=1e-3", "dec.*=1e-3"]).unmatched(["enc.out"])
            ['dec.*']
        """
        names = list(names)
        return [glob for glob, _ in self.rules if not any(fnmatchcase(name, glob) for name in names)]

    @classmethod
    def from_options(cls, tol_options: list[str] | None, toml_path: str | None = None) -> "ToleranceTable":
        """The TOML file's rules first, then the ``--tol`` values (so the CLI wins)."""
        table = load_tolerance_toml(toml_path) if toml_path else cls()
        for text in tol_options or []:
            table.add(*parse_tol_option(text))
        return table


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _parse_spec(text: str) -> Tolerance | None:
    """``1e-3`` or ``rtol=1e-3,atol=1e-6`` (either key alone); None if it is neither."""
    text = text.strip()
    if "=" not in text:
        value = _number(text)
        return None if value is None else Tolerance(value)
    values: dict[str, float] = {}
    for part in text.split(","):
        key, sep, raw = part.partition("=")
        key = key.strip()
        value = _number(raw) if sep else None
        if key not in ("rtol", "atol") or key in values or value is None:
            return None
        values[key] = value
    # atol alone is a purely absolute tolerance; rtol alone keeps atol relative.
    return Tolerance(values.get("rtol", 0.0), values.get("atol"))


def parse_tol_option(text: str) -> tuple[str | None, Tolerance]:
    """Parse a ``--tol`` value into ``(glob or None for every stage, Tolerance)``.

    Forms: ``1e-3`` (rtol, every stage), ``decoder.*=1e-3``,
    ``decoder.*=rtol=1e-3,atol=1e-6``, ``atol=1e-6`` (absolute: rtol 0).

    Example:
        >>> parse_tol_option("1e-3"), parse_tol_option("atol=1e-6")
        ((None, Tolerance(rtol=0.001, atol=None)), (None, Tolerance(rtol=0.0, atol=1e-06)))
    """
    spec = _parse_spec(text)
    if spec is not None:
        return None, spec
    problem = ""
    if _starts_with_key(text) or _is_key_list(text):
        problem = unknown_key(spec_keys(text))
    else:
        # GLOB=SPEC: split at the first '=' after which a spec follows (globs may hold '=');
        # a bad KEY= list after the glob is an error, not part of the glob (a misspelt key:
        # 'mel=atl=0.1' must not become the glob 'mel=atl', nor 'mel=rtol=0.1,atl=1' a generic error).
        for pos, char in enumerate(text):
            if char == "=" and text[:pos].strip():
                rest = text[pos + 1 :]
                spec = _parse_spec(rest)
                if spec is not None:
                    return text[:pos].strip(), spec
                if _KEY.match(rest):
                    problem = unknown_key(spec_keys(rest))
                    break
    raise ToleranceError(f"bad tolerance {text!r}: {problem + '; ' if problem else ''}{_FORMS}")


_KEY = re.compile(r"\s*([A-Za-z_]\w*)\s*=")


def did_you_mean(word: str, choices) -> str:
    """`` (did you mean 'atol'?)`` for the closest of ``choices``, '' when none is close.

    Example:
        >>> did_you_mean("atl", ["rtol", "atol"]), did_you_mean("zzz", ["rtol", "atol"])
        (" (did you mean 'atol'?)", '')
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key(keys) -> str:
    """``unknown key 'atl' (did you mean 'atol'?)`` for the first of ``keys`` that is not ``rtol``
    or ``atol`` ('' when each is one), naming the closest key when one is close.

    Example:
        >>> unknown_key(["rtol", "atl"]), unknown_key(["tolerance"]), unknown_key(["atol"])
        ("unknown key 'atl' (did you mean 'atol'?)", "unknown key 'tolerance'", '')
    """
    for key in keys:
        if key not in ("rtol", "atol"):
            return f"unknown key {key!r}{did_you_mean(str(key), ['rtol', 'atol'])}"
    return ""


def spec_keys(text: str) -> list[str]:
    """The keys of a ``KEY=VALUE,...`` list: each part that starts with a name and ``=``.

    Example:
        >>> spec_keys("rtol=1e-3, atl=1"), spec_keys("1e-3")
        (['rtol', 'atl'], [])
    """
    return [match.group(1) for match in map(_KEY.match, text.split(",")) if match]


def _is_key_list(text: str) -> bool:
    """``rtl=0.1,atol=1``: several ``NAME=VALUE`` parts, one of them a tolerance key or close to
    one: a misspelt spec, not a glob holding ',' (as ``enc=1e-3,dec=1e-2`` may be)."""
    parts, keys = text.split(","), spec_keys(text)
    if len(parts) < 2 or len(keys) != len(parts) or text.count("=") != len(parts):
        return False
    return any(key in ("rtol", "atol") or did_you_mean(key, ["rtol", "atol"]) for key in keys)


def _starts_with_key(text: str) -> bool:
    key, sep, _ = text.partition("=")
    return bool(sep) and key.strip() in ("rtol", "atol")


def _toml_value(key: str, value: object, where: str) -> Tolerance:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return Tolerance(float(value))
    problem = ""
    if isinstance(value, str):
        spec = _parse_spec(value)
        if spec is not None:
            return spec
        problem = unknown_key(spec_keys(value))
    elif isinstance(value, dict) and value and set(value) <= {"rtol", "atol"}:
        numbers = {k: _number(str(v)) if not isinstance(v, bool) else None for k, v in value.items()}
        rtol = numbers.get("rtol", 0.0)
        if rtol is not None and all(v is not None for v in numbers.values()):
            return Tolerance(rtol, numbers.get("atol"))
    elif isinstance(value, dict):
        problem = unknown_key(value)
    raise ToleranceError(
        f"{where}: bad tolerance for {key!r}: {value!r}; {problem + '; ' if problem else ''}expected a number (rtol), "
        "{rtol = R, atol = A} (either key) or a string like 'rtol=1e-3,atol=1e-6'"
    )


def load_tolerance_toml(path_text: str) -> ToleranceTable:
    """Read a ``[tolerance]`` table: ``default`` and ``"glob" = value`` rules, in file order.

    A value is a number (rtol), an inline table ``{rtol = .., atol = ..}`` or a
    ``--tol``-style string. The key ``default`` sets the default override.

    Example (file contents):
        [tolerance]
        default = 1e-4
        "decoder.*" = {rtol = 1e-3}
        "mel" = 1e-2
    """
    path_text = str(path_text)
    data = read_toml(path_text, "tolerance file", ToleranceError)
    section = data.get("tolerance")
    if not isinstance(section, dict):
        tables = [key for key, value in data.items() if isinstance(value, dict)]
        close = difflib.get_close_matches("tolerance", tables, n=1, cutoff=0.6)
        raise ToleranceError(
            f"tolerance file {path_text!r} has no [tolerance] table{f' (it has [{close[0]}])' if close else ''}; "
            'expected e.g. [tolerance] default = 1e-4, "decoder.*" = {rtol = 1e-3}'
        )
    table = ToleranceTable()
    for key, value in section.items():
        table.add(None if key == "default" else key, _toml_value(key, value, path_text))
    return table
