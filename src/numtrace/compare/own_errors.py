"""The own error of every stage a replay trace holds (the I/O side of :mod:`numtrace.compare.own`).

Each paired stage whose candidate name the replay trace holds is compared again, reference output
against the replayed output, with the stage's tolerance; when that is not MATCH, or is a MATCH
:data:`BELOW_TOLERANCE_RATIO` times the rounding level or more, the module's reference input, the
reference output and the replayed output are fitted to simple modules
(:mod:`numtrace.compare.diagnosis.io_fits`: a transposed weight, a dropped bias, another
activation or norm). The replay trace's ``numtrace.replay`` metadata says which reference call
each stage replayed and which calls could not be replayed.
"""

from __future__ import annotations

import json
from typing import Callable

from ..errors import UsageError
from ..trace import Trace
from .diagnosis.io_fits import io_findings
from .own import OwnError, mark
from .pairing.align import Pair
from .pairing.module_inputs import recorded_inputs, split_call
from .rootcause import BORN_HERE_RATIO, relative_error, rounding_floor
from .sketches.format import is_sketch_trace
from .verdict import Verdict

REPLAY_KEY = "numtrace.replay"
#: a MATCH own error at least this many times the rounding level is fitted too: an error born under
#: the tolerance (exact against tanh GELU) is named when a fit earns it
BELOW_TOLERANCE_RATIO = BORN_HERE_RATIO


def replay_record(replay: Trace) -> dict:
    """What ``trace replay`` wrote about the replay (``replayed``, ``not_replayed``, ``notes``)."""
    try:
        record = json.loads(replay.metadata.get(REPLAY_KEY, "{}"))
    except ValueError:
        record = {}
    return record if isinstance(record, dict) else {}


def check_replay(replay: Trace, reference: Trace, candidate: Trace) -> None:
    """UsageError unless ``replay`` is a replay trace and the two traces hold full values."""
    if REPLAY_KEY not in replay.metadata:
        raise UsageError(f"{replay.label} is not a replay trace: write one with trace replay (docs/replay.md)")
    if is_sketch_trace(reference) or is_sketch_trace(candidate) or is_sketch_trace(replay):
        raise UsageError("--replay compares full traces; a stats-only trace (trace run --stats) has no values")


def own_errors(
    reference: Trace,
    replay: Trace,
    pairs: list[Pair],
    stages: list,
    compare: Callable,
    diagnose_max_elements: int,
) -> dict:
    """Set ``own`` on the stages (``stages[i]`` is ``pairs[i]``'s result); return the report's
    ``replay`` entry. ``compare(replay, pair)`` compares one pair against the replay trace."""
    record = replay_record(replay)
    modules: dict[str, str] = record.get("replayed", {}) if isinstance(record.get("replayed"), dict) else {}
    notes: dict = record.get("notes", {}) if isinstance(record.get("notes"), dict) else {}
    inputs = recorded_inputs(list(reference.order))
    held = set(replay.order)
    for pair, stage in zip(pairs, stages):
        if stage.verdict is Verdict.MISSING or pair.name_a is None or pair.name_b not in held or pair.how == "twin":
            continue  # (a twin repeats another stage's values: the own error is that stage's)
        result = compare(replay, pair)
        findings, r = list(result.diagnosis), relative_error(result)
        matched = result.verdict is Verdict.MATCH
        below = matched and r is not None and r >= BELOW_TOLERANCE_RATIO * rounding_floor(result)
        fitted = []
        if (below or not matched) and diagnose_max_elements > 0:
            fitted = _fitted(reference, replay, pair, inputs, modules.get(pair.name_b), diagnose_max_elements)
        note = "; ".join(notes.get(pair.name_b, [])) if isinstance(notes.get(pair.name_b), list) else ""
        stage.own = OwnError(result.verdict, r, fitted + findings if not matched else fitted, note)
        stage.own.below_tolerance = below and bool(fitted)
    mark(stages, modules)
    not_replayed = record.get("not_replayed", {})
    return {"trace": replay.label, "not_replayed": not_replayed if isinstance(not_replayed, dict) else {}}


def _fitted(reference: Trace, replay: Trace, pair: Pair, inputs: dict, call: str | None, most: int) -> list:
    """The findings of :func:`~numtrace.compare.diagnosis.io_fits.io_findings` for one stage."""
    assert pair.name_a is not None and pair.name_b is not None  # a compared stage
    x = _input_of(reference, inputs, call, most)
    if x is None or call is None or reference.info(pair.name_a).size > most:
        return []
    weight, bias = _parameters(reference, split_call(call)[0], most)
    return io_findings(x, reference.read(pair.name_a), replay.read(pair.name_b), weight, bias)


def _input_of(reference: Trace, inputs: dict, call: str | None, most: int):
    """The reference's first recorded input of a module call (None when unknown or too large)."""
    if call is None:
        return None
    recorded = inputs.get(split_call(call))
    if not recorded:
        return None
    stage = next(iter(recorded.values()))
    if reference.info(stage).size > most:
        return None
    return reference.read(stage)


def _parameters(reference: Trace, module: str, most: int):
    """The reference module's ``weight`` and ``bias`` when it recorded them (``--weights``)."""
    names = set(reference.order)
    found = []
    for key in ("weight", "bias"):
        stage = f"{module}.{key}" if module else key
        found.append(reference.read(stage) if stage in names and reference.info(stage).size <= most else None)
    return found[0], found[1]
