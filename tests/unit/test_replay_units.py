"""The pieces of a replay without a framework: which reference call a candidate call replays, how
the reference's inputs become the call's arguments, the call indices of repeated calls, how a
plain diff pairs a reference recorded with ``--inputs``, and the findings fitted on a replay."""

import json
import math

import numpy as np
import pytest

import numtrace
from numtrace.compare.diagnosis.io_fits import FUNCTIONS, io_findings
from numtrace.compare.pairing.align import align
from numtrace.compare.pairing.layout import lay_out_as
from numtrace.compare.pairing.module_inputs import is_recorded_input, recorded_inputs, split_call
from numtrace.replay.inputs import NumpyArrays, holds_state, replay_arguments
from numtrace.replay.plan import ReplayPlan
from numtrace.replay.session import Replayer
from numtrace.trace import MemoryTrace
from numtrace.tracer import Recording

ARRAYS = NumpyArrays()


def test_input_stages_are_parsed_at_their_leftmost_input_part():
    order = ["input", "input@1.0", "enc.input.input", "enc.input@2.mask", "enc.inputs", "dec.input_proj.input"]
    assert recorded_inputs(order) == {
        ("", ""): {"": "input"},
        ("", "@1"): {"0": "input@1.0"},
        ("enc", ""): {"input": "enc.input.input"},  # a keyword argument called `input`
        ("enc", "@2"): {"mask": "enc.input@2.mask"},
        ("dec.input_proj", ""): {"": "dec.input_proj.input"},
    }
    assert split_call("a.b@12") == ("a.b", "@12") and split_call("a@b") == ("a@b", "")


def test_a_layout_its_shape_cannot_tell_is_chosen_by_the_live_values():
    a = np.arange(32.0).reshape(2, 4, 4) ** 1.5
    values, how = lay_out_as(a, (2, 4, 4))
    assert how == "" and values is a
    swapped = a.transpose(0, 2, 1)
    values, how = lay_out_as(a.reshape(2, 16).reshape(2, 4, 4), (4, 4, 2), swapped.transpose(1, 2, 0))
    assert how == "transposed (2, 1, 0)" and np.array_equal(values, swapped.transpose(1, 2, 0))


def test_arguments_same_key_replaced_other_keywords_live_state_refused():
    live_x, live_mask = np.zeros((3, 2), np.float32), np.ones((3, 3), bool)
    reference = {"0": np.full((3, 2), 7.0), "mask": np.zeros((3, 3))}
    args, kwargs, notes = replay_arguments((live_x,), {"mask": live_mask, "rope": (live_x, live_x)}, reference, ARRAYS)
    assert args[0].dtype == np.float32 and (args[0] == 7).all()
    assert kwargs["mask"].dtype == bool and not kwargs["mask"].any()  # the reference's mask, as the live dtype
    assert kwargs["rope"][0] is live_x and notes == []  # a tuple of arrays: taken from the live call
    args, kwargs, notes = replay_arguments((live_x,), {"bias": np.ones(2)}, {"": np.ones((3, 2))}, ARRAYS)
    assert notes == ["bias taken from the live call"]

    class KVCache:
        pass

    assert holds_state({"cache": [KVCache()]}, ARRAYS) == "KVCache"
    assert holds_state((1, "causal", None, np.float32, len), ARRAYS) is None
    why = replay_arguments((live_x,), {"cache": KVCache()}, reference, ARRAYS)
    assert why == "argument cache is a KVCache, which may hold state (a cache): replaying would change it"


