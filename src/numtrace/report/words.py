"""Numbers and findings in words, shared by every human-readable report.

Example:
    >>> fmt(0.000123456), fmt(None), fmt_percent(3, 400)
    ('0.0001235', '—', '0.75%')
    >>> describe_findings([{"kind": "dtype", "a": "float64", "b": "float32"}])
    'dtype float64 vs float32'
    >>> describe_finding({"kind": "offset", "value": -1.46, "explained": 0.9993})
    'candidate = reference - 1.46 (constant offset, explains 99.9%)'
    >>> describe_finding({"kind": "padding", "axis": 1, "start": 251, "stop": 312, "value": 0.0, "value_a": -42.5})
    '0.0 padding in indices 251-311 of axis 1 (reference -42.5 there)'
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence


def fmt(value: float | int | None, digits: int = 4) -> str:
    """A compact number: 4 significant digits, '—' for missing values."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def fmt_percent(part: int, whole: int) -> str:
    if whole == 0:
        return "—"
    share = 100.0 * part / whole
    if part and share < 0.01:
        return "<0.01%"
    return f"{share:.3g}%"


def fmt_side(stats: Any, two_lines: bool = False) -> str:
    """``[min, max] mean±std`` of one side, with non-finite counts when there are any."""
    if stats is None:
        return "—"
    if stats.min is None:
        text = "no finite values"
    else:
        gap = "\n" if two_lines else " "
        text = f"[{fmt(stats.min)}, {fmt(stats.max)}]{gap}{fmt(stats.mean)}±{fmt(stats.std)}"
    if stats.nan or stats.posinf or stats.neginf:
        bad = [f"{n} {label}" for n, label in ((stats.nan, "NaN"), (stats.posinf, "+inf"), (stats.neginf, "-inf")) if n]
        text += f" ({', '.join(bad)})"
    return text


def fmt_shape(a: Any, b: Any) -> str:
    shape_a = tuple(a.shape) if a is not None else None
    shape_b = tuple(b.shape) if b is not None else None
    if shape_a is None or shape_b is None or shape_a == shape_b:
        shape = shape_a if shape_a is not None else shape_b
        return _shape(shape)
    return f"{_shape(shape_a)} vs {_shape(shape_b)}"


def _shape(shape: tuple | None) -> str:
    if shape is None:
        return "—"
    return str(tuple(shape))


_SIDE = {"a": "reference", "b": "candidate"}


def fmt_explained(finding: Mapping[str, Any]) -> str:
    """``explains 99.9%`` from a finding's ``explained`` share ('' when it has none).

    A finding made on the window of a large stage (``"source": "sample"``) says so.

    Example:
        >>> fmt_explained({"explained": 0.9991}), fmt_explained({"explained": 1.0, "source": "sample"})
        ('explains 99.9%', 'explains 100% of the sampled window')
    """
    share = finding.get("explained")
    if share is None:
        return ""
    percent = 100.0 * share
    text = "100" if percent >= 99.95 else f"{percent:.3g}" if percent >= 10 else f"{percent:.2g}"
    return f"explains {text}%" + (" of the sampled window" if finding.get("source") == "sample" else "")


def fmt_range(start: int, stop: int, axis: int, length: int | None = None, extra: str = "") -> str:
    """Half-open ``[start, stop)`` as people say it: ``indices 243-255 of axis 0 (13 of 256)``."""
    where = f"index {start}" if stop - start == 1 else f"indices {start}-{stop - 1}"
    notes = "; ".join(x for x in (f"{stop - start} of {length}" if length else "", extra) if x)
    return f"{where} of axis {axis}" + (f" ({notes})" if notes else "")


