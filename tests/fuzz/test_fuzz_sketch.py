"""Hostile sketch traces (stats-only recordings) through the CLI: every field of a stage's sketch JSON
replaced by hostile values (negative, huge, wrong type), channel means of the wrong shape or dtype,
a broken marker, plus truncation and bit flips, in safetensors and HDF5. A verdict or exit 2 with one
line, never a traceback, a hang or an allocation of a claimed size."""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import pytest
from fuzzing import assert_refused, check_bytes, check_file, examples, flip_bits, scratch_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numtrace
from numtrace.compare.sketches.format import SKETCH_KEY, STAGE_PREFIX
from numtrace.formats import load, save

SETTINGS = settings(max_examples=examples(15), deadline=None, suppress_health_check=list(HealthCheck))
try:
    import h5py  # noqa: F401

    SUFFIXES = [".safetensors", ".h5"]
except ImportError:
    SUFFIXES = [".safetensors"]


def _record(path: str) -> str:
    rng = np.random.default_rng(0)
    with numtrace.record(path, stats=True):
        numtrace.tap("enc", rng.standard_normal((2, 6, 5)).astype(np.float32))
        numtrace.tap("mel", np.array([1.0, np.nan, np.inf]))
        numtrace.tap("ids", np.arange(4))
    return path


DIRECTORY = scratch_dir("numtrace-fuzz-sketch-")
GOOD = {suffix: _record(os.path.join(DIRECTORY, "good" + suffix)) for suffix in SUFFIXES}
with load(GOOD[".safetensors"]) as _t:
    STAGES = {name: (_t.read(name), json.loads(_t.metadata[STAGE_PREFIX + name])) for name in _t.order}
    METADATA = dict(_t.metadata)
FIELDS = sorted(STAGES["enc"][1])

hostile_value = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=6)
    | st.lists(st.integers(-(2**64), 2**64), max_size=4)
    | st.sampled_from(
        [
            [2**40, 2**40],
            [-1, 6],
            [2, 2**17, 5],
            {"a": 1},
            "blake2b:" + "0" * 32,
            "blake2b:zz",
            10**400,
            -(10**400),
            2**1024,
        ]
    )
)


def _write(suffix: str, stages: dict, metadata: dict) -> str:
    fd, path = tempfile.mkstemp(suffix=suffix, dir=DIRECTORY)
    os.close(fd)
    os.remove(path)
    return save(
        path, stages, metadata={k: v for k, v in metadata.items() if k not in ("numtrace.order", "numtrace.format")}
    )


def _check(path: str, suffix: str, refused: bool) -> None:
    try:
        outcomes = check_file(path, GOOD[suffix])
        if refused:
            assert_refused(outcomes)  # `trace show` reads and checks every stage's sketch too
    finally:
        os.remove(path)


def certainly_invalid(field: str, value: object, original: dict) -> bool:
    """Values no valid sketch of these stages can hold (others may or may not be, e.g. another mean)."""
    if value == original[field] and type(value) is type(original[field]):
        return False
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    size = original["count"]
    if field in ("min", "max", "mean", "std", "abs_max"):
        return not number or abs(value) > 1.7976931348623157e308 or value != value or (field == "std" and value < 0)
    if field == "count":
        return True  # it must equal the shape's size
    if field in ("nan", "posinf", "neginf"):
        return type(value) is not int or not 0 <= value <= size
    if field == "shape":
        return not isinstance(value, list) or not all(type(d) is int and 0 <= d < 2**62 for d in value)
    if field == "dtype":
        return not isinstance(value, str) or value not in ("float32", "float64", "int64", "float16", "bfloat16")
    if field == "hash":
        return not isinstance(value, str) or not value.startswith("blake2b:") or len(value) != 40
    return not (value is None or type(value) is int)  # axis


@SETTINGS
@given(
    suffix=st.sampled_from(SUFFIXES),
    stage=st.sampled_from(sorted(STAGES)),
    field=st.sampled_from(FIELDS),
    value=hostile_value,
)
def test_hostile_sketch_fields(suffix, stage, field, value):
    means, info = STAGES[stage]
    metadata = {**METADATA, STAGE_PREFIX + stage: json.dumps({**info, field: value})}
    refused = certainly_invalid(field, value, info)
    _check(_write(suffix, {n: m for n, (m, _) in STAGES.items()}, metadata), suffix, refused=refused)


@SETTINGS
@given(suffix=st.sampled_from(SUFFIXES), stage=st.sampled_from(sorted(STAGES)), field=st.sampled_from(FIELDS))
def test_a_missing_sketch_field_is_refused(suffix, stage, field):
    info = {k: v for k, v in STAGES[stage][1].items() if k != field}
    metadata = {**METADATA, STAGE_PREFIX + stage: json.dumps(info)}
    _check(_write(suffix, {n: m for n, (m, _) in STAGES.items()}, metadata), suffix, refused=True)


@SETTINGS
@given(
    suffix=st.sampled_from(SUFFIXES),
    stage=st.sampled_from(sorted(STAGES)),
    text=st.sampled_from(["", "[", "[]", "null", "1e999", '{"shape": [' * 50]) | st.text(max_size=20),
)
def test_sketch_json_that_is_not_a_sketch(suffix, stage, text):
    metadata = {**METADATA, STAGE_PREFIX + stage: text}
    _check(_write(suffix, {n: m for n, (m, _) in STAGES.items()}, metadata), suffix, refused=True)


@SETTINGS
@given(
    suffix=st.sampled_from(SUFFIXES),
    stage=st.sampled_from(sorted(STAGES)),
    length=st.integers(0, 40),
    dtype=st.sampled_from([np.float64, np.float32, np.int64]),
)
def test_channel_means_of_the_wrong_shape_or_dtype(suffix, stage, length, dtype):
    means, info = STAGES[stage]
    stages = {n: m for n, (m, _) in STAGES.items()}
    stages[stage] = np.zeros(length, dtype)
    valid = dtype == np.float64 and length == means.size
    _check(_write(suffix, stages, METADATA), suffix, refused=not valid)


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("marker", ["2", "", "1 ", "sketch"])
def test_unknown_sketch_version_is_refused(suffix, marker):
    _check(
        _write(suffix, {n: m for n, (m, _) in STAGES.items()}, {**METADATA, SKETCH_KEY: marker}), suffix, refused=True
    )


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_missing_sketch_entry_is_refused(suffix):
    metadata = {k: v for k, v in METADATA.items() if k != STAGE_PREFIX + "mel"}
    _check(_write(suffix, {n: m for n, (m, _) in STAGES.items()}, metadata), suffix, refused=True)


@SETTINGS
@given(suffix=st.sampled_from(SUFFIXES), data=st.data())
def test_truncated_or_bit_flipped_sketch_files(suffix, data):
    with open(GOOD[suffix], "rb") as f:
        content = f.read()
    if data.draw(st.booleans(), label="truncate"):
        content = content[: data.draw(st.integers(0, len(content) - 1), label="cut")]
    else:
        content = flip_bits(
            content, data.draw(st.lists(st.integers(0, 8 * len(content) - 1), min_size=1, max_size=6), label="bits")
        )
    check_bytes(content, GOOD[suffix], refused=False)


def test_good_sketch_traces_diff_cleanly():
    for suffix, path in GOOD.items():
        outcomes = check_file(path, GOOD[".safetensors"])
        assert [o.code for o in outcomes] == [0, 0, 0], (suffix, outcomes)
