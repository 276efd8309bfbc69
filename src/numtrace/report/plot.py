"""``trace plot``: pictures of a diff. matplotlib is imported here only (Agg backend).

- :func:`plot_overview`: the relative error of every compared stage in
  execution order, log scale, coloured by verdict, the first divergence (▶)
  and the root cause (★) marked.
- :func:`plot_stage`: one stage as reference, candidate and difference
  heatmaps side by side (first axis up, second across: a (mel, frames)
  spectrogram has frequency up and time across), colour bars, the reference
  and candidate on one colour scale, the difference on a symmetric diverging
  one, with padding and localized bands outlined. A 1-D stage is drawn as
  lines; a stage of more than two axes (after dropping length-1 axes) as the
  2-D slice through its worst location. What is drawn comes computed
  (:func:`numtrace.compare.views.stage_view`); ``trace plot`` itself, opening
  the traces and choosing what to draw, is :mod:`numtrace.commands.plot`. A
  stats-only trace's stage (``trace run --stats``) is drawn by
  :func:`numtrace.report.sketch_plot.plot_sketch_stage`: both sides' channel
  means and their difference.

Example:
    >>> import numpy as np, os, tempfile
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare import ToleranceTable, compare_pair, stage_pair
    >>> from numtrace.compare.views import stage_view
    >>> a = MemoryTrace({"mel": np.linspace(-80, 0, 400).reshape(20, 20)})
    >>> b = MemoryTrace({"mel": np.linspace(-80, 0, 400).reshape(20, 20) - 1.5})
    >>> pair = stage_pair(a, b, "mel")
    >>> result = compare_pair(a, b, pair, ToleranceTable())
    >>> out = plot_stage(stage_view(a, b, pair), result, os.path.join(tempfile.mkdtemp(), "mel.png"))
    >>> os.path.getsize(out) > 1000
    True
"""

from __future__ import annotations

import math
import textwrap

import numpy as np

from ..errors import UsageError
from .figures import pyplot, save
from .words import describe_findings

VERDICT_COLORS = {"MATCH": "#2e7d32", "SMALL": "#ef8f00", "LARGE": "#c62828"}
#: Heatmaps larger than this along an axis are drawn with a stride (the file stays small).
MAX_PIXELS = 1600


def plot_overview(report, out, stats_only: tuple[str, ...] = ()) -> str:
    """Relative error of every stage, in order (see the module docstring); ``stats_only``: the sides
    (``reference``, ``candidate``) recorded with ``--stats``, said under the title. Returns ``out``."""
    who = " and the ".join(stats_only) + (" are" if len(stats_only) > 1 else " is")
    note = f"compared by sketch (the {who} stats-only): relative errors are lower bounds" if stats_only else ""
    plt = pyplot()
    stages = [s for s in report.stages if s.verdict.value != "MISSING"]
    if not stages:
        raise UsageError("no stage is on both sides: nothing to plot")
    errors = [s.rel_err for s in stages]
    finite = [e for e in errors if e is not None and 0 < e < math.inf]
    floor = min(finite) / 10 if finite else 1e-17
    ceiling = max(finite) * 10 if finite else 1.0
    width = min(24.0, max(7.0, 0.32 * len(stages) + 3))
    fig, ax = plt.subplots(figsize=(width, 5.2))
    x = np.arange(len(stages))
    ax.plot(x, [_clip(e, floor, ceiling) for e in errors], color="#90a4ae", lw=1, zorder=1)
    for i, (stage, e) in enumerate(zip(stages, errors)):
        color = VERDICT_COLORS[stage.verdict.value]
        marker = "^" if e == math.inf else "o"
        face = "none" if e is None or e == 0 else color
        ax.scatter([i], [_clip(e, floor, ceiling)], s=46, marker=marker, facecolors=face, edgecolors=color, zorder=3)
    ax.set_yscale("log")
    ax.set_ylim(floor / 2, ceiling * 2)
    ax.set_ylabel("relative error  rms(B − A) / rms(A)")
    names = [s.name for s in stages]
    step = max(1, len(names) // 60)
    ax.set_xticks(x[::step])
    ax.set_xticklabels(names[::step], rotation=60, ha="right", fontsize=8)
    ax.set_xlim(-0.7, len(stages) - 0.3)
    ax.grid(True, which="major", axis="y", alpha=0.3)
    first, root = report.first_divergence, report.root_cause
    marks = [(first, "#c62828", "first divergence")] if first in names else []
    if root in names:
        if root == first:
            marks = [(root, "#6a1b9a", "first divergence = root cause")]
        else:
            marks.append((root, "#6a1b9a", "root cause"))
    for row, (name, color, label) in enumerate(marks):
        i = names.index(name)
        ax.axvline(i, color=color, ls="--", lw=1.4, zorder=0)
        right = i > (len(names) - 1) / 2
        ax.annotate(
            f"{label}: {name}",
            (i, ceiling),
            xytext=(-5 if right else 5, -4 - 14 * row),
            textcoords="offset points",
            color=color,
            fontsize=9,
            va="top",
            ha="right" if right else "left",
        )
        if label != "first divergence":
            ax.scatter(
                [i],
                [_clip(errors[i], floor, ceiling)],
                s=260,
                marker="*",
                facecolors="none",
                edgecolors=color,
                lw=1.3,
                zorder=4,
            )
    handles = [plt.Line2D([], [], ls="", marker="o", color=c, label=v) for v, c in VERDICT_COLORS.items()]
    ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.8)
    ax.set_title(
        f"relative error per stage, in execution order\nreference {report.a_label}  vs  candidate {report.b_label}"
        + (f"\n{note}" if note else ""),
        fontsize=10,
    )
    return save(fig, out)


