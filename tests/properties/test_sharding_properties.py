"""Property tests of how a sharded run's ranks are combined (numtrace.compare.sharding): shards cut
from a reference along any axis, in any number of ranks, combine back exactly; shuffled shards are
named with the order that restores them; partial sums and a disagreeing rank are named; and
replicas of the reference are never flagged."""

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from numtrace.compare.sharding import decide


@st.composite
def stage(draw):
    ndim = draw(st.integers(1, 3))
    ranks = draw(st.integers(2, 4))
    axis = draw(st.integers(0, ndim - 1))
    shape = [draw(st.integers(1, 4)) for _ in range(ndim)]
    shape[axis] = ranks * draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return rng.standard_normal(shape).astype(np.float32), ranks, axis


@settings(max_examples=60, deadline=None)
@given(stage())
def test_shards_combine_back_exactly(case):
    a, ranks, axis = case
    shards = np.split(a, ranks, axis=axis)
    assume(len({s.shape for s in shards}) == 1 and shards[0].shape != a.shape)
    plan = decide(a, shards)
    assert (plan.kind, plan.axis, plan.findings) == ("sharded", axis, [])
    assert np.array_equal(plan.combined, a)


@settings(max_examples=60, deadline=None)
@given(stage(), st.randoms())
def test_shuffled_shards_are_named_with_the_order_that_restores_them(case, random):
    a, ranks, axis = case
    shards = np.split(a, ranks, axis=axis)
    order = list(range(ranks))
    random.shuffle(order)
    assume(order != sorted(order))
    assume(not np.array_equal(np.concatenate([shards[k] for k in order], axis=axis), a))  # (equal shards)
    plan = decide(a, [shards[k] for k in order])
    finding = plan.findings[0]
    restored = np.concatenate([[shards[k] for k in order][j] for j in finding["order"]], axis=axis)
    assert finding.kind == "shard_order" and np.array_equal(restored, a)


@settings(max_examples=60, deadline=None)
@given(stage(), st.booleans())
def test_partial_sums_are_named_and_replicas_are_not_flagged(case, bias):
    a, ranks, _ = case
    assume(not bias or (a.ndim >= 2 and a.size // a.shape[-1] >= 2))  # a bias shows over several rows only
    rng = np.random.default_rng(10_000 + ranks)  # not the stream the stage was drawn from
    parts = [rng.standard_normal(a.shape) for _ in range(ranks - 1)]
    parts.append(a.astype(np.float64) - np.sum(parts, axis=0))
    extra = rng.standard_normal(a.shape[-1]) if bias else 0.0
    plan = decide(a.astype(np.float64), [p + extra for p in parts])
    assert plan.kind == "partial" and plan.findings[0]["bias_on_every_rank"] == bias
    replicas = decide(a, [a.copy() for _ in range(ranks)])
    assert (replicas.kind, replicas.findings, replicas.disagree) == ("replicated", [], [])


@settings(max_examples=60, deadline=None)
@given(stage(), st.data())
def test_the_one_rank_that_saw_other_data_is_named(case, data):
    a, ranks, _ = case
    assume(ranks >= 3)  # a majority of ranks agrees
    odd = data.draw(st.integers(0, ranks - 1))
    held = [a.copy() for _ in range(ranks)]
    held[odd] = a + 0.5
    plan = decide(a, held)
    assert plan.disagree == [odd] and plan.findings[0]["ranks"] == [odd]
    assert np.array_equal(plan.combined, held[odd])  # the stage fails on the wrong rank's values
