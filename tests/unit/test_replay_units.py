"""The pieces of a replay without a framework: which reference call a candidate call replays, how
the reference's inputs become the call's arguments, and the call indices of repeated calls."""

import numpy as np
import pytest

from numtrace.compare.pairing.layout import lay_out_as
from numtrace.compare.pairing.module_inputs import recorded_inputs, split_call
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
