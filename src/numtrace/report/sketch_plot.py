"""``trace plot A B --stage NAME`` when either trace is stats-only: what a sketch holds, drawn.

A sketch trace (``trace run --stats``) has no values to draw as heatmaps. What
it has per stage, the channel means, is drawn instead: both sides' channel
means along the channel axis, and below them each channel's difference with
the tolerance band ``±T`` of the diff by sketch, coloured by the channel's
verdict, as :func:`numtrace.compare.sketches.detail.sketch_stage_detail` computes them
(:mod:`numtrace.commands.plot` asks for it). A stage without channel means
(0-d or 1-d) has nothing to draw: UsageError, one line that says how to
record the stage in full.

Example:
    >>> import numpy as np, os, tempfile
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare.sketches.detail import sketch_stage_detail
    >>> from numtrace.compare.sketches.format import SKETCH_KEY, STAGE_PREFIX, encode_info, make_sketch
    >>> def sketched(x):
    ...     means, info = make_sketch(x)
    ...     return MemoryTrace({"mel": means}, metadata={SKETCH_KEY: "1", STAGE_PREFIX + "mel": encode_info(info)})
    >>> x = np.linspace(-10.0, 0.0, 80).reshape(1, 16, 5)
    >>> detail = sketch_stage_detail(sketched(x), sketched(x + 0.5), "mel")
    >>> out = plot_sketch_stage(detail, os.path.join(tempfile.mkdtemp(), "mel.png"))
    >>> os.path.getsize(out) > 1000
    True
    >>> flat = sketch_stage_detail(sketched(x[0, 0]), sketched(x[0, 0]), "mel")
    >>> plot_sketch_stage(flat, "x.png")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    numtrace.errors.UsageError: stage 'mel' has no channel means to plot (...); ... trace run --only mel -o ...
"""

from __future__ import annotations

import textwrap

import numpy as np

from ..errors import UsageError
from .figures import pyplot, save
from .sketch import stats_only_words
from .stage import detail_json

_COLORS = {"MATCH": "#2e7d32", "SMALL": "#ef8f00", "LARGE": "#c62828"}


def plot_sketch_stage(detail, out, name: str | None = None) -> str:
    """Both sides' channel means and their difference against ±T (module docstring), from the stage's
    comparison by sketch (a :class:`~numtrace.compare.result.StageDetail`; ``name``: the stage as the
    user named it, for the error). Returns ``out``."""
    detail = detail_json(detail)
    name = name or detail["name"]
    channels = detail["channels"]
    if channels is None:
        commands = sorted(set(detail["rerecord"].values()))
        raise UsageError(
            f"stage {name!r} has no channel means to plot ({stats_only_words(detail)}, recorded with --stats); "
            f"to plot its values, record it in full: {' and '.join(commands)}"
        )
    plt = pyplot()
    a, b, d = (
        np.array([np.nan if v is None else v for v in channels[k]], dtype=float)
        for k in ("reference", "candidate", "delta")
    )
    x = np.arange(a.size)
    marker = "o" if a.size <= 64 else None
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=[2, 1], layout="constrained")
    top.plot(x, a, lw=1.2, marker=marker, ms=3, label="reference", color="#1565c0")
    top.plot(x, b, lw=1.0, ls="--", marker=marker, ms=3, label="candidate", color="#e65100")
    top.set_ylabel("channel mean")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    limit = detail["limit"] or 0.0
    bottom.axhspan(-limit, limit, color="#2e7d32", alpha=0.15, lw=0, label=f"±T = ±{limit:.3g}")
    bottom.bar(
        x,
        np.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0),
        width=0.8 if a.size <= 256 else 1.0,
        color=[_COLORS[v] for v in channels["verdict"]],
    )
    bottom.axhline(0, color="gray", lw=0.6)
    bottom.set_ylabel("candidate − reference")
    bottom.set_xlabel(f"channel (index along axis {channels['axis']})")
    bottom.legend(fontsize=8, loc="upper right")
    bottom.grid(alpha=0.3)
    title = detail["name"] + (f" ↔ {detail['name_b']}" if detail.get("name_b") else "")
    caption = f"{detail['verdict']} (compared by sketch): {detail['words'] or 'no finding'}"
    fig.suptitle(
        f"{title}: channel means along axis {channels['axis']}, {stats_only_words(detail)}\n"
        + "\n".join(textwrap.wrap(caption, 150)),
        fontsize=10,
    )
    return save(fig, out)
