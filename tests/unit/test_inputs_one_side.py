"""Module inputs recorded on one side only (``trace run --inputs`` for the reference, a plain run
of the port): they have nothing to be compared with, so a diff leaves them out and says so,
instead of listing them as MISSING or pairing an input with an output of the same shape."""

import numpy as np

from numtrace.compare import diff
from numtrace.report.table import print_diff
from numtrace.trace import MemoryTrace

rng = np.random.default_rng(3)
x, q = rng.standard_normal((1, 4, 6, 16)).astype(np.float32), rng.standard_normal((1, 4, 6, 16)).astype(np.float32)


def test_the_reference_inputs_are_left_out_when_the_candidate_recorded_none(capsys):
    reference = MemoryTrace({"attn.Func.input.0": x, "attn.Func.0": q, "attn.out": q.sum(axis=-1)})
    candidate = MemoryTrace({"attn.rope": q, "attn.out": q.sum(axis=-1)})
    report = diff(reference, candidate)
    assert report.ignored == {"a": ["attn.Func.input.0"], "b": []}
    assert [(s.name, s.name_b, s.verdict.value) for s in report.stages] == [
        ("attn.Func.0", "attn.rope", "MATCH"),
        ("attn.out", None, "MATCH"),  # the same name: no name_b
    ]
    print_diff(report, width=120)
    assert "left out: 1 stage of the reference (recorded inputs" in capsys.readouterr().out


def test_inputs_recorded_on_both_sides_are_compared_and_the_candidates_alone_left_out():
    both = MemoryTrace({"enc.input": x, "enc": q})
    report = diff(both, both)
    assert [s.name for s in report.stages] == ["enc.input", "enc"] and report.ignored == {"a": [], "b": []}
    candidate_only = diff(MemoryTrace({"enc": q}), both)
    assert candidate_only.ignored == {"a": [], "b": ["enc.input"]} and candidate_only.counts["MISSING"] == 0
