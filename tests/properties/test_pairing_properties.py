"""Property tests of the alignment pass: planted renames, drops and extras.

Whatever the renaming, every pair the alignment makes is a true pair (precision is exact: a wrong
pair makes a false verdict); with nothing dropped, every stage is paired; and pairing A with B is
pairing B with A.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from numtrace.compare.pairing.align import align
from numtrace.trace import MemoryTrace

SHAPES = [(4,), (2, 8), (3, 5), (1, 16)]
WORDS = ["proj", "norm", "attn", "mlp", "out", "gate"]
RENAMES = {
    "camel": lambda scope, word, i: f"{scope.title()}/{word.title()}{i}",
    "longer": lambda scope, word, i: f"{scope}.{word}_{i}.output",
    "layers": lambda scope, word, i: f"{scope}.layers.{i}.{word}",
}


@st.composite
def planted(draw):
    n = draw(st.integers(2, 24))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    scheme = draw(st.sampled_from(sorted(RENAMES)))
    dropped = set(draw(st.lists(st.integers(0, n - 1), max_size=n // 3, unique=True)))
    extras = draw(st.lists(st.integers(0, n), max_size=3))
    reference, candidate, truth = {}, {}, {}
    for i in range(n):
        word = WORDS[draw(st.integers(0, len(WORDS) - 1))]
        shape = SHAPES[draw(st.integers(0, len(SHAPES) - 1))]
        values = rng.standard_normal(shape).astype(np.float32) * (1 + i)
        a_name = f"model.{word}.{i}"
        reference[a_name] = values
        for _ in range(extras.count(i)):
            candidate[f"extra.cache{len(candidate)}"] = rng.standard_normal((7,)).astype(np.float32)
        if i not in dropped:
            b_name = RENAMES[scheme]("model", word, i)
            candidate[b_name] = values + np.float32(1e-6)
            truth[a_name] = b_name
    return MemoryTrace(reference), MemoryTrace(candidate), truth, bool(dropped)


@settings(max_examples=60, deadline=None)
@given(planted())
def test_every_pair_made_is_a_true_pair_and_nothing_that_exists_is_left(case):
    reference, candidate, truth, dropped = case
    pairs = [(p.name_a, p.name_b) for p in align(reference, candidate) if p.name_a and p.name_b]
    for a, b in pairs:
        assert truth.get(a) == b, (a, b, truth.get(a))
    if not dropped:
        assert len(pairs) == len(truth)


@settings(max_examples=40, deadline=None)
@given(planted())
def test_pairing_is_symmetric(case):
    reference, candidate, _, _ = case
    forward = {(p.name_a, p.name_b) for p in align(reference, candidate) if p.name_a and p.name_b}
    backward = {(p.name_b, p.name_a) for p in align(candidate, reference) if p.name_a and p.name_b}
    assert forward == backward
