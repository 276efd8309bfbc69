"""Diff by sketch: when either trace was recorded in stats-only mode (:mod:`numtrace.compare.sketches.format`).

Stages are paired as in a full diff; a stage of a full trace is sketched on
the fly with the other side's channel axis. Per pair:

- equal dtype, shape and hash: MATCH, exactly (the bytes are identical);
- different shapes: LARGE; different non-finite counts: LARGE (``nonfinite``);
- else ``ratio = max |stat_b - stat_a| / T`` over min, max, mean, std,
  abs-max and every channel mean, with ``T = rtol * abs_max(a) + atol``
  (the stage's tolerance, atol resolved as in a full diff, plus 2**-40 of
  the statistic's magnitude for its own rounding), and the verdict is
  ``classify(ratio)``. Every such statistic moves by at most ``max|b - a|``,
  and every element's tolerance is at most ``T``, so this ratio never
  exceeds the elementwise one: a sketch LARGE is a real LARGE and an
  elementwise MATCH is a sketch MATCH; a sketch MATCH is necessary, not
  sufficient (a permutation inside a channel keeps every statistic).

``diff`` metrics are lower bounds from the statistics (``rms >=
sqrt(dmean^2 + dstd^2)`` and the rms of the channel-mean deltas; ``total`` is
0: no element was compared). Findings, each earned by a test against ``T``:
``localized`` (the channels whose means differ form one band), ``offset``,
``scale``, ``sign``, ``nonfinite`` and ``dtype``.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare.sketches.format import make_sketch, SKETCH_KEY, STAGE_PREFIX, encode_info
    >>> def sketched(x):
    ...     means, info = make_sketch(x)
    ...     return MemoryTrace({"mel": means}, metadata={SKETCH_KEY: "1", STAGE_PREFIX + "mel": encode_info(info)})
    >>> x = np.linspace(-10.0, 0.0, 2 * 8 * 5).reshape(2, 8, 5)
    >>> y = x.copy(); y[:, 3:5] += 1.0
    >>> stage = diff(sketched(x), sketched(y)).stages[0]
    >>> stage.verdict.value, stage.diagnosis[0]
    ('LARGE', Finding(kind='localized', axis=1, start=3, stop=5, source='sketch'))
"""

from __future__ import annotations

import math

import numpy as np

from ...trace import Trace
from .. import rootcause
from ..findings import Finding
from ..pairing.align import Pair, align, ignored
from ..pairing.names import as_name_map
from ..precision import Inherited, Precisions, tolerance_for
from ..result import DiffReport, StageResult, recording_status
from ..statistics.stats import DiffStats, SideStats
from ..verdict import ToleranceTable, Verdict, classify
from .format import is_sketch_trace, read_sketch, sketch_of

#: a statistic's own rounding, relative to its magnitude, added to the tolerance T
SLACK = 2.0**-40
_NOTE = "compared by sketch (statistics only): metrics are lower bounds; re-run with full tensors for this stage"


def diff(
    reference: Trace,
    candidate: Trace,
    *,
    tolerances: ToleranceTable | None = None,
    only: list[str] | None = None,
    map=None,
    progress=None,
    **_ignored,
) -> DiffReport:  # noqa: A002
    """Compare two traces, at least one of them a sketch trace, stage by stage (module docstring);
    ``progress(done, total, stage)`` as for :func:`numtrace.compare.diff`."""
    table = tolerances if tolerances is not None else ToleranceTable()
    names = as_name_map(map)
    precisions = Precisions(reference, candidate)
    stages = []
    pairs = align(reference, candidate, only, names)
    for done, pair in enumerate(pairs):
        if progress is not None:
            progress(done, len(pairs), pair.name)
        if pair.name_a is None or pair.name_b is None:
            trace = reference if pair.name_a is not None else candidate
            stages.append(StageResult.missing(pair, side_stats(stage_sketch(trace, pair.name)[1])))
            continue
        result, _, _, _ = compare_pair(reference, candidate, pair, table, precisions.at(pair))
        stages.append(result)
    rootcause.annotate(stages)
    report = DiffReport(
        reference.label,
        candidate.label,
        stages,
        ignored(reference, candidate, names),
        recording_status(reference, candidate),
    )
    return report


def stage_sketch(trace: Trace, name: str, axis: int | None = None) -> tuple[np.ndarray, dict]:
    """``(channel_means, info)`` of a stage: read from a sketch trace, computed for a full one."""
    return read_sketch(trace, name) if is_sketch_trace(trace) else sketch_of(trace, name, axis)