def _clip(e, floor: float, ceiling: float) -> float:
    if e is None or e <= 0:
        return floor
    return min(e, ceiling)


def plot_stage(view, result, out) -> str:
    """A :class:`~numtrace.compare.views.StageView` drawn (module docstring), with ``result``'s verdict
    and findings (the stage's :class:`~numtrace.compare.result.StageResult`). Returns ``out``."""
    title = view.name + (f" ↔ {view.name_b}" if view.name_b != view.name else "")
    where = slice_note(view)
    title += f"  [{where}]" if where else ""
    words = describe_findings(result.diagnosis, view.shape, 3) or "no finding"
    caption = f"{result.verdict.value}: " + words
    plt = pyplot()
    if view.reference.ndim == 1:
        fig = _lines(plt, view)
    else:
        fig = _heatmaps(plt, view, result.diagnosis)
    fig.suptitle(title + "\n" + "\n".join(textwrap.wrap(caption, 150)), fontsize=10)
    return save(fig, out)


def slice_note(view) -> str:
    """Where a stage of more than two axes is cut, in words ("" when the whole stage is drawn).

    Example:
        >>> from types import SimpleNamespace
        >>> slice_note(SimpleNamespace(fixed=((0, 2), (1, 0))))
        'slice at axis 0=2, 1=0: the worst location'
    """
    if not view.fixed:
        return ""
    return f"slice at axis {', '.join(f'{axis}={index}' for axis, index in view.fixed)}: the worst location"


def _lines(plt, view):
    a, b, axes = view.reference, view.candidate, view.axes
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=[2, 1], layout="constrained")
    x = np.arange(a.size)
    top.plot(x, a, lw=1.2, label="reference", color="#1565c0")
    top.plot(x, b, lw=1.0, ls="--", label="candidate", color="#e65100")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    bottom.plot(x, view.difference, lw=1.0, color="#6a1b9a")
    bottom.axhline(0, color="gray", lw=0.6)
    bottom.set_ylabel("candidate − reference")
    bottom.set_xlabel(f"index along axis {axes[0]}")
    bottom.grid(alpha=0.3)
    return fig


def _heatmaps(plt, view, findings):
    axes = view.axes
    step = [max(1, math.ceil(n / MAX_PIXELS)) for n in view.reference.shape]
    a, b, d = (x[:: step[0], :: step[1]] for x in (view.reference, view.candidate, view.difference))
    both = np.concatenate([a[np.isfinite(a)], b[np.isfinite(b)]])
    lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    dmax = float(np.nanmax(np.abs(d[np.isfinite(d)]))) if np.isfinite(d).any() else 1.0
    fig, panels = plt.subplots(1, 3, figsize=(17, 5.6), sharey=True, layout="constrained")
    norm = _value_norm(a, b)
    extent = (-0.5, a.shape[1] * step[1] - 0.5, -0.5, a.shape[0] * step[0] - 0.5)
    for ax, data, label, cmap, limits, scale in (
        (panels[0], a, "reference", "magma", (lo, hi), norm),
        (panels[1], b, "candidate", "magma", (lo, hi), norm),
        (panels[2], d, "difference (candidate − reference)", "RdBu_r", (-dmax or -1, dmax or 1), None),
    ):
        bounds = {} if scale is not None else {"vmin": limits[0], "vmax": limits[1]}
        image = ax.imshow(
            data, origin="lower", aspect="auto", interpolation="nearest", cmap=cmap, norm=scale, extent=extent, **bounds
        )
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(f"axis {axes[1]} (index)")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    panels[0].set_ylabel(f"axis {axes[0]} (index)")
    for finding in findings:
        if finding.get("kind") in ("padding", "localized") and finding["axis"] in axes:
            _outline(panels[2], finding, axes, extent)
    return fig


def _value_norm(a, b):
    """A log colour scale for non-negative data spanning many decades (a power spectrum), else None."""
    values = np.concatenate([a[np.isfinite(a)], b[np.isfinite(b)]])
    if values.size == 0 or values.min() < 0:
        return None
    positive = values[values > 0]
    if positive.size == 0 or values.max() / positive.min() < 1e3:
        return None
    from matplotlib.colors import LogNorm

    return LogNorm(vmin=max(float(positive.min()), float(values.max()) * 1e-8), vmax=float(values.max()))


def _outline(ax, finding, axes, extent) -> None:
    lo, hi = finding["start"] - 0.5, finding["stop"] - 0.5
    style = {"color": "black", "ls": "--" if finding["kind"] == "padding" else ":", "lw": 1.3}
    if finding["axis"] == axes[1]:
        ax.axvline(lo, **style)
        ax.axvline(hi, **style)
    else:
        ax.axhline(lo, **style)
        ax.axhline(hi, **style)
