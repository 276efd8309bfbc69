"""Pairing beyond names: the alignment of two executions, twins, and the map file that keeps them."""

import numpy as np
import pytest

from numtrace.compare import diff
from numtrace.compare.pairing.align import align
from numtrace.compare.pairing.names import NameMap, map_text
from numtrace.trace import MemoryTrace

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

rng = np.random.default_rng(0)


def values(*shape, scale=1.0, offset=0.0):
    return (rng.standard_normal(shape) * scale + offset).astype(np.float32)


def gelu(x):
    return (0.5 * x * (1 + np.tanh(0.79788456 * (x + 0.044715 * x**3)))).astype(np.float32)


def pairs_of(a, b, **kw):
    return [(p.name_a, p.name_b, p.how) for p in align(a, b, **kw)]


def test_numbered_children_meet_suffixed_names_and_a_container_is_its_last_childs_twin():
    h, attn = values(1, 50, 64), values(1, 50, 64)
    up = values(1, 50, 256)
    act = gelu(up)
    down = values(1, 50, 64)
    reference = MemoryTrace(
        {
            "blocks.0.attn": attn,
            "blocks.0.mlp.0": up,
            "blocks.0.mlp.1": act,
            "blocks.0.mlp.2": down,
            "blocks.0.mlp": down.copy(),
            "blocks.0": h,
        }  # fmt: skip
    )
    candidate = MemoryTrace(
        {"blocks.0.attn": attn, "blocks.0.mlp1": up + 1e-7, "blocks.0.mlp2": down + 1e-7, "blocks.0": h}
    )
    found = pairs_of(reference, candidate)
    assert found == [
        ("blocks.0.attn", "blocks.0.attn", "exact"),
        ("blocks.0.mlp.0", "blocks.0.mlp1", "aligned"),
        ("blocks.0.mlp.1", None, "missing"),  # GELU: a function in the port, no stage
        ("blocks.0.mlp.2", "blocks.0.mlp2", "aligned"),
        ("blocks.0.mlp", "blocks.0.mlp2", "twin"),  # = mlp.2, paired through it
        ("blocks.0", "blocks.0", "exact"),
    ]
    report = diff(reference, candidate)
    twin = report.stages[4]
    assert twin.twin == ("a", "blocks.0.mlp.2") and twin.verdict.value == "MATCH"
    assert twin.to_dict()["twin"] == {"side": "reference", "stage": "blocks.0.mlp.2"}
    assert "= blocks.0.mlp.2 (the reference's same values), paired through it" in twin.note
    aligned = report.stages[1].to_dict()
    assert aligned["pairing"] == "aligned" and 0.8 <= aligned["pairing_score"] <= 1.0
    assert aligned["note"].startswith("paired by alignment (score 0.")


def test_a_candidate_side_container_is_paired_through_its_twin():
    x, y = values(4, 8), values(4, 8)
    reference = MemoryTrace({"lin": x, "act": y})
    candidate = MemoryTrace({"lin": x, "act": y, "seq": y.copy()})  # an MLX Sequential around them
    assert pairs_of(reference, candidate) == [("lin", "lin", "exact"), ("act", "act", "exact"), ("act", "seq", "twin")]
    row = diff(reference, candidate).stages[2]
    assert row.name == "act" and row.name_b == "seq" and row.twin == ("b", "act")


def test_constant_stages_are_nobodys_twin():
    zeros = np.zeros((4, 4), np.float32)
    reference = MemoryTrace({"mask": zeros, "cache": zeros.copy()})
    candidate = MemoryTrace({"mask": zeros})
    assert pairs_of(reference, candidate) == [("mask", "mask", "exact"), ("cache", None, "missing")]


def test_a_renamed_trace_pairs_stage_for_stage():
    n = 1000
    stages = [values(8) for _ in range(n)]
    reference = MemoryTrace({f"mod{i}.out": s for i, s in enumerate(stages)})
    candidate = MemoryTrace({f"Mod{i}.output": s for i, s in enumerate(stages)})
    found = align(reference, candidate)
    assert [(p.name_a, p.name_b) for p in found] == [(f"mod{i}.out", f"Mod{i}.output") for i in range(n)]
    assert {p.how for p in found} == {"aligned"}


def test_stages_of_one_shape_in_swapped_order_never_pair_crosswise():
    first, second = values(4, 16), values(4, 16, offset=3.0)
    reference = MemoryTrace({"enc": values(2), "attn.query": first, "attn.key": second, "dec": values(3)})
    candidate = MemoryTrace(
        {"enc": reference.read("enc"), "attn.k": second, "attn.q": first, "dec": reference.read("dec")}
    )
    for p in align(reference, candidate):
        if p.name_a is not None and p.name_b is not None:  # whatever is paired holds the same values
            assert np.array_equal(reference.read(p.name_a), candidate.read(p.name_b)), (p.name_a, p.name_b)
    unnamed = MemoryTrace({"enc": reference.read("enc"), "one": second, "two": first, "dec": reference.read("dec")})
    assert pairs_of(reference, unnamed)[1:3] == [("attn.query", None, "missing"), ("attn.key", None, "missing")]


