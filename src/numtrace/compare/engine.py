"""The diff engine: align stages, compare each, diagnose what does not match.

Plain path (equal shapes): both stages are streamed in bounded chunks
(:func:`~numtrace.compare.statistics.stats.compare_stage`), or, when small, compared in a
batch with their small neighbours (:mod:`~numtrace.compare.small_stages`: the same numbers,
bit for bit, without the per-stage cost); a stage that is not MATCH is
then diagnosed (:func:`~numtrace.compare.diagnosis.diagnose.diagnose`): read whole up to
``diagnose_max_elements`` elements
(:data:`~numtrace.compare.diagnosis.diagnose.DIAGNOSE_MAX_ELEMENTS` by default), beyond
from a window of that many elements and exact whole-stage sums, streamed
(:mod:`~numtrace.compare.diagnosis.sample`; the note names the window). Statistics and
verdicts always come from the whole stage. ``diagnose_max_elements=0`` turns
diagnosis off (the dtype and non-finite findings stay).

Aligned path (shapes differ): both stages are read whole (up to
:data:`~numtrace.compare.pairing.layout.ALIGN_MAX_ELEMENTS`) and lined up by
:func:`~numtrace.compare.pairing.layout.align_arrays`: singleton axes, a permutation
(``layout``), one axis of another length (``shape``: the overlap is compared).
The verdict comes from the aligned values, except that a length mismatch is
never MATCH: it is at least SMALL (the overlap agrees, but elements exist on
one side only; like a MISSING stage it fails only with ``--fail-on small``).
``diff`` metrics are over the aligned values, ``worst_index`` in the overlap's
coordinates in the reference's axis order; ``a``/``b`` describe each whole stage.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> mel = np.linspace(-80.0, 0.0, 80 * 313).reshape(1, 80, 313)
    >>> report = diff(MemoryTrace({"mel": mel}), MemoryTrace({"mel": mel[:, :, :312]}))
    >>> report.stages[0].verdict.value, report.stages[0].diagnosis[0]
    ('SMALL', Finding(kind='shape', axis=2, a_len=313, b_len=312, a_start=0, b_start=0))
"""

from __future__ import annotations

import math
from collections import deque
from typing import Callable

import numpy as np

from ..errors import UsageError
from ..trace import MemoryTrace, Trace
from . import rootcause
from .diagnosis import sample
from .diagnosis.diagnose import DIAGNOSE_MAX_ELEMENTS, diagnose
from .findings import Finding
from .own_errors import check_replay, own_errors
from .pairing.align import Pair, align, ignored
from .pairing.layout import ALIGN_MAX_ELEMENTS, align_arrays
from .pairing.module_inputs import inputs_on_one_side, without_inputs
from .pairing.names import as_name_map
from .parallel import PARALLEL_MIN_ELEMENTS, available_cores, in_order
from .precision import Inherited, Precisions, tolerance_for
from .result import DiffReport, StageResult, recording_status
from .sketches.format import is_sketch_trace
from .small_stages import SmallStages
from .statistics.stats import compare_stage, summarize
from .verdict import Tolerance, ToleranceTable, Verdict, classify