def _value(value: float) -> str:
    """A stored value: ``0.0`` and ``-77.0`` keep their point (a float, not a count)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e6:
        return f"{value:.1f}"
    return fmt(value)


def _factor(k: float) -> str:
    """A factor; one close to 1 as ``(1 - 3.1e-05)`` so that its difference from 1 shows."""
    if k != 1 and abs(k - 1) < 1e-3:
        return f"(1 {'-' if k < 1 else '+'} {fmt(abs(k - 1), 2)})"
    return fmt(k)


def _signed(value: float) -> str:
    return f"- {fmt(-value)}" if value < 0 else f"+ {fmt(value)}"


def _with(text: str, finding: Mapping[str, Any], label: str = "") -> str:
    extra = ", ".join(x for x in (label, fmt_explained(finding)) if x)
    return f"{text} ({extra})" if extra else text


def describe_finding(finding: Mapping[str, Any], lengths: tuple | None = None) -> str:
    """One finding of the report (docs/report.md) in plain words (``lengths``: the stage's shape, for "13 of 256")."""
    kind = finding.get("kind")
    f = finding

    def length(axis: int) -> int | None:
        return lengths[axis] if lengths and axis < len(lengths) else None

    if kind == "dtype":
        return f"dtype {f['a']} vs {f['b']}"
    if kind == "nonfinite":
        return f"{f['count']} NaN/Inf only in the {_SIDE.get(f['side'], f['side'])}"
    if kind == "shape":
        text = f"axis {f['axis']} has {f['a_len']} vs {f['b_len']} elements; overlap compared"
        if f.get("a_start") or f.get("b_start"):
            n = min(f["a_len"], f["b_len"])
            text += (
                f" (reference {f.get('a_start', 0)}-{f.get('a_start', 0) + n - 1} with candidate "
                f"{f.get('b_start', 0)}-{f.get('b_start', 0) + n - 1})"
            )
        return text
    if kind == "layout":
        return _with(f"same values with axes permuted: candidate = reference.transpose({tuple(f['perm'])})", f)
    if kind == "offset":
        return _with(f"candidate = reference {_signed(f['value'])}", f, "constant offset")
    if kind == "scale":
        db = f.get("db")
        return _with(f"candidate = {_factor(f['factor'])} × reference", f, f"{db:+.3g} dB" if db is not None else "")
    if kind == "sign":
        return _with("candidate = -reference", f, "sign flip")
    if kind == "affine":
        return _with(f"candidate = {_factor(f['factor'])} × reference {_signed(f['value'])}", f, "affine")
    if kind == "constant":
        return _with(f"candidate is {_value(f['value'])} everywhere", f)
    if kind == "channel_offset":
        return _with(
            f"a different offset per index along axis {f['axis']}, {fmt(f['min'])} to {fmt(f['max'])}",
            f,
            "a dropped or different bias?",
        )
    if kind == "channel_scale":
        return _with(
            f"a different factor per index along axis {f['axis']}, {_factor(f['min'])} to {_factor(f['max'])}",
            f,
            "a per-channel gain, window or norm?",
        )
    if kind == "elementwise":
        of = f"{f['of']}" if f.get("of") else "the reference value"
        at = f.get("of") or "reference"
        return _with(
            f"the error is a function of {of}, largest ({fmt(f['peak_error'])}) near {at} = {fmt(f['peak_at'])}",
            f,
            "another formula or activation?",
        )
    if kind == "proportional":
        return _with(
            f"candidate = reference {_signed(f['factor'])} × {f['stage']}",
            f,
            "a step, residual or skip connection applied differently?",
        )
    if kind == "shift":
        lag = f["lag"]
        text = f"candidate = reference shifted by {lag:+d} along axis {f['axis']} (b[i] = a[i{-lag:+d}])"
        if "overlap_explained" in f:  # a linear shift: the indices shifted in are new data
            share = fmt_explained({"explained": f["overlap_explained"]})
            return f"{text} ({share} of the overlap; the {abs(lag)} indices shifted in hold the rest)"
        return _with(text, f)
    if kind == "padding":
        there = f"reference {_value(f['value_a'])} there" if f.get("value_a") is not None else ""
        text = (
            f"{_value(f['value'])} padding in {fmt_range(f['start'], f['stop'], f['axis'], length(f['axis']), there)}"
        )
        return text + (f", {fmt_explained(f)}" if "explained" in f else "")
    if kind == "localized":
        text = f"error in {fmt_range(f['start'], f['stop'], f['axis'], length(f['axis']))}"
        if "offset" in f:
            text += f", candidate = reference {_signed(f['offset'])} there"
        elif "factor" in f:
            text += f", candidate = {_factor(f['factor'])} × reference there"
        return text + (f", {fmt_explained(f)}" if "explained" in f else "")
    if kind == "unexplained":
        partial = f.get("partial") or []
        best = f" (best: {describe_finding(partial[0], lengths)})" if partial else ""
        return f"no simple transform explains this stage{best}"
    if kind == "rank_disagrees":
        ranks = ", ".join(map(str, f["ranks"]))
        agree = ", ".join(map(str, f["agree"]))
        return (
            f"rank {ranks} disagrees with rank {agree} on a stage they should all hold alike (other data on that rank?)"
        )
    if kind == "partial_sum":
        held = "a part plus the bias" if f.get("bias_on_every_rank") else "a part"
        return _with(
            f"each of the {f['ranks']} ranks holds {held}; the parts sum to the reference", f, "a missing all-reduce?"
        )
    if kind == "shard_order":
        return _with(
            f"the shards along axis {f['axis']} in rank order {tuple(f['order'])} give the reference",
            f,
            "ranks mapped to the wrong shards?",
        )
    if kind == "shard_axis":
        return _with(
            f"the reference's shards along axis {f['expected']} concatenated along axis {f['axis']}",
            f,
            "gathered along the wrong axis?",
        )
    if kind == "transposed_weight":
        return _with("the candidate's weight is the reference's transposed", f, "W.T for W")
    if kind == "bias":
        what = "no bias (the reference's dropped)" if f.get("dropped") else "another bias"
        return _with(f"same weight, {what}: up to {fmt(f['max_diff'])} apart", f)
    if kind == "weight_scale":
        return _with(f"the candidate's weight is {_factor(f['factor'])} × the reference's", f)
    if kind == "weight":
        return _with(f"another weight (relative difference {fmt(f['rel_diff'], 2)})", f)
    if kind == "function":
        return _with(f"the reference computes {f['reference']}, the candidate {f['candidate']}", f)
    if kind == "norm":
        parts = []
        if "reference_kind" in f:
            parts.append(f"{f['reference_kind']} norm vs {f['candidate_kind']} norm")
        if "reference_eps" in f:
            parts.append(f"eps {f['reference_eps']:g} vs {f['candidate_eps']:g}")
        if "gain_rel_diff" in f:
            parts.append(f"another gain (relative difference {fmt(f['gain_rel_diff'], 2)})")
        if "bias_max_diff" in f:
            parts.append(f"another bias (up to {fmt(f['bias_max_diff'])} apart)")
        return _with("normalisation: " + ", ".join(parts), f)
    if kind == "precision":
        rel = f.get("residual")
        return f"rounding level of {f['dtype']}" + (f" (rel err {fmt(rel, 2)})" if rel is not None else "")
    fields = ", ".join(f"{k}={v}" for k, v in finding.items() if k != "kind")
    return f"{kind} ({fields})" if fields else str(kind)


def _redundant(finding: Mapping[str, Any], others: Sequence[Mapping[str, Any]]) -> bool:
    """A localized band that a padding finding already names (same axis and range)."""
    return finding.get("kind") == "localized" and any(
        o.get("kind") == "padding"
        and (o["axis"], o["start"], o["stop"]) == (finding["axis"], finding["start"], finding["stop"])
        for o in others
    )


def describe_findings(
    findings: Sequence[Mapping[str, Any]], lengths: tuple | None = None, limit: int | None = None
) -> str:
    """Findings in words, joined by '; ' (at most ``limit``, a localized band that merely
    repeats a padding region left out)."""
    shown = [f for f in findings if not _redundant(f, findings)]
    more = len(shown) - limit if limit is not None and len(shown) > limit else 0
    text = "; ".join(describe_finding(f, lengths) for f in shown[: len(shown) - more])
    return text + (f"; +{more} more" if more else "")