def test_a_stage_with_no_counterpart_stays_missing():
    reference = MemoryTrace({"x.enc": values(4), "x.enc.extra": values(4, 4), "x.dec": values(2)})
    candidate = MemoryTrace(
        {"x.enc": reference.read("x.enc"), "y.cache": values(4, 4), "x.dec": reference.read("x.dec")}
    )
    assert pairs_of(reference, candidate) == [
        ("x.enc", "x.enc", "exact"),
        ("x.enc.extra", None, "missing"),
        ("x.dec", "x.dec", "exact"),
        (None, "y.cache", "missing"),
    ]


@pytest.mark.parametrize("seed", range(12))
def test_branches_computed_in_the_other_order_pair_by_their_values_never_crosswise(seed):
    """A port computes q before k where the reference computed key before query: same scope,
    same shape, values of one distribution (the hard case: only the values tell them apart)."""
    local = np.random.default_rng(seed)
    x, y = (local.standard_normal((1, 6, 64)).astype(np.float32) for _ in range(2))
    ln, out = values(3), values(5)
    reference = MemoryTrace(
        {"blocks.0.ln": ln, "blocks.0.attn.key": y, "blocks.0.attn.query": x, "blocks.0.attn.out": out}
    )
    candidate = MemoryTrace(
        {"blocks.0.ln": ln, "blocks.0.attn.q_proj": x, "blocks.0.attn.k_proj": y, "blocks.0.attn.out": out}
    )
    found = {a: b for a, b, _ in pairs_of(reference, candidate)}
    assert (
        found["blocks.0.attn.key"] == "blocks.0.attn.k_proj" and found["blocks.0.attn.query"] == "blocks.0.attn.q_proj"
    )
    assert diff(reference, candidate).counts["LARGE"] == 0


def test_a_stage_with_no_counterpart_in_a_shared_scope_stays_missing():
    """Names alike by their scope, each the only stage of its shape there: a score and a mask of
    -1e9 have no magnitude in common, so they are not one stage with a bug."""
    scores = values(1, 4, 6, 6)
    mask = np.triu(np.full((1, 4, 6, 6), -1e9, np.float32), 1)
    enc, dec = values(4), values(2)
    reference = MemoryTrace({"m.layers.0.enc": enc, "m.layers.0.attn.scores": scores, "m.layers.0.dec": dec})
    candidate = MemoryTrace({"m.layers.0.enc": enc, "m.layers.0.attn.mask": mask, "m.layers.0.dec": dec})
    assert pairs_of(reference, candidate)[1] == ("m.layers.0.attn.scores", None, "missing")
    report = diff(reference, candidate)
    assert report.counts["LARGE"] == 0 and report.first_divergence is None


def test_names_alike_do_not_pair_values_that_say_otherwise():
    """A port that numbers its layers from 1: `Mod3` there is `mod2` here. Long enough for the
    structural anchors (equal numbers, alike names): the values veto them, nothing pairs wrongly."""
    local = np.random.default_rng(7)
    stages = [local.standard_normal(16).astype(np.float32) for _ in range(600)]
    reference = MemoryTrace({f"model.layers.{i // 10}.mod{i % 10}.out": s for i, s in enumerate(stages)})
    candidate = MemoryTrace({f"Model.Layer{i // 10 + 1}.Mod{i % 10 + 1}.output": s for i, s in enumerate(stages)})
    paired = [(p.name_a, p.name_b) for p in align(reference, candidate) if p.name_a and p.name_b]
    wrong = [(a, b) for a, b in paired if not np.array_equal(reference.read(a), candidate.read(b))]
    assert wrong == [] and len(paired) > 500


def test_two_equally_good_partners_pair_with_neither():
    shared = values(6, 6)
    reference = MemoryTrace({"a": values(1), "layer.proj_a": shared, "layer.proj_b": shared + 1e-6, "z": values(1)})
    candidate = MemoryTrace({"a": reference.read("a"), "layer.projection": shared, "z": reference.read("z")})
    assert pairs_of(reference, candidate)[1:3] == [("layer.proj_a", None, "missing"), ("layer.proj_b", None, "missing")]