def compare_pair(reference: Trace, candidate: Trace, pair: Pair, table: ToleranceTable, inherited: Inherited | None):
    """``(StageResult, (means, info) of the reference, of the candidate, Tolerance)`` of one paired
    stage compared by sketch (a full side is sketched along the sketch side's channel axis)."""
    assert pair.name_a is not None and pair.name_b is not None  # a paired stage: callers check
    means_a, info_a = stage_sketch(reference, pair.name_a)
    means_b, info_b = stage_sketch(candidate, pair.name_b, info_a["axis"])
    if not is_sketch_trace(reference) and info_b["axis"] != info_a["axis"]:  # follow the sketch's axis
        means_a, info_a = stage_sketch(reference, pair.name_a, info_b["axis"])
    tolerance, precision = tolerance_for(table, pair.name_a, info_a["dtype"], info_b["dtype"], inherited)
    verdict, d, findings, note = compare_sketches(means_a, info_a, means_b, info_b, tolerance)
    result = StageResult.paired(
        pair,
        note=note,
        verdict=verdict,
        a=side_stats(info_a),
        b=side_stats(info_b),
        diff=d,
        tolerance=tolerance,
        diagnosis=findings,
        precision=precision,
    )
    return result, (means_a, info_a), (means_b, info_b), tolerance


def side_stats(info: dict) -> SideStats:
    """A sketch's statistics as the :class:`SideStats` of a full diff."""
    return SideStats(
        shape=tuple(info["shape"]),
        dtype=info["dtype"],
        **{key: info[key] for key in ("count", "min", "max", "mean", "std", "abs_max", "nan", "posinf", "neginf")},
    )


def compare_sketches(means_a: np.ndarray, a: dict, means_b: np.ndarray, b: dict, tolerance):
    """``(verdict, DiffStats or None, findings, note)`` of two sketches (module docstring)."""
    findings = [Finding.of("dtype", a=a["dtype"], b=b["dtype"])] if a["dtype"] != b["dtype"] else []
    if a["shape"] != b["shape"]:
        return (
            Verdict.LARGE,
            None,
            findings,
            f"shapes differ: reference {tuple(a['shape'])}, candidate {tuple(b['shape'])}",
        )
    atol = tolerance.resolve_atol(a["abs_max"] or 0.0, a["dtype"], b["dtype"])
    limit = tolerance.rtol * (a["abs_max"] or 0.0) + atol
    if a["hash"] == b["hash"] and a["dtype"] == b["dtype"]:
        zero = 0.0 if a["count"] else None
        cosine = 1.0 if a["abs_max"] else None
        d = DiffStats(
            abs_max=zero,
            abs_mean=zero,
            rms=zero,
            rel_rms=zero,
            rel_max=zero,
            cosine=cosine,
            snr_db=None,
            mismatched=0,
            total=a["count"],
            max_ratio=0.0,
            worst_index=None,
            worst_a=None,
            worst_b=None,
            rtol=tolerance.rtol,
            atol=atol,
        )
        return Verdict.MATCH, d, findings, "identical bytes (same sketch hash)"
    nonfinite = [
        Finding.of("nonfinite", side=side, count=s["nan"] + s["posinf"] + s["neginf"])
        for side, s in (("a", a), ("b", b))
        if any(a[k] != b[k] for k in ("nan", "posinf", "neginf")) and s["nan"] + s["posinf"] + s["neginf"]
    ]
    deltas = {k: _delta(a[k], b[k]) for k in ("min", "max", "mean", "std", "abs_max")}
    same_axis = a["axis"] == b["axis"]
    channel = _channel_deltas(means_a, means_b) if same_axis else np.zeros(0)
    per_channel = channel_ratios(means_a, means_b, limit) if same_axis else np.zeros(0)
    ratio = max(
        [_ratio(abs(v), limit, a[k], b[k]) for k, v in deltas.items()]
        + [float(per_channel.max()) if per_channel.size else 0.0]
    )
    if nonfinite:
        ratio = math.inf
    verdict = classify(ratio)
    d = _lower_bounds(a, deltas, channel, ratio, tolerance.rtol, atol, nonfinite)
    if verdict is not Verdict.MATCH:
        findings = nonfinite + _findings(a, b, deltas, channel, means_a, means_b, limit) + findings
    return verdict, d, findings, "" if verdict is Verdict.MATCH else _NOTE


def _delta(x, y) -> float:
    if x is None and y is None:
        return 0.0
    if x is None or y is None:
        return math.inf  # finite values on one side only
    return float(y) - float(x)


def _channel_deltas(means_a: np.ndarray, means_b: np.ndarray) -> np.ndarray:
    """Channel-mean deltas; a channel with no finite value on both sides, or equal infinite means,
    is equal; one with no finite value on one side only is infinitely far."""
    if means_a.shape != means_b.shape:
        return np.zeros(0)
    with np.errstate(invalid="ignore", over="ignore"):
        delta = means_b - means_a
    empty_a, empty_b = np.isnan(means_a), np.isnan(means_b)
    delta[(empty_a & empty_b) | (means_a == means_b)] = 0.0
    delta[empty_a ^ empty_b] = np.inf
    delta[np.isnan(delta)] = np.inf  # opposite infinities
    return delta


