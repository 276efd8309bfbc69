"""--probe-function: wrapping plain functions and methods, names, re-exports, undo."""

import sys
import textwrap

import numpy as np
import pytest

import numtrace
from numtrace import probe_function
from numtrace.errors import UsageError


@pytest.fixture
def lib(tmp_path, monkeypatch):
    (tmp_path / "audiolib.py").write_text(
        textwrap.dedent("""
        import numpy as np

        def mel(x):
            return np.asarray(x) * 2.0

        def describe(x):
            return "not an array"

        class Frontend:
            def pad(self, x):
                return np.pad(np.asarray(x, float), (0, 2))

            @staticmethod
            def window(n):
                return np.hanning(n)

            @classmethod
            def make(cls):
                return cls()
    """)
    )
    (tmp_path / "reexport.py").write_text("from audiolib import mel\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("audiolib", "reexport"):
        sys.modules.pop(name, None)
    import audiolib
    import reexport

    yield audiolib, reexport
    for name in ("audiolib", "reexport"):
        sys.modules.pop(name, None)


def test_functions_and_methods_are_recorded_at_every_call_and_restored(lib):
    audiolib, reexport = lib
    originals = (audiolib.mel, vars(audiolib.Frontend)["pad"], vars(audiolib.Frontend)["window"])
    undo = probe_function.install(
        ["audiolib:mel", "audiolib:Frontend.pad=frontend.pad", "audiolib:Frontend.window", "audiolib:describe"]
    )
    try:
        with numtrace.record() as rec:
            reexport.mel([1.0])  # imported by name before the probe: wrapped too
            audiolib.mel([2.0])
            audiolib.Frontend().pad([1.0])
            audiolib.Frontend.window(4)
            assert audiolib.describe(1) == "not an array"  # no array in it: skipped quietly
    finally:
        undo()
    assert rec.trace.order == ["mel", "mel@1", "frontend.pad", "Frontend.window"]
    np.testing.assert_array_equal(rec.trace.read("mel@1"), [4.0])
    np.testing.assert_array_equal(rec.trace.read("frontend.pad"), [1.0, 0.0, 0.0])
    assert (audiolib.mel, vars(audiolib.Frontend)["pad"], vars(audiolib.Frontend)["window"]) == originals
    assert reexport.mel is originals[0]
    assert isinstance(vars(audiolib.Frontend)["window"], staticmethod)


def test_without_a_recording_the_wrapper_only_calls_through(lib):
    audiolib, _ = lib
    undo = probe_function.install(["audiolib:mel"])
    try:
        assert audiolib.mel(3.0) == 6.0 and audiolib.mel.__name__ == "mel"
    finally:
        undo()


@pytest.mark.parametrize(
    "spec, message",
    [
        ("audiolib", "MODULE:FUNCTION"),
        ("audiolib:", "MODULE:FUNCTION"),
        ("audiolib:no_such", "no such function"),
        ("no_such_module_xyz:f", "cannot import"),
        ("audiolib:Frontend.nope", "no such function"),
    ],
)
def test_bad_specs_are_usage_errors(lib, spec, message):
    with pytest.raises(UsageError, match=message):
        probe_function.install([spec])


def test_parse_names_the_stage_by_qualname_or_explicitly():
    assert probe_function.parse("a.b:C.f").stage == "C.f"
    assert probe_function.parse("a.b:f=frontend.mel").stage == "frontend.mel"
