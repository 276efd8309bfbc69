"""``trace show``: a trace's stages, or one stage, computed by :mod:`numtrace.compare.views` and
printed by :mod:`numtrace.report.show`.

:func:`show_dict` and :func:`stage_dict` are the JSON of ``trace show --json`` and ``trace show
TRACE STAGE --json``; :func:`print_show` and :func:`print_stage_show` print the tables.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> print_show(MemoryTrace({"x": np.arange(4.0)}, label="t.safetensors"), width=80)
    trace: t.safetensors
    stages: 1, order: recorded (numtrace.order)
    ┏━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━┓
    ┃ # ┃ stage ┃ shape ┃ dtype   ┃ [min, max] mean±std ┃ abs max ┃
    ┡━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━┩
    │ 1 │ x     │ (4,)  │ float64 │ [0, 3] 1.5±1.118    │       3 │
    └───┴───────┴───────┴─────────┴─────────────────────┴─────────┘
"""

from __future__ import annotations

import math

import numpy as np

from ..compare.sketches.detail import rerecord_command
from ..compare.views import show_dict, stage_dict
from ..report.show import MAX_PRINTED, render_show, render_stage

__all__ = ["print_show", "print_stage_show", "show_dict", "stage_dict"]


def print_show(trace, only: list[str] | None = None, width: int | None = None) -> None:
    """Print ``trace show``: the metadata, then a table of the stages (those matching ``only``)."""
    data = show_dict(trace, only)
    render_show(data, len(trace), rerecord_command(trace) if data["stats_only"] else None, width=width)


def print_stage_show(trace, name: str, width: int | None = None) -> None:
    """Print ``trace show TRACE STAGE``: one stage's statistics, hash, channel means and (a full
    trace's, up to :data:`~numtrace.report.show.MAX_PRINTED` elements) values."""
    stage = stage_dict(trace, name)
    values, rerecord = None, None
    if stage["stats_only"]:
        rerecord = rerecord_command(trace, name)
    elif math.prod(stage["shape"]) <= MAX_PRINTED:
        values = np.asarray(trace.read(name))
    render_stage(stage, trace.label, values, rerecord, width=width)