def channel_ratios(means_a: np.ndarray, means_b: np.ndarray, limit: float) -> np.ndarray:
    """Each channel's ``|Δ mean| / T`` (``T`` = ``limit`` plus the means' own rounding): the verdict of a
    channel is :func:`~numtrace.compare.verdict.classify` of it. Empty when the shapes differ.

    Example:
        >>> ratios = channel_ratios(np.array([1.0, 2.0, np.nan]), np.array([1.0, 2.5, np.nan]), 0.1)
        >>> [round(float(r), 6) for r in ratios]
        [0.0, 5.0, 0.0]
    """
    delta = _channel_deltas(means_a, means_b)
    if not delta.size:
        return delta
    scale = limit + SLACK * max(_peak(means_a), _peak(means_b))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = np.abs(delta) / scale if scale > 0 else np.where(delta == 0, 0.0, np.inf)
    ratio[delta == 0] = 0.0
    return ratio


def _peak(means: np.ndarray) -> float:
    finite = means[np.isfinite(means)]
    return float(np.max(np.abs(finite))) if finite.size else 0.0


def _ratio(delta: float, limit: float, x, y) -> float:
    scale = max(abs(float(x)) if x is not None else 0.0, abs(float(y)) if y is not None else 0.0)
    limit = limit + SLACK * scale
    if delta == 0:
        return 0.0
    return delta / limit if limit > 0 else math.inf


def _lower_bounds(
    a: dict, deltas: dict, channel: np.ndarray, ratio: float, rtol: float, atol: float, nonfinite
) -> DiffStats:
    dm, ds = deltas["mean"], deltas["std"]
    finite_channel = channel[np.isfinite(channel)]
    rms = math.sqrt(dm * dm + ds * ds) if math.isfinite(dm) and math.isfinite(ds) else math.inf
    if finite_channel.size:
        rms = max(rms, float(np.sqrt(np.mean(np.square(finite_channel)))))
    abs_mean = max(abs(dm), float(np.mean(np.abs(finite_channel))) if finite_channel.size else 0.0)
    abs_max = max(
        [abs(deltas[k]) for k in ("min", "max", "abs_max")]
        + [rms]
        + ([float(np.max(np.abs(channel)))] if channel.size else [])
    )
    rms_a = math.hypot(a["mean"] or 0.0, a["std"] or 0.0)
    rel_rms = rms / rms_a if rms_a > 0 else (0.0 if rms == 0 else None)
    peak = a["abs_max"] or 0.0
    rel_max = abs_max / peak if peak > 0 else (0.0 if abs_max == 0 else None)
    counts = {f["side"]: f["count"] for f in nonfinite}
    return DiffStats(
        abs_max=abs_max,
        abs_mean=abs_mean,
        rms=rms,
        rel_rms=rel_rms,
        rel_max=rel_max,
        cosine=None,
        snr_db=None,
        mismatched=0,
        total=0,
        max_ratio=ratio,
        worst_index=None,
        worst_a=None,
        worst_b=None,
        rtol=rtol,
        atol=atol,
        nonfinite_a=counts.get("a", 0),
        nonfinite_b=counts.get("b", 0),
    )


def _findings(a: dict, b: dict, deltas: dict, channel: np.ndarray, means_a, means_b, limit: float) -> list[Finding]:
    """localized / offset / scale / sign findings, each only when every statistic agrees within ``limit``."""
    out = []
    if channel.size > 1:
        bad = np.flatnonzero(~(np.abs(channel) <= limit))
        if bad.size and bad.size < channel.size and bad[-1] - bad[0] + 1 == bad.size:
            out.append(
                Finding.of("localized", axis=a["axis"], start=int(bad[0]), stop=int(bad[-1]) + 1, source="sketch")
            )
            return out
    if any(a[k] is None or b[k] is None for k in ("min", "max", "mean", "std")):
        return out

    def close(x, y) -> bool:
        return abs(x - y) <= limit + SLACK * max(abs(x), abs(y))

    c = np.isfinite(channel)
    offset = deltas["mean"]
    if (
        abs(offset) > limit
        and close(a["min"] + offset, b["min"])
        and close(a["max"] + offset, b["max"])
        and close(a["std"], b["std"])
        and np.all(np.abs(channel[c] - offset) <= limit)
    ):
        out.append(Finding.of("offset", value=offset, source="sketch"))
    elif (
        close(-a["max"], b["min"])
        and close(-a["min"], b["max"])
        and close(-a["mean"], b["mean"])
        and close(a["std"], b["std"])
        and np.all(np.abs(means_b[c] + means_a[c]) <= limit)
    ):
        out.append(Finding.of("sign", source="sketch"))
    elif a["std"] > 0 and b["std"] > 0:
        factor = b["std"] / a["std"]
        if (
            abs(factor - 1.0) * (a["abs_max"] or 0.0) > limit
            and close(factor * a["min"], b["min"])
            and close(factor * a["max"], b["max"])
            and close(factor * a["mean"], b["mean"])
            and np.all(np.abs(means_b[c] - factor * means_a[c]) <= limit * max(1.0, factor))
        ):
            out.append(Finding.of("scale", factor=factor, db=20.0 * math.log10(factor), source="sketch"))
    return out