def diff(
    reference: Trace,
    candidate: Trace,
    *,
    tolerances: ToleranceTable | None = None,
    only: list[str] | None = None,
    chunk_elements: int = 1 << 20,
    map=None,  # noqa: A002 - the name the CLI (--map) and numtrace.testing use
    diagnose_max_elements: int = DIAGNOSE_MAX_ELEMENTS,
    progress: Callable[[int, int, str], None] | None = None,
    replay: Trace | None = None,
    jobs: int | None = None,
) -> DiffReport:
    """Compare every aligned stage of ``candidate`` against ``reference``.

    ``candidate`` may be the rank traces of a sharded run (:class:`numtrace.sharded.ShardedTrace`):
    each stage is compared as the ranks combine (``sharding`` per stage).

    ``replay``: the replay trace of ``trace replay`` (the candidate's modules run on the
    reference's recorded inputs): each stage it holds gets its own error, the reference's
    recorded inputs are left out of the pairing, and the root cause is the first stage whose own
    verdict is not MATCH (:mod:`numtrace.compare.own`).

    ``progress(done, total, stage)`` is called after each stage (a progress bar's update).

    ``jobs``: threads comparing stages of at least :data:`PARALLEL_MIN_ELEMENTS` elements ahead
    of the stage being reported (NumPy's kernels release the GIL); None: the cores available to
    the process (:func:`~numtrace.compare.parallel.available_cores`), 1: one thread. The report
    is the same, byte for byte, whatever ``jobs``.

    ``map`` is a :class:`~numtrace.compare.pairing.names.NameMap`, a map-file path, a
    dict of the map file's contents, or None (see docs/diagnosis.md). When
    either trace was recorded in stats-only mode (``trace run --stats``), this
    is :func:`numtrace.compare.sketches.diff.diff` (same arguments, same report).

    Example:
        >>> import numpy as np
        >>> from numtrace.trace import MemoryTrace
        >>> a = MemoryTrace({"x": np.array([1.0, np.nan])})
        >>> b = MemoryTrace({"x": np.array([1.0, np.nan]), "y": np.zeros(2)})
        >>> [(s.name, s.verdict.value, s.only_in) for s in diff(a, b).stages]
        [('x', 'MATCH', None), ('y', 'MISSING', 'b')]
    """
    if replay is not None:
        check_replay(replay, reference, candidate)
    sharded = callable(getattr(candidate, "sharding", None))  # the rank traces of a sharded run
    if sharded and (is_sketch_trace(reference) or is_sketch_trace(candidate)):
        raise UsageError(
            "the ranks of a sharded run are combined from their values; stats-only traces (trace run --stats) "
            "have none: diff one rank's trace, or record in full"
        )
    if is_sketch_trace(reference) or is_sketch_trace(candidate):
        from .sketches import diff as by_sketch  # on demand: it imports this module's neighbours; start-up stays lean

        return by_sketch.diff(
            reference,
            candidate,
            tolerances=tolerances,
            only=only,
            chunk_elements=chunk_elements,
            map=map,
            diagnose_max_elements=diagnose_max_elements,
            progress=progress,
        )
    table = tolerances if tolerances is not None else ToleranceTable()
    jobs = available_cores() if jobs is None else max(1, int(jobs))
    names = as_name_map(map)
    one_side = "a" if replay is not None else inputs_on_one_side(reference.order, candidate.order)
    if one_side is not None:
        names = without_inputs(names, one_side)
    pairs = align(reference, candidate, only, names)
    if sharded:
        candidate.bind(reference, pairs)  # type: ignore[attr-defined]
    precisions = Precisions(reference, candidate)
    stages = []
    recent: deque[tuple[str, tuple]] = deque(maxlen=LOOKBACK)  # the last compared reference stages, shapes
    largest = 0.0

    def tolerance_of(pair: Pair) -> tuple[Tolerance, Inherited | None]:
        info_a, info_b = reference.info(pair.name_a), candidate.info(pair.name_b)  # type: ignore[arg-type]
        return tolerance_for(table, pair.name_a, info_a.dtype, info_b.dtype, precisions.at(pair))  # type: ignore[arg-type]

    small = SmallStages(reference, candidate, pairs, tolerance_of)

    def compare(index: int) -> Compared:
        pair = pairs[index]
        if pair.name_a is None or pair.name_b is None:
            return _missing(reference, candidate, pair, chunk_elements), None
        batched = small.take(index)
        if batched is not None:
            tolerance, precision, stats = batched
            if stats is not None:  # else a value the batch refuses (a NaN...): compared alone below
                return _judged(reference, candidate, pair, tolerance, precision, stats, diagnose_max_elements, True)
        precision = precisions.at(pair)
        return _compare(reference, candidate, pair, table, chunk_elements, diagnose_max_elements, precision, True)

    def large(index: int) -> bool:
        pair = pairs[index]
        if pair.name_a is not None:
            return reference.info(pair.name_a).size >= PARALLEL_MIN_ELEMENTS
        return pair.name_b is not None and candidate.info(pair.name_b).size >= PARALLEL_MIN_ELEMENTS

    for done, (index, compared) in enumerate(in_order(range(len(pairs)), compare, large, jobs), 1):
        pair = pairs[index]
        result, window = _now(compared)
        if progress is not None:
            progress(done - 1, len(pairs), pair.name)
        stages.append(result)
        if pair.name_a is None or pair.name_b is None:
            continue
        r = rootcause.relative_error(result)
        if r is None:
            continue
        if _born_unexplained(result, r, largest, diagnose_max_elements):
            _diagnose_with_context(reference, candidate, pair, result, recent, window, diagnose_max_elements)
        largest = max(largest, r)
        recent.append((pair.name_a, tuple(reference.info(pair.name_a).shape)))
    if sharded:
        add_sharding(candidate, pairs, stages)
    rootcause.annotate(stages)
    report = DiffReport(
        reference.label,
        candidate.label,
        stages,
        ignored(reference, candidate, names),
        recording_status(reference, candidate),
    )
    if replay is not None:

        def against_replay(trace: Trace, pair: Pair) -> StageResult:
            precision = precisions.at(pair)
            result, _ = _now(_compare(reference, trace, pair, table, chunk_elements, diagnose_max_elements, precision))
            return result

        report.replay = own_errors(reference, replay, pairs, stages, against_replay, diagnose_max_elements)
    return report


