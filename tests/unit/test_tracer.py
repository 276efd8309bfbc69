import dataclasses
import json
import threading

import numpy as np
import pytest

import numtrace
from numtrace import backends, tracer
from numtrace.errors import RecordingError, TapError


def test_tap_without_recording_returns_the_object_and_converts_nothing(monkeypatch):
    def boom(_):
        raise AssertionError("tap converted a value with no recording active")

    monkeypatch.setattr(backends, "to_numpy", boom)
    marker = object()
    assert numtrace.tap("anything", marker) is marker
    array = np.arange(3)
    assert numtrace.tap("x", array) is array
    assert not numtrace.is_recording()


def test_tap_records_in_order_and_returns_the_same_object():
    a, b = np.arange(3.0), np.ones((2, 2), np.float32)
    with numtrace.record() as rec:
        assert numtrace.tap("first", a) is a
        assert numtrace.tap("second", b) is b
    trace = rec.trace
    assert trace.order == ["first", "second"]
    assert trace.read("first").tolist() == [0.0, 1.0, 2.0]
    assert trace.info("second").dtype == "float32"
    assert trace.info("second").shape == (2, 2)


def test_captured_values_are_copies_taken_at_tap_time():
    x = np.zeros(4)
    with numtrace.record() as rec:
        numtrace.tap("x", x)
        x += 5.0  # an in-place update after the tap must not change the record
    assert rec.trace.read("x").tolist() == [0.0, 0.0, 0.0, 0.0]


def test_scopes_nest_prefix_and_unwind_after_errors():
    with numtrace.record() as rec:
        with numtrace.scope("decoder"):
            numtrace.tap("in", 1.0)
            with numtrace.scope("ode"):
                numtrace.tap("v", 2.0)
                assert numtrace.current_scope() == "decoder.ode"
        with pytest.raises(ZeroDivisionError):
            with numtrace.scope("broken"):
                1 / 0
        numtrace.tap("out", 3.0)
    assert rec.trace.order == ["decoder.in", "decoder.ode.v", "out"]
    assert numtrace.current_scope() == ""


def test_repeated_names_get_call_indices_and_max_calls_caps_them():
    with numtrace.record() as rec:
        for step in range(4):
            numtrace.tap("ode.step", float(step))
    assert rec.trace.order == ["ode.step", "ode.step@1", "ode.step@2", "ode.step@3"]
    assert rec.trace.read("ode.step@2").item() == 2.0

    with numtrace.record(max_calls=2) as capped:
        for step in range(4):
            numtrace.tap("ode.step", float(step))
    assert capped.trace.order == ["ode.step", "ode.step@1"]


def test_include_and_exclude_globs_narrow_what_is_recorded():
    with numtrace.record(include=["decoder.*"], exclude=["*.dropout"]) as rec:
        numtrace.tap("encoder.out", 1.0)
        numtrace.tap("decoder.dropout", 2.0)
        numtrace.tap("decoder.proj", 3.0)
    assert rec.trace.order == ["decoder.proj"]

    with numtrace.record(include=["step@[1-2]"]) as by_call:
        for i in range(4):
            numtrace.tap("step", float(i))
    assert by_call.trace.order == ["step@1", "step@2"]


@dataclasses.dataclass
class Output:
    hidden: np.ndarray
    attention: np.ndarray | None = None


def test_containers_are_flattened_per_spec():
    with numtrace.record() as rec:
        numtrace.tap("pair", (np.zeros(1), np.ones(2)))
        numtrace.tap("single", (np.zeros(3), None, "label"))
        numtrace.tap("named", {"mean": np.zeros(1), "std": np.ones(1)})
        numtrace.tap("nested", [np.zeros(1), {"h": np.ones(1)}])
        numtrace.tap("out", Output(hidden=np.ones(2), attention=np.zeros(2)))
    assert rec.trace.order == [
        "pair.0",
        "pair.1",
        "single",
        "named.mean",
        "named.std",
        "nested.0",
        "nested.1.h",
        "out.hidden",
        "out.attention",
    ]
    assert rec.trace.info("single").shape == (3,)


def test_python_scalars_and_numpy_scalars():
    with numtrace.record() as rec:
        numtrace.tap("f", 1.5)
        numtrace.tap("i", 7)
        numtrace.tap("b", True)
        numtrace.tap("f32", np.float32(0.25))
    dtypes = {name: rec.trace.info(name).dtype for name in rec.trace.order}
    assert dtypes == {"f": "float64", "i": "int64", "b": "bool", "f32": "float32"}
    assert rec.trace.info("f").shape == ()
    assert rec.trace.read("i").item() == 7


