"""Name alignment (normalised names, tuples, call indices, the map file) and shape alignment."""

import json

import numpy as np
import pytest

from numtrace.compare import NameMap, Verdict, diff
from numtrace.compare.pairing.align import align, match_names
from numtrace.compare.pairing.layout import align_arrays, candidate_perms, squeeze_shape
from numtrace.compare.pairing.names import Rename, normalize
from numtrace.errors import UsageError
from numtrace.trace import MemoryTrace


def trace(names, shape=(2,)):
    return MemoryTrace({n: np.zeros(shape) for n in names})


def pairs(a, b, **kw):
    return [(p.name_a, p.name_b, p.how) for p in align(trace(a), trace(b), **kw)]


@pytest.mark.parametrize(
    "left, right",
    [
        ("decoder.finalProj", "decoder.final_proj"),
        ("decoder/finalProj", "decoder.final_proj"),
        ("Decoder:FinalProj", "decoder.final-proj"),
        ("encoder.layers.0.conv", "encoder.0.conv"),
        ("model.layers.3.self_attn", "model.3.selfAttn"),
        ("ode.step@2", "ode/step@2"),
    ],
)
def test_normalized_names_meet(left, right):
    assert normalize(left) == normalize(right)


@pytest.mark.parametrize("left, right", [("x@1", "x@2"), ("x@1", "x"), ("enc.0", "enc.1"), ("layers", "layer")])
def test_different_names_stay_apart(left, right):
    assert normalize(left) != normalize(right)


def test_exact_pairs_first_then_normalized_then_tuples():
    a = ["enc", "dec.final_proj", "lstm.0", "lstm.1", "ode.v@1", "only_a"]
    b = ["enc", "dec/finalProj", "lstm", "ode.V@1", "only_b"]
    assert pairs(a, b) == [
        ("enc", "enc", "exact"),
        ("dec.final_proj", "dec/finalProj", "normalized"),
        ("lstm.0", "lstm", "tuple"),
        ("lstm.1", None, "missing"),
        ("ode.v@1", "ode.V@1", "normalized"),
        ("only_a", None, "missing"),
        (None, "only_b", "missing"),
    ]


def test_tuple_pairing_works_both_ways_and_keeps_call_indices():
    assert match_names(["x@1"], ["x@1.0", "x@1.1"]) == {"x@1": ("x@1.0", "tuple")}
    assert match_names(["x@1.0"], ["x@2"]) == {}


def test_an_ambiguous_normalized_key_pairs_nothing():
    # two candidate stages normalise to the same key: no guess, both stay unpaired
    assert pairs(["final_proj"], ["finalProj", "final-proj"]) == [
        ("final_proj", None, "missing"),
        (None, "finalProj", "missing"),
        (None, "final-proj", "missing"),
    ]


def test_exact_name_wins_over_a_normalized_one():
    assert pairs(["a_b", "aB"], ["aB"]) == [("a_b", None, "missing"), ("aB", "aB", "exact")]


def test_map_renames_strips_and_ignores():
    names = NameMap.from_dict(
        {
            "strip_prefix_a": ["model."],
            "strip_prefix_b": ["swift/"],
            "ignore": ["*.num_batches_tracked"],
            "ignore_b": ["debug.*"],
            "rename": {"blocks.*.mlp": "layers.*.ffn", r"re:ode\.v(\d+)": r"ode.velocity@\1"},
        }
    )
    a = ["model.enc", "model.layers.2.ffn", "model.ode.velocity@3", "model.bn.num_batches_tracked"]
    b = ["swift/enc", "swift/blocks.2.mlp", "swift/ode.v3", "debug.tmp", "bn.num_batches_tracked"]
    got = [(p.name_a, p.name_b, p.how) for p in align(trace(a), trace(b), names=names)]
    assert got == [
        ("model.enc", "swift/enc", "mapped"),
        ("model.layers.2.ffn", "swift/blocks.2.mlp", "mapped"),
        ("model.ode.velocity@3", "swift/ode.v3", "mapped"),
    ]
    report = diff(trace(a), trace(b), map=names)
    assert report.ignored == {"a": ["model.bn.num_batches_tracked"], "b": ["debug.tmp", "bn.num_batches_tracked"]}
    assert report.to_dict()["stages"][0]["name_b"] == "swift/enc"
    assert report.stages[0].note == "paired by the map file"


