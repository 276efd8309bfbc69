"""Hostile safetensors traces through the CLI: truncated, bit-flipped, oversized headers, wrong,
overlapping, negative and huge shapes and offsets. Each gives a verdict or exit 2 with one line."""

from __future__ import annotations

import json
import math
import os
import struct

import numpy as np
from fuzzing import assert_clean, assert_refused, check_bytes, check_file, examples, flip_bits, scratch_dir, written
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numtrace.formats import save

SETTINGS = settings(max_examples=examples(20), deadline=None, suppress_health_check=list(HealthCheck))


def _valid() -> tuple[bytes, str]:
    good = save(
        os.path.join(scratch_dir("numtrace-fuzz-st-"), "good.safetensors"),
        {
            "enc": np.linspace(-1.0, 1.0, 24, dtype=np.float32).reshape(2, 3, 4),
            "mel": (np.arange(12, dtype=np.float32).reshape(3, 4), "bfloat16"),
            "ids": np.arange(5, dtype=np.int64),
            "mask": np.array([True, False, True]),
            "empty": np.zeros((0, 2), np.float16),
        },
        metadata={"k": "v"},
    )
    with open(good, "rb") as f:
        return f.read(), good


VALID, GOOD = _valid()
HEADER_LEN = struct.unpack("<Q", VALID[:8])[0]
HEADER = json.loads(VALID[8 : 8 + HEADER_LEN])
DATA = VALID[8 + HEADER_LEN :]
STAGES = [k for k in HEADER if k != "__metadata__"]


def _with_header(header: dict, data: bytes = DATA) -> bytes:
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    return struct.pack("<Q", len(blob)) + blob + data


def _edited(stage: str, **fields) -> bytes:
    header = json.loads(json.dumps(HEADER))
    header[stage].update(fields)
    return _with_header(header)


def _check(content: bytes, refused: bool) -> None:
    check_bytes(content, GOOD, refused)


@SETTINGS
@given(cut=st.integers(0, len(VALID) - 1))
def test_truncated(cut):
    _check(VALID[:cut], refused=True)


@SETTINGS
@given(bits=st.lists(st.integers(0, 8 * len(VALID) - 1), min_size=1, max_size=8))
def test_bit_flipped(bits):
    _check(flip_bits(VALID, bits), refused=False)


@SETTINGS
@given(length=st.sampled_from([2**64 - 1, 2**63, 100_000_001, 2**32]) | st.integers(len(VALID) - 7, 2**64 - 1))
def test_oversized_header(length):
    _check(struct.pack("<Q", length) + VALID[8:], refused=True)


@SETTINGS
@given(stage=st.sampled_from(STAGES), begin=st.integers(-(2**64), 2**64), end=st.integers(-(2**64), 2**64))
def test_wrong_offsets(stage, begin, end):
    original = HEADER[stage]["data_offsets"]
    empty_elsewhere = original[0] == original[1] and begin == end and 0 <= begin <= len(DATA)  # still valid
    _check(_edited(stage, data_offsets=[begin, end]), refused=[begin, end] != original and not empty_elsewhere)


@SETTINGS
@given(first=st.sampled_from(STAGES), second=st.sampled_from(STAGES), shift=st.integers(-8, 8))
def test_overlapping_offsets(first, second, shift):
    begin, end = HEADER[first]["data_offsets"]
    size = HEADER[second]["data_offsets"][1] - HEADER[second]["data_offsets"][0]
    start = max(0, begin + shift)
    content = _edited(second, data_offsets=[start, start + size])
    overlaps = first != second and size > 0 and start < end and begin < start + size and end > begin
    _check(content, refused=overlaps)


@SETTINGS
@given(
    stage=st.sampled_from(STAGES),
    shape=st.lists(st.integers(-(2**63), -1), min_size=1, max_size=4),
    keep=st.lists(st.integers(0, 8), max_size=3),
)
def test_negative_shape(stage, shape, keep):
    _check(_edited(stage, shape=keep + shape), refused=True)


@SETTINGS
@given(
    stage=st.sampled_from(STAGES), shape=st.lists(st.integers(2**31, 2**70) | st.integers(0, 3), min_size=1, max_size=5)
)
def test_huge_shape(stage, shape):
    begin, end = HEADER[stage]["data_offsets"]
    itemsize = {"F32": 4, "BF16": 2, "I64": 8, "BOOL": 1, "F16": 2}[HEADER[stage]["dtype"]]
    fits = math.prod(shape) * itemsize == end - begin and math.prod(d for d in shape if d) * itemsize < 2**63
    _check(_edited(stage, shape=shape), refused=not fits)


def test_huge_shape_whose_offsets_agree_is_refused_without_allocating():
    """Offsets consistent with a 2**40-element claim: the file is short, never allocated."""
    header = {"x": {"dtype": "F32", "shape": [2**20, 2**20], "data_offsets": [0, 4 * 2**40]}}
    _check(_with_header(header, b"\0" * 64), refused=True)


def test_every_category_is_refused_by_name():
    cases = {
        "truncated": VALID[: len(VALID) // 2],
        "oversized header": struct.pack("<Q", 2**63) + VALID[8:],
        "wrong offset": _edited("ids", data_offsets=[len(DATA) - 8, len(DATA) + 32]),
        "overlapping offset": _edited(
            "ids", data_offsets=[HEADER["enc"]["data_offsets"][0] + 8, HEADER["enc"]["data_offsets"][0] + 48]
        ),
        "negative shape": _edited("enc", shape=[-2, 3, 4]),
        "huge shape": _edited("enc", shape=[2**40, 2**40, 4]),
    }
    for label, content in cases.items():
        with written(content, GOOD, ".safetensors") as path:
            outcomes = check_file(path, GOOD)
        assert_refused(outcomes)
        assert all(o.stderr.count(os.path.basename(path)) == 1 for o in outcomes), label
    assert_clean(check_file(GOOD, GOOD)[0], codes=(0,))
