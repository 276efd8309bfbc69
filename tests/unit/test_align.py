import numpy as np

from numtrace.compare.pairing.align import Pair, align
from numtrace.trace import MemoryTrace, natural_sorted


def trace(names, order=None, stored=True):
    t = MemoryTrace({n: np.zeros(1) for n in names}, order=order)
    if not stored:  # a file written without numtrace.order: natural order, has_order False
        t.order, t.has_order = natural_sorted(t.order), False
    return t


def pairs(a, b, only=None):
    return [(p.name_a, p.name_b) for p in align(a, b, only)]


def test_reference_order_with_reference_only_in_place_and_candidate_only_at_the_end():
    a = trace(["enc", "ode.0", "ode.1", "final_proj", "vocoder"])
    b = trace(["vocoder", "extra.1", "enc", "ode.1", "extra.0", "final_proj"])
    assert pairs(a, b) == [
        ("enc", "enc"),
        ("ode.0", None),
        ("ode.1", "ode.1"),
        ("final_proj", "final_proj"),
        ("vocoder", "vocoder"),
        (None, "extra.1"),
        (None, "extra.0"),
    ]
    assert align(a, b)[1] == Pair("ode.0", None) and align(a, b)[1].name == "ode.0"
    assert align(a, b)[-1].name == "extra.0"


def test_reference_without_stored_order_follows_the_candidates_order():
    # e.g. Swift's MLX.save: no numtrace.order, so natural order would be alphabetical
    a = trace(["step.10", "mel", "step.2", "encoder", "swift_only.1", "swift_only.0"], stored=False)
    assert a.order == ["encoder", "mel", "step.2", "step.10", "swift_only.0", "swift_only.1"]
    b = trace(["encoder", "step.2", "step.10", "mel", "py_only"])
    assert pairs(a, b) == [
        ("encoder", "encoder"),
        ("step.2", "step.2"),
        ("step.10", "step.10"),
        ("mel", "mel"),
        ("swift_only.0", None),
        ("swift_only.1", None),
        (None, "py_only"),
    ]


def test_neither_side_ordered_uses_natural_order():
    a = trace(["step.10", "step.2", "step.1"], stored=False)
    b = trace(["step.1", "step.10", "step.2", "step.3"], stored=False)
    assert pairs(a, b) == [("step.1", "step.1"), ("step.2", "step.2"), ("step.10", "step.10"), (None, "step.3")]


def test_ordered_reference_ignores_the_candidates_order():
    a = trace(["b", "a"])
    b = trace(["a", "b"], stored=False)
    assert pairs(a, b) == [("b", "b"), ("a", "a")]


def test_only_keeps_pairs_whose_either_name_matches_any_glob():
    a = trace(["encoder.out", "decoder.0", "decoder.1", "mel"])
    b = trace(["encoder.out", "decoder.1", "decoder.2", "post"])
    assert pairs(a, b, ["decoder.*"]) == [("decoder.0", None), ("decoder.1", "decoder.1"), (None, "decoder.2")]
    assert pairs(a, b, ["mel", "post"]) == [("mel", None), (None, "post")]
    assert pairs(a, b, ["nothing"]) == []
    assert len(align(a, b, [])) == len(align(a, b)) == 6


def test_empty_traces():
    assert align(trace([]), trace([])) == []
    assert pairs(trace([]), trace(["x"])) == [(None, "x")]