def test_map_file_round_trip_and_errors(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text('strip_prefix = ["py."]\nignore = ["tmp.*"]\n[rename]\n"decoder.finalProj" = "decoder.proj"\n')
    names = NameMap.load(path)
    assert names.key_b("py.decoder.finalProj") == "decoder.proj" and names.key_a("py.x") == "x"
    assert names.ignores("tmp.1", "a") and names.ignores("tmp.1", "b")
    report = diff(trace(["py.decoder.proj"]), trace(["decoder.finalProj"]), map=str(path))
    assert [(s.name, s.name_b, s.verdict) for s in report.stages] == [
        ("py.decoder.proj", "decoder.finalProj", Verdict.MATCH)
    ]
    bad = {
        "typo.toml": 'strip_prefixes = ["x"]\n',
        "notlist.toml": "ignore = 3\n",
        "badre.toml": '[rename]\n"re:(" = "x"\n',
        "stars.toml": '[rename]\n"a*" = "b*c*"\n',
        "broken.toml": "rename = [\n",
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(UsageError, match=name):
            NameMap.load(tmp_path / name)
    with pytest.raises(UsageError, match="cannot read map file"):
        NameMap.load(tmp_path / "missing.toml")


def test_rename_globs_capture_in_order():
    assert Rename.parse("a.*.b.?", "x.*.y.?").apply("a.12.b.7") == "x.12.y.7"  # wildcards fill in order
    assert Rename.parse("a.*", "b").apply("c.1") is None


def test_candidate_order_is_used_when_the_reference_has_none():
    a = MemoryTrace({"mel": np.zeros(1), "encoder": np.zeros(1), "x": np.zeros(1)})
    a.order, a.has_order = ["encoder", "mel", "x"], False
    b = MemoryTrace({"Mel": np.zeros(1), "Encoder": np.zeros(1)})
    assert [p.name_a for p in align(a, b)] == ["mel", "encoder", "x"]


# ---------------------------------------------------------------------------- shapes


def test_squeeze_and_perm_candidates():
    assert squeeze_shape((1, 1, 80, 312)) == ((80, 312), [2, 3])
    assert candidate_perms((2, 3, 4), (2, 4, 3)) == [((0, 2, 1), None)]
    assert candidate_perms((3, 3), (3, 3))[0] == ((0, 1), None)
    assert candidate_perms((2, 3), (4, 5)) == []


@pytest.mark.parametrize("perm", [(0, 2, 3, 1), (0, 3, 1, 2), (1, 0, 2, 3)])
def test_nchw_nhwc_layouts_are_found_and_match(perm):
    a = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    stage = diff(MemoryTrace({"x": a}), MemoryTrace({"x": np.ascontiguousarray(a.transpose(perm))})).stages[0]
    assert stage.verdict is Verdict.MATCH
    assert stage.diagnosis == [{"kind": "layout", "perm": list(perm)}]


def test_equal_lengths_are_told_apart_by_the_values():
    a = np.random.default_rng(1).standard_normal((4, 4, 3))
    av, bv, findings, _ = align_arrays(a, a.transpose(2, 1, 0))
    assert findings == [{"kind": "layout", "perm": [2, 1, 0]}] and np.array_equal(av, bv)


def test_the_313_vs_312_frame_case_and_a_crop_at_the_start():
    mel = np.random.default_rng(2).standard_normal((1, 80, 313))
    report = diff(MemoryTrace({"mel": mel}), MemoryTrace({"mel": mel[:, :, 1:]}))
    stage = report.stages[0]
    assert stage.verdict is Verdict.SMALL and "overlap matches" in stage.note
    assert stage.diagnosis == [{"kind": "shape", "axis": 2, "a_len": 313, "b_len": 312, "a_start": 1, "b_start": 0}]
    assert report.first_divergence == "mel"
    json.dumps(report.to_dict(), allow_nan=False)


def test_a_length_mismatch_with_wrong_values_is_diagnosed_on_the_overlap():
    mel = np.random.default_rng(3).standard_normal((64, 100))
    stage = diff(MemoryTrace({"mel": mel}), MemoryTrace({"mel": mel[:, :99] - 1.5})).stages[0]
    assert stage.verdict is Verdict.LARGE
    assert [f["kind"] for f in stage.diagnosis] == ["shape", "offset"]
    assert stage.diff.total == 64 * 99


def test_permuted_and_one_axis_longer():
    a = np.random.default_rng(4).standard_normal((80, 313))
    b = np.ascontiguousarray(a[:, :312].T)
    stage = diff(MemoryTrace({"x": a}), MemoryTrace({"x": b})).stages[0]
    assert [f["kind"] for f in stage.diagnosis] == ["layout", "shape"]
    assert stage.diagnosis[0]["perm"] == [1, 0] and stage.verdict is Verdict.SMALL


def test_singleton_axes_anywhere_are_squeezed():
    a = np.random.default_rng(5).standard_normal((1, 80, 1, 10))
    stage = diff(MemoryTrace({"x": a}), MemoryTrace({"x": a.reshape(80, 10)})).stages[0]
    assert stage.verdict is Verdict.MATCH and "singleton axes squeezed" in stage.note


def test_unalignable_shapes_stay_large_without_a_diff():
    stage = diff(MemoryTrace({"x": np.zeros((3, 4))}), MemoryTrace({"x": np.zeros((5, 6))})).stages[0]
    assert stage.verdict is Verdict.LARGE and stage.diff is None and "shapes differ" in stage.note