def test_repeated_calls_replay_the_reference_call_of_the_same_index():
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    ref = MemoryTrace(
        {"step.input": x, "step": x * 2, "step.input@1": x + 1, "step@1": (x + 1) * 2},
        order=["step.input", "step", "step.input@1", "step@1"],
    )
    cand = MemoryTrace({"step": x * 2, "step@1": (x + 1) * 2}, order=["step", "step@1"])
    replayer = Replayer(ReplayPlan(ref, cand), ref, Recording().start(active=False))
    for live in (x, x + 5):  # the live inputs are not used: the reference's are
        replayer.after_call("step", [""], (live,), {}, ARRAYS, lambda a, k: a[0] * 2)
    trace = replayer.finish()
    assert replayer.replayed == {"step": "step", "step@1": "step@1"}
    assert np.array_equal(trace.read("step@1"), (x + 1) * 2)


def test_a_call_that_raises_or_pairs_with_nothing_is_listed():
    x = np.ones((2, 3))
    ref = MemoryTrace({"fc.input": x, "fc": x}, order=["fc.input", "fc"])
    cand = MemoryTrace({"fc": x * 3, "zz.other": x[:1]}, order=["fc", "zz.other"])
    replayer = Replayer(ReplayPlan(ref, cand), ref, Recording().start(active=False))

    def refuses(args, kwargs):
        raise ValueError("shapes do not broadcast")

    replayer.after_call("fc", [""], (x,), {}, ARRAYS, refuses)
    replayer.after_call("zz.other", [""], (x,), {}, ARRAYS, refuses)
    replayer.finish()
    assert replayer.skipped == {
        "fc": "the replayed call raised ValueError: shapes do not broadcast",
        "zz.other": "no reference stage pairs with its output",
    }
    assert not replayer.replaying


@pytest.mark.parametrize("name", ["out", "out@1"])
def test_outputs_pairing_with_two_reference_modules_are_not_replayed(name):
    x = np.arange(6.0).reshape(2, 3)
    ref = MemoryTrace(
        {"a.input": x, "a": x + 1, "b.input": x, "b": x - 1},
        order=["a.input", "a", "b.input", "b"],
    )
    plan = ReplayPlan(ref, MemoryTrace({"a": x + 1, "b": x - 1}))
    plan.partner = {f"{name}.0": "a", f"{name}.1": "b"}
    assert plan.target(name, ["0", "1"]) == "its outputs pair with stages of several reference modules (a, b)"