#: Earlier stages a stage where the error is born is compared with (``proportional``).
LOOKBACK = 8
#: ... unless its own findings already explain all but this share of its error.
CONTEXT_BELOW = 1.0 - 1e-6


def _born_unexplained(result: StageResult, r: float, largest: float, diagnose_max: int) -> bool:
    """A stage where the error is born (rootcause's jump), same shapes, not yet explained."""
    if result.verdict not in (Verdict.SMALL, Verdict.LARGE) or result.diff is None or math.isinf(r):
        return False
    assert result.a is not None and result.b is not None  # a compared stage has both sides' statistics
    if tuple(result.a.shape) != tuple(result.b.shape) or diagnose_max <= 0:
        return False
    if any(f["kind"] == "precision" for f in result.diagnosis):
        return False  # rounding: no fit runs, earlier stages would change nothing
    floor = rootcause.rounding_floor(result)
    if max(r, floor) < rootcause.JUMP_RATIO * max(largest, floor):
        return False
    return max((f.get("explained", 0.0) for f in result.diagnosis), default=0.0) < CONTEXT_BELOW


def _diagnose_with_context(
    reference: Trace,
    candidate: Trace,
    pair: Pair,
    result: StageResult,
    recent,
    window: sample.Window | None,
    diagnose_max: int,
) -> None:
    assert pair.name_a is not None and pair.name_b is not None and result.a is not None  # a compared stage
    shape = tuple(result.a.shape)
    names = [name for name, other in recent if other == shape]
    if not names:
        return
    if window is not None:  # a large stage: the same window of each earlier stage
        result.diagnosis = window.diagnose(sample.related_values(reference, names, window))
    elif math.prod(shape) <= diagnose_max:  # read whole
        info_a, info_b = reference.info(pair.name_a), candidate.info(pair.name_b)
        related = {name: reference.read(name) for name in names}
        result.diagnosis = diagnose(
            reference.read(pair.name_a), candidate.read(pair.name_b), info_a.dtype, info_b.dtype, related
        )


def add_sharding(candidate, pairs: list[Pair], stages: list[StageResult]) -> None:
    """How the ranks of a sharded candidate hold each stage (:mod:`numtrace.compare.sharding`),
    and what its findings say (a rank that disagrees, shards in another order or along another
    axis, partial sums), ahead of the stage's own findings."""
    for pair, stage in zip(pairs, stages):
        plan = candidate.sharding(pair.name_b) if pair.name_b is not None else None
        if plan is not None:
            stage.sharding = plan.to_dict()
            stage.diagnosis = list(plan.findings) + [
                f for f in stage.diagnosis if f.kind != "unexplained" or not plan.findings
            ]


def _missing(reference: Trace, candidate: Trace, pair: Pair, chunk_elements: int) -> StageResult:
    name, trace = (pair.name_a, reference) if pair.name_a is not None else (pair.name_b, candidate)
    assert name is not None  # a pair has at least one side
    return StageResult.missing(pair, summarize(trace, name, chunk_elements))


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _dtype_finding(dtype_a: str, dtype_b: str) -> list[Finding]:
    return [Finding.of("dtype", a=dtype_a, b=dtype_b)] if dtype_a != dtype_b else []


def _verdict_note(d, overlap: bool = False) -> str:
    worst = "a non-finite mismatch" if math.isinf(d.max_ratio) else f"{d.max_ratio:.3g}x its tolerance"
    what = "overlapping values" if overlap else "values"
    return f"{d.mismatched} of {d.total} {what} outside tolerance; worst {worst} at {d.worst_index}"


def compare_pair(
    reference: Trace,
    candidate: Trace,
    pair: Pair,
    table: ToleranceTable,
    chunk_elements: int = 1 << 20,
    diagnose_max_elements: int = DIAGNOSE_MAX_ELEMENTS,
) -> StageResult:
    """The :class:`StageResult` of one paired stage (plain or aligned path, module docstring), with
    the tolerance the full diff gives it (its inherited precision included)."""
    precision = Precisions(reference, candidate).at(pair)
    return _now(_compare(reference, candidate, pair, table, chunk_elements, diagnose_max_elements, precision))[0]


