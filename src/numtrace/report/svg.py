"""Small inline SVG charts for the HTML report: the error by stage, an error profile, a 1-D stage.

Plain SVG strings with ``<title>`` tooltips: no script, no network, no matplotlib.

Example:
    >>> svg = bars([0.0, 1.0, 4.0], ["MATCH", "SMALL", "LARGE"], "mean |Δ|")
    >>> svg.startswith("<svg") and svg.count("<rect") == 4
    True
"""

from __future__ import annotations

import math
from html import escape

COLORS = {"MATCH": "#2e7d32", "SMALL": "#ef8f00", "LARGE": "#c62828", "MISSING": "#8e24aa"}


def error_chart(points: list[tuple[str, float | None, str]], marks: dict[str, str], width: int = 1100) -> str:
    """Relative error per stage on a log axis, one point per stage in order: ``points`` are
    (stage, rel err, verdict). An exact match (0) sits on its own line below the decades, a
    non-finite error (NaN, inf) on one above them, a MISSING stage is a tick on the top edge;
    ``marks`` (stage -> label) draw dashed lines (the first divergence, the root cause)."""
    height, left, bottom, top, band = 270, 70, 26, 18, 18
    finite = [e for _, e, v in points if v != "MISSING" and e is not None and 0 < e < math.inf]
    lo = math.floor(math.log10(min(finite))) - 1 if finite else -8
    hi = math.ceil(math.log10(max(finite))) + 1 if finite else 0
    has_zero = any(e == 0 for _, e, v in points if v != "MISSING")
    has_bad = any(e is None or not math.isfinite(e) for _, e, v in points if v != "MISSING")
    floor_y, ceil_y = height - bottom, top + band  # the zero line and the non-finite line
    low_y, high_y = floor_y - (band if has_zero else 0), ceil_y + (band if has_bad else 0)
    n = max(len(points), 1)
    step = (width - left - 10) / n

    def y(e: float | None) -> float:
        if e is None or not math.isfinite(e):
            return ceil_y
        if e <= 0:
            return floor_y
        value = min(max(math.log10(e), lo), hi)
        return high_y + (hi - value) / (hi - lo) * (low_y - high_y)

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="relative error by stage">']
    ticks = [(y(10.0**d), f"1e{d}") for d in range(lo, hi + 1)]
    ticks += [(floor_y, "0 (exact)")] if has_zero else []
    ticks += [(ceil_y, "NaN / inf")] if has_bad else []
    for yy, text in ticks:
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" class="tick" text-anchor="end">{text}</text>')
    compared = [(i, e) for i, (_, e, v) in enumerate(points) if v != "MISSING"]
    path = " ".join(f"{left + (i + 0.5) * step:.1f},{y(e):.1f}" for i, e in compared)
    parts.append(f'<polyline points="{path}" class="trend"/>')
    for k, (name, _, _) in enumerate(points):
        if name in marks:
            x = left + (k + 0.5) * step
            anchor, dx = ("end", -4) if x > width / 2 else ("start", 4)  # the label on the side with room
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom}" class="mark"/>')
            parts.append(f'<text x="{x + dx:.1f}" y="{top + 10 + 14 * list(marks).index(name)}" class="marklabel" '
                         f'text-anchor="{anchor}">{escape(marks[name])}: {escape(name)}</text>')  # fmt: skip
    radius = 4 if n < 200 else 2.5
    for i, (name, e, verdict) in enumerate(points):
        x = left + (i + 0.5) * step
        if verdict == "MISSING":
            parts.append(f'<rect x="{x - 1.5:.1f}" y="{top - 8}" width="3" height="8" fill="{COLORS[verdict]}">'
                         f"<title>{i + 1} {escape(name)}: MISSING (on one side only)</title></rect>")  # fmt: skip
            continue
        label = "—" if e is None else f"{e:.3g}"
        parts.append(f'<circle cx="{x:.1f}" cy="{y(e):.1f}" r="{radius}" fill="{COLORS[verdict]}">'
                     f"<title>{i + 1} {escape(name)}: {verdict}, rel err {label}</title></circle>")  # fmt: skip
    for i in _stage_ticks(n):
        x = left + (i + 0.5) * step
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" class="tick" text-anchor="middle">{i + 1}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _stage_ticks(n: int, most: int = 12) -> list[int]:
    """Indices (0-based) of the stages labelled under the chart: the first, the last and round steps."""
    if n <= most:
        return list(range(n))
    raw = n / most
    step = next(s * 10**k for k in range(8) for s in (1, 2, 5) if s * 10**k >= raw)
    inner = [i - 1 for i in range(step, n, step) if n - i >= step / 2]
    return [0, *inner, n - 1]


def bars(values: list[float | None], verdicts: list[str] | None, label: str, width: int = 520) -> str:
    """One bar per index (an error profile along an axis), coloured by each index's verdict."""
    height = 90
    n = max(len(values), 1)
    top = max((v for v in values if v is not None), default=0.0) or 1.0
    step = width / n
    parts = [f'<svg class="profile" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">',
             f'<rect x="0" y="0" width="{width}" height="{height}" class="frame"/>']  # fmt: skip
    for i, v in enumerate(values):
        h = 0.0 if v is None else (height - 4) * v / top
        color = COLORS.get(verdicts[i], "#607d8b") if verdicts else "#607d8b"
        parts.append(
            f'<rect x="{i * step:.2f}" y="{height - h:.2f}" width="{max(step, 0.6):.2f}" height="{h:.2f}" '
            f'fill="{color}"><title>index {i}: {label} {"—" if v is None else f"{v:.4g}"}</title></rect>'
        )
    parts.append("</svg>")
    return "".join(parts)


def lines(a: list[float], b: list[float], width: int = 520) -> str:
    """A 1-D stage: the reference (solid) and the candidate (dashed) along their index."""
    height = 120
    values = [v for v in a + b if math.isfinite(v)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    span = hi - lo or 1.0

    def path(series: list[float]) -> str:
        step = width / max(len(series) - 1, 1)
        ys = [height - 4 - (height - 8) * ((v if math.isfinite(v) else lo) - lo) / span for v in series]
        return " ".join(f"{i * step:.1f},{y:.1f}" for i, y in enumerate(ys))

    return (f'<svg class="profile" viewBox="0 0 {width} {height}" role="img" aria-label="reference and candidate">'
            f'<rect x="0" y="0" width="{width}" height="{height}" class="frame"/>'
            f'<polyline points="{path(a)}" class="ref"/><polyline points="{path(b)}" class="cand"/></svg>')  # fmt: skip