def test_the_only_stage_of_its_shape_in_the_same_scope_pairs_whatever_its_values():
    """HF's rotary wrapper against MLX's RoPE, the port wrong: the same place in the computation."""
    q, k = values(1, 4, 6, 16), values(1, 2, 6, 16)
    reference = MemoryTrace(
        {"m.0.attn.k_proj": values(1, 6, 32), "m.0.attn.Func.0": q, "m.0.attn.Func.1": k, "m.0.attn.o_proj": values(6)}
    )
    candidate = MemoryTrace(
        {"m.layers.0.attn.k_proj": reference.read("m.0.attn.k_proj"), "m.layers.0.attn.rope": -q,
         "m.layers.0.attn.rope@1": k[:, :, ::-1].copy(), "m.layers.0.attn.o_proj": reference.read("m.0.attn.o_proj")}
    )  # fmt: skip
    found = pairs_of(reference, candidate)
    assert found[1:3] == [("m.0.attn.Func.0", "m.layers.0.attn.rope", "aligned"),
                          ("m.0.attn.Func.1", "m.layers.0.attn.rope@1", "aligned")]  # fmt: skip
    report = diff(reference, candidate)
    assert report.first_divergence == "m.0.attn.Func.0" and report.stages[1].verdict.value == "LARGE"


def test_camel_case_swift_names_containers_and_extra_outputs_together():
    up, down = values(1, 20, 32), values(1, 20, 8)
    reference = MemoryTrace({"encoder.0.mlp.0": up, "encoder.0.mlp.1": gelu(up), "encoder.0.mlp.2": down,
                             "encoder.0.mlp": down.copy(), "encoder.0.out": values(1, 20, 8)})  # fmt: skip
    candidate = MemoryTrace({"encoder/layers/0/mlpUp": up, "encoder/layers/0/mlpDown": down,
                             "encoder/layers/0/out.0": reference.read("encoder.0.out"),
                             "encoder/layers/0/out.1": values(1, 20, 8)})  # fmt: skip
    found = {a: b for a, b, _ in pairs_of(reference, candidate) if a is not None}
    assert found["encoder.0.mlp.0"] == "encoder/layers/0/mlpUp"
    assert found["encoder.0.mlp.2"] == "encoder/layers/0/mlpDown"
    assert found["encoder.0.mlp"] == "encoder/layers/0/mlpDown"  # twin
    assert found["encoder.0.out"] == "encoder/layers/0/out.0"  # a first output meets a single one
    assert found["encoder.0.mlp.1"] is None


def test_the_written_map_reproduces_the_pairing_exactly():
    h, up, down = values(2, 8), values(2, 16), values(2, 8)
    reference = MemoryTrace({"in": h, "blk.mlp.0": up, "blk.mlp.1": gelu(up), "blk.mlp.2": down, "blk.mlp": down.copy(),
                             "decoder.finalProj": values(3), "x": values(5)})  # fmt: skip
    candidate = MemoryTrace({"in": h, "blk.mlp1": up, "blk.mlp2": down, "decoder.final_proj": reference.read("decoder.finalProj"),
                             "extra": values(7)})  # fmt: skip
    before = align(reference, candidate)
    text = map_text(before)
    names = NameMap.from_dict(tomllib.loads(text))
    assert names.automatic is False
    after = align(reference, candidate, names=names)
    assert [(p.name_a, p.name_b) for p in after] == [(p.name_a, p.name_b) for p in before]
    assert {p.how for p in after} <= {"exact", "mapped", "twin", "missing"}  # nothing left to chance


def test_sketch_traces_align_on_their_statistics():
    from numtrace.compare.sketches.format import SKETCH_KEY, SKETCH_VERSION, STAGE_PREFIX, encode_info, make_sketch

    def sketch(stages):
        channel, meta = {}, {SKETCH_KEY: SKETCH_VERSION}
        for name, value in stages.items():
            means, info = make_sketch(value)
            channel[name], meta[STAGE_PREFIX + name] = means, encode_info(info)
        return MemoryTrace(channel, metadata=meta)

    data = [values(3, 8, offset=k) for k in range(5)]
    reference = sketch({f"layer{i}.out": v for i, v in enumerate(data)})
    candidate = sketch({f"Layer{i}.output": v for i, v in enumerate(data)})
    assert [(p.name_a, p.name_b) for p in align(reference, candidate)] == [
        (f"layer{i}.out", f"Layer{i}.output") for i in range(5)
    ]


@pytest.mark.slow
def test_twenty_thousand_renamed_stages_pair_one_for_one():
    n = 20_000
    stages = [values(16) for _ in range(n)]
    reference = MemoryTrace({f"model.layers.{i // 10}.mod{i % 10}.out": s for i, s in enumerate(stages)})
    candidate = MemoryTrace({f"Model.Layers.{i // 10}.Mod{i % 10}.output": s for i, s in enumerate(stages)})
    found = align(reference, candidate)  # benchmarks/align_scale.py times it
    assert sum(p.name_a is not None and p.name_b is not None for p in found) == n
    assert all(p.name_b == p.name_a.replace("model.layers", "Model.Layers").replace(".mod", ".Mod") + "put"
               for p in found)  # fmt: skip