#: a compared stage and the window it was diagnosed from; or, deferred, what computes them
Judged = tuple[StageResult, "sample.Window | None"]
Compared = Judged | Callable[[], Judged]


def _now(compared: Compared) -> Judged:
    """A compared stage, its deferred part run here if it has one."""
    return compared() if callable(compared) else compared


def _compare(
    reference: Trace,
    candidate: Trace,
    pair: Pair,
    table: ToleranceTable,
    chunk_elements: int,
    diagnose_max_elements: int,
    precision: Inherited | None = None,
    defer: bool = False,
) -> Compared:
    """:func:`compare_pair`, and the window a large stage was diagnosed from (None if none).

    With ``defer``, what holds whole stages in memory (a divergent stage's diagnosis, a stage
    of another shape laid out) is returned as a function for the caller's thread to run: worker
    threads then only stream statistics, and peak memory does not grow with ``--jobs``."""
    name_a, name_b = pair.name_a, pair.name_b
    assert name_a is not None and name_b is not None  # a paired stage: callers check
    info_a, info_b = reference.info(name_a), candidate.info(name_b)
    tolerance, precision = tolerance_for(table, name_a, info_a.dtype, info_b.dtype, precision)
    if tuple(info_a.shape) != tuple(info_b.shape):

        def laid_out() -> Judged:
            args = (reference, candidate, pair, tolerance, chunk_elements, diagnose_max_elements, precision)
            return _compare_aligned(*args), None

        return laid_out if defer else laid_out()
    stats = compare_stage(reference, name_a, candidate, name_b, tolerance, chunk_elements)
    return _judged(reference, candidate, pair, tolerance, precision, stats, diagnose_max_elements, defer)


def _judged(
    reference: Trace,
    candidate: Trace,
    pair: Pair,
    tolerance: Tolerance,
    precision: Inherited | None,
    stats: tuple,
    diagnose_max_elements: int,
    defer: bool = False,
) -> Compared:
    """The verdict and diagnosis of a same-shape stage from its statistics ``(a, b, diff)``
    (with ``defer``, a divergent stage's diagnosis is returned to run: :func:`_compare`)."""
    verdict = classify(stats[2].max_ratio)
    args = (reference, candidate, pair, tolerance, precision, stats, verdict, diagnose_max_elements)
    if defer and diagnose_max_elements > 0 and verdict is not Verdict.MATCH:
        return lambda: _judgement(*args)
    return _judgement(*args)


def _judgement(
    reference: Trace,
    candidate: Trace,
    pair: Pair,
    tolerance: Tolerance,
    precision: Inherited | None,
    stats: tuple,
    verdict: Verdict,
    diagnose_max_elements: int,
) -> Judged:
    """:func:`_judged`, its diagnosis run now."""
    name_a, name_b = pair.name_a, pair.name_b
    assert name_a is not None and name_b is not None  # a paired stage: callers check
    info_a, info_b = reference.info(name_a), candidate.info(name_b)
    stats_a, stats_b, d = stats
    window = None
    if verdict is Verdict.MATCH:
        findings, note = _dtype_finding(info_a.dtype, info_b.dtype), ""
    elif info_a.size <= diagnose_max_elements:
        findings = diagnose(reference.read(name_a), candidate.read(name_b), info_a.dtype, info_b.dtype)
        note = _verdict_note(d)
    elif diagnose_max_elements > 0:
        findings, sampled, window = sample.diagnose_stage(
            reference, name_a, candidate, name_b, stats_a, stats_b, d, diagnose_max_elements
        )
        note = _join(_verdict_note(d), sampled)
    else:
        findings = _undiagnosed(d, info_a.dtype, info_b.dtype)
        note = _join(_verdict_note(d), f"not diagnosed: {info_a.size} elements > {diagnose_max_elements}")
    result = StageResult.paired(
        pair,
        note=note,
        verdict=verdict,
        a=stats_a,
        b=stats_b,
        diff=d,
        tolerance=tolerance,
        diagnosis=findings,
        precision=precision,
    )
    return result, window


def _undiagnosed(d, dtype_a: str, dtype_b: str) -> list[Finding]:
    """The findings of a stage that is not diagnosed: non-finite values and dtypes."""
    findings = [
        Finding.of("nonfinite", side=side, count=count)
        for side, count in (("a", d.nonfinite_a), ("b", d.nonfinite_b))
        if count
    ]
    return findings + _dtype_finding(dtype_a, dtype_b)