def _rope(x, traditional):
    """Rotary embedding over the last axis: HF's halves, or (traditional) adjacent pairs."""
    d = x.shape[-1]
    angles = np.arange(x.shape[-2])[:, None] * 10000.0 ** (-np.arange(0, d, 2) / d)
    cos, sin = np.cos(angles), np.sin(angles)
    if traditional:
        even, odd = x[..., 0::2], x[..., 1::2]
        return np.stack([even * cos - odd * sin, even * sin + odd * cos], -1).reshape(x.shape).astype(np.float32)
    first, second = x[..., : d // 2], x[..., d // 2 :]
    return np.concatenate([first * cos - second * sin, second * cos + first * sin], -1).astype(np.float32)


def test_a_plain_diff_pairs_recorded_inputs_only_with_inputs():
    # HF's Llama recorded with --inputs against mlx-lm's: the rotation's input (the heads before
    # rotation) has the shape of MLX's `rope` output and, at position 0, its values
    rng = np.random.default_rng(0)
    norm = rng.standard_normal((1, 6, 64)).astype(np.float32)
    q = norm @ (rng.standard_normal((64, 64)) / 8).astype(np.float32)
    k = norm @ (rng.standard_normal((64, 32)) / 8).astype(np.float32)
    qh, kh = q.reshape(1, 6, 4, 16).transpose(0, 2, 1, 3), k.reshape(1, 6, 2, 16).transpose(0, 2, 1, 3)
    at = "model.layers.0."
    ref = {at + "input_layernorm": norm, at + "self_attn.q_proj.input": norm, at + "self_attn.q_proj": q}
    ref |= {at + "self_attn.k_proj": k, at + "self_attn.Func.input.0": qh, at + "self_attn.Func.input.1": kh}
    ref |= {at + "self_attn.Func.0": _rope(qh, False), at + "self_attn.Func.1": _rope(kh, False), at + "self_attn": q}
    cand = {at + "input_layernorm": norm, at + "self_attn.q_proj": q, at + "self_attn.k_proj": k}
    cand |= {at + "self_attn.rope": _rope(qh, True), at + "self_attn.rope@1": _rope(kh, True), at + "self_attn": q}
    reference, candidate = MemoryTrace(ref, order=list(ref)), MemoryTrace(cand, order=list(cand))
    pairs = {p.name_a: p.name_b for p in align(reference, candidate) if p.name_a is not None}
    assert pairs[at + "self_attn.Func.0"] == at + "self_attn.rope"
    assert pairs[at + "self_attn.Func.1"] == at + "self_attn.rope@1"
    # neither aligned with an output, nor paired through the output it repeats (input_layernorm)
    assert pairs[at + "self_attn.Func.input.0"] is None and pairs[at + "self_attn.q_proj.input"] is None
    assert all(b is None or not is_recorded_input(b) for a, b in pairs.items() if is_recorded_input(a))
    report = numtrace.diff(reference, candidate)
    assert report.first_divergence == report.root_cause == at + "self_attn.Func.0"
    # a candidate recorded with --inputs too: inputs pair with inputs
    both = MemoryTrace({**cand, "x.input": qh}, order=[*cand, "x.input"])
    assert {p.name_a: p.name_b for p in align(MemoryTrace({**ref, "x.input": qh}), both)}["x.input"] == "x.input"


def _replayed(module, x, reference_out, candidate_out):
    """A reference recorded with --inputs, the candidate and its replay, one module ``module``."""
    reference = MemoryTrace({f"{module}.input": x, module: reference_out}, order=[f"{module}.input", module])
    record = {numtrace.compare.own_errors.REPLAY_KEY: json.dumps({"replayed": {module: module}})}
    replay = MemoryTrace({module: candidate_out}, metadata=record)
    return numtrace.diff(reference, MemoryTrace({module: candidate_out}), replay=replay)[module]


def _layer_norm(x, gain, shift, eps=1e-5):
    centred = x - x.mean(-1, keepdims=True)
    return (centred / np.sqrt((centred**2).mean(-1, keepdims=True) + eps) * gain + shift).astype(np.float32)


def test_a_norm_with_another_shift_is_named_with_the_largest_difference():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 32, 16)).astype(np.float32)
    gain, shift = 1 + 0.1 * rng.standard_normal(16), 0.1 * rng.standard_normal(16)
    moved = shift.copy()
    moved[5] += 0.25
    stage = _replayed("norm", x, _layer_norm(x, gain, shift), _layer_norm(x, gain, moved))
    assert stage.own.verdict.value == "LARGE"
    finding = stage.own.diagnosis[0]
    assert finding.kind == "norm" and finding["bias_max_diff"] == pytest.approx(0.25, rel=1e-3)
    assert set(finding.params) == {"bias_max_diff", "explained"}  # only the shift differs
    # the same norm: nothing to name
    assert io_findings(x, _layer_norm(x, gain, shift), _layer_norm(x, gain, shift)) == []


def test_silu_against_gelu_is_named_both_ways():
    x = np.linspace(-4, 4, 512).reshape(8, 64)
    silu, gelu = FUNCTIONS["silu"](x), FUNCTIONS["gelu"](x)
    assert math.isclose(float(silu[0, 0]), -4 / (1 + math.exp(4)))
    stage = _replayed("act", x.astype(np.float32), silu.astype(np.float32), gelu.astype(np.float32))
    assert stage.own.verdict.value == "LARGE"
    finding = stage.own.diagnosis[0]
    assert (finding.kind, finding["reference"], finding["candidate"]) == ("function", "silu", "gelu")
    swapped = io_findings(x, gelu, silu)[0]
    assert (swapped["reference"], swapped["candidate"], swapped["explained"]) == ("gelu", "silu", pytest.approx(1.0))
