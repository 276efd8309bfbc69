"""One stage of a stats-only (sketch) trace in detail: ``trace diff A B --stage NAME`` by sketch.

A sketch trace (``trace run --stats``, :mod:`numtrace.compare.sketches.format`)
holds each stage's shape, dtype, statistics, channel means and hash, not its
values. When either side is one, the drill-down compares the two sketches by
the rule of ``trace diff`` (:func:`~numtrace.compare.sketches.diff.compare_sketches`;
a full trace's stage is sketched on the fly): both sides' statistics, their
differences against the tolerance ``T = rtol * abs_max(a) + atol``, the lower
bounds of the difference metrics, the findings, and the channel means of both
sides with their difference and each channel's verdict
(:func:`~numtrace.compare.sketches.diff.channel_ratios`). Element-wise profiles
and worst locations need values: the detail says how to record the stage in
full (:func:`rerecord_command`). :mod:`numtrace.report.sketch` renders it.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.compare.sketches.format import SKETCH_KEY, STAGE_PREFIX, encode_info, make_sketch
    >>> def sketched(x, **meta):
    ...     means, info = make_sketch(x)
    ...     meta.update({SKETCH_KEY: "1", STAGE_PREFIX + "mel": encode_info(info)})
    ...     return MemoryTrace({"mel": means}, metadata=meta, label="ref.st")
    >>> x = np.linspace(-10.0, 0.0, 40).reshape(1, 8, 5)
    >>> y = x.copy(); y[:, 3:5] += 1.0
    >>> data = sketch_stage_detail(sketched(x), sketched(y), "mel").to_dict()
    >>> data["verdict"], data["channels"]["verdict"][2:6], data["stats_only"]
    ('LARGE', ['MATCH', 'LARGE', 'LARGE', 'MATCH'], ['a', 'b'])
    >>> rerecord_command(sketched(x, **{"numtrace.argv": '["decode.py", "--f32"]'}), "step@[2]")
    "trace run --only 'step@[[]2]' -o ref-full.st decode.py --f32"
"""

from __future__ import annotations

import json
import os
import re
import shlex

import numpy as np

from ... import backends
from ..pairing.align import paired_stage
from ..precision import Precisions
from ..result import StageDetail
from ..rootcause import relative_error
from ..verdict import ToleranceTable, classify
from .diff import channel_ratios, compare_pair
from .format import is_sketch_trace

_STATS = ("min", "max", "mean", "std", "abs_max")


def rerecord_command(trace, name: str | None = None) -> str:
    """The ``trace run --only`` command that records ``name`` (or a PATTERN) in full, from the
    trace's recorded command line (``numtrace.argv``) when it has one."""
    pattern = shlex.quote(re.sub(r"([*?[])", r"[\1]", name)) if name else "'PATTERN'"
    stem, ext = os.path.splitext(os.path.basename(str(trace.label)))
    if ext not in (".st", ".safetensors", ".h5") or not stem:
        stem, ext = "trace", ".st"
    backend = trace.metadata.get("numtrace.backend")
    backend = f" --backend {backend}" if backend in backends.names() and backend != "numpy" else ""
    return f"trace run{backend} --only {pattern} -o {shlex.quote(stem + '-full' + ext)} {_script(trace)}"


def _script(trace) -> str:
    try:
        argv = json.loads(trace.metadata.get("numtrace.argv", ""))
    except (ValueError, RecursionError):
        argv = None
    if isinstance(argv, list) and argv and all(isinstance(a, str) and a.isprintable() for a in argv):
        text = " ".join(shlex.quote(a) for a in argv)
        if len(text) <= 200:
            return text
    return "SCRIPT [ARGS...]"


def sketch_stage_detail(
    reference, candidate, name: str, *, tolerances: ToleranceTable | None = None, map=None
) -> StageDetail:  # noqa: A002
    """Everything the drill-down by sketch shows (module docstring): a
    :class:`~numtrace.compare.result.StageDetail`."""
    pair = paired_stage(reference, candidate, name, map)
    assert pair.name_a is not None and pair.name_b is not None  # paired_stage raises otherwise
    table = tolerances if tolerances is not None else ToleranceTable()
    inherited = Precisions(reference, candidate).at(pair)
    result, (means_a, info_a), (means_b, info_b), tolerance = compare_pair(reference, candidate, pair, table, inherited)
    result.rel_err = relative_error(result)
    peak = info_a["abs_max"] or 0.0
    limit = tolerance.rtol * peak + tolerance.resolve_atol(peak, info_a["dtype"], info_b["dtype"])
    traces = {"a": reference, "b": candidate}
    stats_only = [side for side, t in traces.items() if is_sketch_trace(t)]
    extra = {
        "compared_by": "sketch",
        "labels": {side: str(t.label) for side, t in traces.items()},
        "stats_only": stats_only,
        "limit": limit,
        "hash": {"a": info_a["hash"], "b": info_b["hash"]},
        "statistics": {k: None if info_a[k] is None or info_b[k] is None else info_b[k] - info_a[k] for k in _STATS},
        "channels": channels(means_a, info_a, means_b, info_b, limit),
        "profiles": [],
        "worst": [],
        "rerecord": {side: rerecord_command(traces[side], getattr(pair, f"name_{side}")) for side in stats_only},
    }
    return StageDetail(result, extra)


def channels(means_a, a: dict, means_b, b: dict, limit: float) -> dict | None:
    """Both sides' channel means, their difference and each channel's verdict (None without)."""
    if a["axis"] is None or a["axis"] != b["axis"] or means_a.shape != means_b.shape or means_a.size == 0:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        delta = means_b - means_a
    verdicts = [classify(float(r)).value for r in channel_ratios(means_a, means_b, limit)]
    return {
        "axis": a["axis"],
        "length": int(means_a.size),
        "reference": means_a.tolist(),
        "candidate": means_b.tolist(),
        "delta": delta.tolist(),
        "verdict": verdicts,
    }