def test_bfloat16_from_ml_dtypes_is_recorded_as_bfloat16():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.array([1.0, -2.5, 3.140625], dtype=ml_dtypes.bfloat16)
    with numtrace.record() as rec:
        numtrace.tap("x", x)
    assert rec.trace.info("x").dtype == "bfloat16"
    assert rec.trace.read("x").tolist() == [1.0, -2.5, 3.140625]


@pytest.mark.parametrize("bad", ["text", np.array(["a", "b"]), np.array([object()]), 2**70])
def test_unrecordable_values_raise_a_tap_error_naming_the_problem(bad):
    with numtrace.record():
        with pytest.raises(TapError) as err:
            numtrace.tap("stage", bad)
    assert "\n" not in str(err.value)


def test_names_that_cannot_be_stages():
    with numtrace.record():
        with pytest.raises(TapError):
            numtrace.tap("", 1.0)
        with pytest.raises(TapError):
            numtrace.tap(3, 1.0)
        numtrace.tap("x", 1.0)
        numtrace.tap("x", 1.0)
        with pytest.raises(TapError, match="already recorded"):
            numtrace.tap("x@1", 1.0)


def test_metadata_user_and_numtrace_keys():
    with numtrace.record(metadata={"model": "tts", "seed": 3}) as rec:
        rec.set_metadata("config", {"n_mels": 80})
        numtrace.tap("x", 1.0)
    meta = rec.trace.metadata
    assert rec.trace.user_metadata == {"model": "tts", "seed": "3", "config": '{"n_mels": 80}'}
    assert meta["numtrace.version"] == numtrace.__version__
    assert meta["numtrace.backend"] == "numpy"
    assert meta["numtrace.status"] == "complete"
    assert json.loads(meta["numtrace.frameworks"])["numpy"] == np.__version__
    assert meta["numtrace.created"].endswith("+00:00")
    with pytest.raises(RecordingError, match="reserved"):
        numtrace.record(metadata={"numtrace.order": "[]"})


def test_file_recording_survives_an_exception(tmp_path):
    out = tmp_path / "partial.safetensors"
    with pytest.raises(RuntimeError):
        with numtrace.record(out) as rec:
            numtrace.tap("before", np.arange(2))
            raise RuntimeError("model blew up")
    with numtrace.load(out) as trace:
        assert trace.order == ["before"]
        assert trace.metadata["numtrace.status"] == "error: RuntimeError: model blew up"
    assert rec.names == ["before"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["partial.safetensors"]


def test_file_recording_writes_hdf5_too(tmp_path):
    pytest.importorskip("h5py")
    out = tmp_path / "t.h5"
    with numtrace.record(out):
        numtrace.tap("a", np.arange(3, dtype=np.int16))
        numtrace.tap("a", np.arange(3, dtype=np.int16) * 2)
    with numtrace.load(out) as trace:
        assert trace.order == ["a", "a@1"]
        assert trace.read("a@1").tolist() == [0, 2, 4]


def test_nested_recordings_send_taps_to_the_innermost():
    with numtrace.record() as outer:
        numtrace.tap("outer.before", 1.0)
        with numtrace.record() as inner:
            numtrace.tap("inner.x", 2.0)
        numtrace.tap("outer.after", 3.0)
    assert outer.trace.order == ["outer.before", "outer.after"]
    assert inner.trace.order == ["inner.x"]


def test_recording_lifecycle_errors():
    rec = numtrace.record().start()
    rec.stop()
    with pytest.raises(RecordingError):
        rec.stop()
    with pytest.raises(RecordingError):
        rec.start()
    with pytest.raises(RecordingError):
        rec.tap("x", 1.0)
    with pytest.raises(RecordingError, match="unknown backend"):
        numtrace.record(backend="jax")
    with pytest.raises(RecordingError):
        numtrace.record(max_calls=0)


def test_taps_from_threads_are_all_recorded():
    def worker(k):
        for i in range(50):
            numtrace.tap(f"thread{k}", float(i))

    with numtrace.record() as rec:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(rec.trace.order) == 200
    assert len(set(rec.trace.order)) == 200


def test_flatten_documents_leaf_paths():
    leaves = tracer.flatten((np.zeros(1), {"h": np.ones(1), "n": None}))
    assert [key for key, _ in leaves] == ["0", "1.h"]


def test_taps_in_a_forked_child_do_not_touch_the_parents_trace(tmp_path):
    import os

    out = tmp_path / "t.safetensors"
    with numtrace.record(out):
        numtrace.tap("parent.before", np.arange(3.0))
        pid = os.fork()
        if pid == 0:  # like a DataLoader worker
            numtrace.tap("child", np.ones(1000))
            os._exit(0)
        os.waitpid(pid, 0)
        numtrace.tap("parent.after", np.arange(2.0))
    with numtrace.load(out) as trace:
        assert trace.order == ["parent.before", "parent.after"]
        assert trace.read("parent.after").tolist() == [0.0, 1.0]
