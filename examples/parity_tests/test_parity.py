"""Parity of the mel port with the reference, kept as tests: `pytest examples/parity_tests`.

Three kinds of test, each the pattern of docs/testing.md:

- the port against the reference, both run in the test (``check_against``);
- the port against its golden trace (``check_golden``; record it with
  ``pytest examples/parity_tests --numtrace-update``), for CI machines that
  cannot run the reference;
- a property test: for every clip hypothesis draws (odd lengths, silence,
  extreme amplitudes) the port's trace agrees with the reference's, and a
  failure shrinks to the smallest clip that still fails.

Tolerances come from ``[tool.numtrace]`` in this directory's pyproject.toml.
"""

import mel_port
import mel_reference
import pytest
from clips import FULL_CLIP, GOLDEN_CLIP, clips

from numtrace.testing import assert_port_agrees


@pytest.mark.parametrize("clip", [GOLDEN_CLIP, FULL_CLIP], ids=["padded", "312-frames"])
def test_port_matches_reference(numtrace, clip):
    audio = clip.audio()
    with numtrace.record() as reference:  # a nested recording: the reference's stages go there
        mel_reference.frontend(audio)
    mel_port.frontend(audio)  # the port's stages go to the fixture's recording
    numtrace.check_against(reference.trace)


def test_port_matches_golden(numtrace):
    mel_port.frontend(GOLDEN_CLIP.audio())
    numtrace.check_golden()


def reference(clip):
    return mel_reference.frontend(clip.audio())


def port(clip):
    return mel_port.frontend(clip.audio())


def test_port_agrees_for_odd_lengths_silence_and_extremes(numtrace_tolerances):
    assert_port_agrees(reference, port, clips(), tolerance=numtrace_tolerances, output=None, max_examples=60)
