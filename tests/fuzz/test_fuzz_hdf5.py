"""Hostile HDF5 traces through the CLI: truncated, bit-flipped, oversized superblock fields, wrong and
overlapping data addresses, "negative" (all-ones) and huge dimensions, and sparse datasets that claim
far more data than the file stores. Each gives a verdict or exit 2 with one line, never a hang."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest
from fuzzing import assert_refused, check_bytes, check_file, examples, flip_bits, scratch_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numtrace.formats import save

h5py = pytest.importorskip("h5py")
SETTINGS = settings(max_examples=examples(12), deadline=None, suppress_health_check=list(HealthCheck))
SHAPES = {"enc": (7, 5), "mel": (3, 11), "big": (41, 200)}


def _valid() -> tuple[bytes, str, dict]:
    good = save(
        os.path.join(scratch_dir("numtrace-fuzz-h5-"), "good.h5"),
        {
            "enc": np.linspace(-1.0, 1.0, 35, dtype=np.float32).reshape(SHAPES["enc"]),
            "mel": (np.arange(33, dtype=np.float32).reshape(SHAPES["mel"]), "bfloat16"),
            "big": np.random.default_rng(0).standard_normal(SHAPES["big"]),  # >= 64 KiB: chunked + gzip
        },
    )
    with h5py.File(good, "r") as f:
        offsets = {name: f[f"stages/{i:06d}"].id.get_offset() for i, name in enumerate(SHAPES)}
    with open(good, "rb") as f:
        return f.read(), good, offsets


VALID, GOOD, OFFSETS = _valid()  # OFFSETS: file address of each contiguous stage's data (None if chunked)


def _check(content: bytes, refused: bool) -> None:
    check_bytes(content, GOOD, refused)


def _replace_u64(content: bytes, old: int, new: int) -> bytes:
    """Every 8-byte little-endian occurrence of ``old`` replaced by ``new`` (wrapping to 64 bits)."""
    return content.replace(struct.pack("<Q", old), struct.pack("<Q", new % 2**64))


def _dims_at(content: bytes, shape: tuple) -> list[int]:
    pattern = b"".join(struct.pack("<Q", d) for d in shape)
    found, start = [], 0
    while (at := content.find(pattern, start)) >= 0:
        found.append(at)
        start = at + 1
    return found


def test_the_targets_exist():
    assert OFFSETS["enc"] and OFFSETS["mel"] and OFFSETS["big"] is None
    assert all(_dims_at(VALID, shape) for shape in SHAPES.values())


@SETTINGS
@given(cut=st.integers(0, len(VALID) - 1))
def test_truncated(cut):
    _check(VALID[:cut], refused=True)


@SETTINGS
@given(bits=st.lists(st.integers(0, 8 * len(VALID) - 1), min_size=1, max_size=8))
def test_bit_flipped(bits):
    _check(flip_bits(VALID, bits), refused=False)


@SETTINGS
@given(field=st.integers(0, 15), value=st.sampled_from([2**64 - 1, 2**63, 2**40]) | st.integers(len(VALID), 2**64 - 1))
def test_oversized_superblock_fields(field, value):
    """Addresses and lengths in the first 128 bytes (superblock, root object header) set far past the file."""
    content = bytearray(VALID)
    content[8 * field : 8 * field + 8] = struct.pack("<Q", value)
    _check(bytes(content), refused=False)


@SETTINGS
@given(stage=st.sampled_from(["enc", "mel"]), address=st.integers(0, 2**64 - 1) | st.integers(0, len(VALID) + 64))
def test_wrong_data_address(stage, address):
    _check(_replace_u64(VALID, OFFSETS[stage], address), refused=False)


@SETTINGS
@given(shift=st.integers(-16, 16))
def test_overlapping_data_addresses(shift):
    """The second stage's data address moved into the first's: reads agree or fail, never misbehave."""
    _check(_replace_u64(VALID, OFFSETS["mel"], OFFSETS["enc"] + shift), refused=False)


@SETTINGS
@given(
    stage=st.sampled_from(sorted(SHAPES)),
    dim=st.integers(0, 1),
    value=st.sampled_from([2**64 - 1, 2**64 - 2, 2**63]) | st.integers(2**63, 2**64 - 1),
)
def test_negative_dimensions(stage, dim, value):
    """A dimension written as a negative int64 (an all-ones or top-bit unsigned): refused or unreadable."""
    content = bytearray(VALID)
    for at in _dims_at(VALID, SHAPES[stage]):
        content[at + 8 * dim : at + 8 * dim + 8] = struct.pack("<Q", value)
    _check(bytes(content), refused=False)


@SETTINGS
@given(stage=st.sampled_from(sorted(SHAPES)), dim=st.integers(0, 1), value=st.integers(2**20, 2**62))
def test_huge_dimensions(stage, dim, value):
    content = bytearray(VALID)
    for at in _dims_at(VALID, SHAPES[stage]):
        content[at + 8 * dim : at + 8 * dim + 8] = struct.pack("<Q", value)
    _check(bytes(content), refused=False)


@pytest.mark.parametrize("shape", [(2**30, 2**30), (2**62,), (2**21, 4096)])
def test_sparse_dataset_claiming_huge_shape_is_refused_at_once(tmp_path, shape):
    """A numtrace-layout stage with a huge shape and no stored chunks (it reads as fill value):
    reading it would stream for ever; it is refused when the file is opened."""
    path = tmp_path / "sparse.h5"
    with h5py.File(path, "w") as f:
        f.attrs["numtrace.container"] = "numtrace-trace/1"
        f["numtrace/metadata"] = "{}"
        f.create_dataset("stages/000000", shape=shape, dtype="f4", chunks=(1,) * (len(shape) - 1) + (1024,))
        f["stages/000000"].attrs.update({"name": "x", "dtype": "float32"})
    outcomes = check_file(path, GOOD)
    assert_refused(outcomes)
    assert "claims shape" in outcomes[0].stderr and "corrupt or hostile" in outcomes[0].stderr


def test_sparse_foreign_dataset_is_skipped(tmp_path):
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("huge", shape=(2**31, 2**31), dtype="f4", chunks=(1, 1024))
        f["small"] = np.ones(3, np.float32)
    show = check_file(path, GOOD)[0]
    assert show.code == 0 and "small" in show.stdout and "huge" not in show.stdout