def aligned_arrays(reference: Trace, candidate: Trace, pair: Pair):
    """Both stages read whole and lined up: ``(a, b, findings, note)``, or None if they cannot be.

    Example:
        >>> import numpy as np
        >>> from numtrace.trace import MemoryTrace
        >>> a, b, findings, _ = aligned_arrays(MemoryTrace({"x": np.ones((2, 3))}),
        ...                                    MemoryTrace({"x": np.ones((3, 2))}), Pair("x", "x"))
        >>> b.shape, findings
        ((2, 3), [Finding(kind='layout', perm=[1, 0])])
    """
    assert pair.name_a is not None and pair.name_b is not None  # a paired stage: callers check
    va, vb = reference.read(pair.name_a), candidate.read(pair.name_b)
    return align_arrays(va, vb)


def _compare_aligned(
    reference,
    candidate,
    pair,
    tolerance: Tolerance,
    chunk_elements,
    diagnose_max_elements,
    precision: Inherited | None = None,
) -> StageResult:
    name_a, name_b = pair.name_a, pair.name_b
    info_a, info_b = reference.info(name_a), candidate.info(name_b)
    shape_note = f"shapes differ: reference {tuple(info_a.shape)}, candidate {tuple(info_b.shape)}"
    aligned = None
    if max(info_a.size, info_b.size) <= ALIGN_MAX_ELEMENTS:
        whole_a, whole_b = reference.read(name_a), candidate.read(name_b)
        aligned = align_arrays(whole_a, whole_b)
    else:
        shape_note += f" (too large to align: more than {ALIGN_MAX_ELEMENTS} elements)"
    if aligned is None:
        stats_a = summarize(reference, name_a, chunk_elements)
        stats_b = summarize(candidate, name_b, chunk_elements)
        findings = _dtype_finding(info_a.dtype, info_b.dtype)
        for side, stats in (("a", stats_a), ("b", stats_b)):
            if stats.nonfinite:  # no position is compared, so none of them is matched
                findings.append(Finding.of("nonfinite", side=side, count=stats.nonfinite))
        return StageResult.paired(
            pair,
            aligned=shape_note,
            verdict=Verdict.LARGE,
            a=stats_a,
            b=stats_b,
            tolerance=tolerance,
            diagnosis=findings,
            precision=precision,
        )
    av, bv, align_findings, align_note = aligned
    stats_a = summarize(MemoryTrace({"x": (whole_a, info_a.dtype)}), "x", chunk_elements)
    stats_b = summarize(MemoryTrace({"x": (whole_b, info_b.dtype)}), "x", chunk_elements)
    view_a = MemoryTrace({"x": (np.ascontiguousarray(av), info_a.dtype)})
    view_b = MemoryTrace({"x": (np.ascontiguousarray(bv), info_b.dtype)})
    _, _, d = compare_stage(view_a, "x", view_b, "x", tolerance, chunk_elements)
    values_verdict = classify(d.max_ratio)
    lengths_differ = any(f["kind"] == "shape" for f in align_findings)
    verdict = values_verdict
    if lengths_differ and verdict is Verdict.MATCH:
        verdict = Verdict.SMALL
    if values_verdict is Verdict.MATCH:
        findings = align_findings + _dtype_finding(info_a.dtype, info_b.dtype)
        note = "overlap matches" if lengths_differ else ""
    elif av.size <= diagnose_max_elements:
        findings = align_findings + diagnose(av, bv, info_a.dtype, info_b.dtype)
        note = _verdict_note(d, overlap=lengths_differ)
    elif diagnose_max_elements > 0:  # the aligned values are in memory: a window of them, and their sums
        sampled = sample.diagnose_stage(
            view_a,
            "x",
            view_b,
            "x",
            summarize(view_a, "x", chunk_elements),
            summarize(view_b, "x", chunk_elements),
            d,
            diagnose_max_elements,
        )
        findings = align_findings + sampled[0]
        note = _join(_verdict_note(d, overlap=lengths_differ), sampled[1])
    else:
        findings = align_findings + _dtype_finding(info_a.dtype, info_b.dtype)
        note = _join(_verdict_note(d, overlap=lengths_differ), "not diagnosed: too large")
    return StageResult.paired(
        pair,
        aligned=align_note,
        note=note,
        verdict=verdict,
        a=stats_a,
        b=stats_b,
        diff=d,
        tolerance=tolerance,
        diagnosis=findings,
        precision=precision,
    )
