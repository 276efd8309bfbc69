"""Broken, truncated, unsafe and hostile trace files give one clear TraceFileError, nothing else."""

from __future__ import annotations

import functools
import json
import os
import pickle
import struct
import tempfile
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numtrace.errors import TraceFileError
from numtrace.formats import load, save

ROLE = "reference trace"


def st_bytes(header: object, data: bytes = b"", pad_to: int = 8) -> bytes:
    """A safetensors file from a header (a JSON-able object, or raw bytes) and a data section."""
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    blob += b" " * (-len(blob) % pad_to)
    return struct.pack("<Q", len(blob)) + blob + data


def f32(shape, begin, end) -> dict:
    return {"dtype": "F32", "shape": shape, "data_offsets": [begin, end]}


def expect_error(path, fragment: str, role: str = ROLE) -> str:
    with pytest.raises(TraceFileError) as info:
        with load(path, role=role) as trace:
            for name in trace.order:
                trace.read(name)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    assert message.startswith(f"{role} {str(path)!r}: "), message
    assert fragment in message, message
    return message


HOSTILE = {
    "short": (b"abc", "fewer than the 8-byte header length"),
    "huge_header_length": (struct.pack("<Q", 200_000_000) + b"{}", "over the safetensors limit"),
    "truncated_header": (
        struct.pack("<Q", 1000) + b'{"x":',
        "header claims 1000 bytes but the file has only 5 after its 8-byte length prefix: truncated, or not a safetensors file",
    ),
    "pickle_protocol_2": (pickle.dumps({"w": [1.0, 2.0]}, protocol=2), "PyTorch pickle"),
    "pickle_protocol_5": (pickle.dumps({"w": list(range(100))}, protocol=5), "never loads pickles"),
    "tiny_pickle": (b"\x80\x02", "safetensors.torch.save_file"),
    "zip_archive": (b"PK\x03\x04\x14\x00\x00\x00" + bytes(200), "torch.save archive"),
    "hdf5_named_st": (b"\x89HDF\r\n\x1a\n" + bytes(100), "is an HDF5 file"),
    "not_utf8": (st_bytes(b'{"\xff\xfe":1}'), "not UTF-8"),
    "not_json": (st_bytes(b"{not json at all}"), "not valid JSON"),
    "zero_length_header": (struct.pack("<Q", 0) + b"data", "not valid JSON"),
    "json_array": (st_bytes([1, 2, 3]), "not a JSON object"),
    "deep_nesting": (st_bytes(b'{"x":' + b"[" * 200_000 + b"]" * 200_000 + b"}"), "nested too deeply"),
    "duplicate_key": (
        st_bytes(
            b'{"x":' + json.dumps(f32([1], 0, 4)).encode() + b',"x":' + json.dumps(f32([1], 0, 4)).encode() + b"}",
            bytes(4),
        ),
        "'x' appears twice",
    ),
    "entry_not_object": (st_bytes({"x": 3}), "is a number, not an object"),
    "entry_is_list": (st_bytes({"x": [1, 2]}), "is an array, not an object"),
    "unknown_dtype": (
        st_bytes({"x": {"dtype": "F8_E8M0", "shape": [1], "data_offsets": [0, 1]}}, b"\0"),
        "unknown dtype code 'F8_E8M0'",
    ),
    "missing_dtype": (st_bytes({"x": {"shape": [1], "data_offsets": [0, 4]}}, bytes(4)), "unknown dtype code None"),
    "shape_not_list": (st_bytes({"x": f32("4", 0, 16)}, bytes(16)), "not a list of non-negative integers"),
    "shape_negative": (st_bytes({"x": f32([-1, -4], 0, 16)}, bytes(16)), "not a list of non-negative integers"),
    "shape_float": (st_bytes({"x": f32([4.0], 0, 16)}, bytes(16)), "not a list of non-negative integers"),
    "shape_bool": (st_bytes({"x": f32([True], 0, 4)}, bytes(4)), "not a list of non-negative integers"),
    "too_many_dims": (st_bytes({"x": f32([1] * 65, 0, 4)}, bytes(4)), "65 dimensions"),
    "offsets_one_int": (st_bytes({"x": f32([1], 0, 4) | {"data_offsets": [4]}}, bytes(4)), "not two integers"),
    "offsets_strings": (st_bytes({"x": f32([1], 0, 4) | {"data_offsets": ["0", "4"]}}, bytes(4)), "not two integers"),
    "offsets_bool": (st_bytes({"x": f32([1], 0, 4) | {"data_offsets": [False, 4]}}, bytes(4)), "not two integers"),
    "offsets_reversed": (st_bytes({"x": f32([1], 4, 0)}, bytes(4)), "need 0 <= begin <= end"),
    "offsets_negative": (st_bytes({"x": f32([1], -4, 0)}, bytes(4)), "need 0 <= begin <= end"),
    "beyond_data": (
        st_bytes({"x": f32([2], 0, 8)}, bytes(4)),
        "ends at byte 8 of a data section of 4 bytes: truncated",
    ),
    "size_mismatch": (st_bytes({"x": f32([3], 0, 8)}, bytes(8)), "(12 bytes) but its data_offsets span 8 bytes"),
    "overlap": (st_bytes({"a": f32([2], 0, 8), "b": f32([2], 4, 12)}, bytes(12)), "overlap"),
    "same_range": (st_bytes({"a": f32([2], 0, 8), "b": f32([2], 0, 8)}, bytes(8)), "overlap"),
    "huge_shape": (st_bytes({"x": f32([2**40, 2**40], 0, 4)}, bytes(4)), "too large for any array"),
    "huge_zero_size_shape": (st_bytes({"x": f32([0, 2**70], 0, 0)}), "too large for any array"),
    "claimed_shape_no_data": (
        st_bytes({"x": f32([2**20, 2**10], 0, 4)}, bytes(4)),
        "(4294967296 bytes) but its data_offsets span 4",
    ),
    "tensor_named_metadata": (st_bytes({"__metadata__": f32([1], 0, 4)}, bytes(4)), "tensor named '__metadata__'"),
    "metadata_list": (
        st_bytes({"__metadata__": ["a"]}),
        "'__metadata__' is an array; it must be an object of strings (or null)",
    ),
    "metadata_string": (st_bytes({"__metadata__": "a"}), "'__metadata__' is a string"),
    "order_not_json": (st_bytes({"__metadata__": {"numtrace.order": "[x"}}), "numtrace.order"),
    "order_not_list": (st_bytes({"__metadata__": {"numtrace.order": '{"a": 1}'}}), "JSON array of stage names"),
    "order_unknown_stage": (st_bytes({"__metadata__": {"numtrace.order": '["ghost"]'}}), "'ghost'"),
    "order_repeats": (
        st_bytes({"__metadata__": {"numtrace.order": '["x", "x"]'}, "x": f32([1], 0, 4)}, bytes(4)),
        "twice",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_safetensors(tmp_path, case):
    content, fragment = HOSTILE[case]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    expect_error(path, fragment)


def test_missing_directory_and_empty(tmp_path):
    expect_error(tmp_path / "missing.safetensors", "not found", role="candidate trace")
    expect_error(tmp_path / "missing.h5", "not found")
    (tmp_path / "dir.st").mkdir()
    expect_error(tmp_path / "dir.st", "is a directory")
    (tmp_path / "dir.h5").mkdir()
    expect_error(tmp_path / "dir.h5", "is a directory")
    for name in ("empty.st", "empty.h5", "empty.bin"):
        (tmp_path / name).write_bytes(b"")
        expect_error(tmp_path / name, "is empty")


def test_real_torch_save_file_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "weights.safetensors"
    torch.save({"w": torch.ones(3)}, path)
    expect_error(path, "numtrace never loads pickles")
    torch.save({"w": torch.ones(3)}, path, _use_new_zipfile_serialization=False)
    expect_error(path, "PyTorch pickle")


def test_huge_claimed_shape_is_rejected_without_allocating(tmp_path):
    path = tmp_path / "huge.st"
    path.write_bytes(st_bytes({"x": {"dtype": "F64", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, bytes(8)))
    tracemalloc.start()
    try:
        expect_error(path, "too large")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


@pytest.mark.parametrize("header_bytes", [128, 384, 128 + 256 * 5])
def test_valid_header_length_starting_with_byte_0x80_is_not_a_pickle(tmp_path, header_bytes):
    path = tmp_path / "ok.st"
    path.write_bytes(st_bytes({"x": f32([2], 0, 8)}, np.array([1.5, -2], "<f4").tobytes(), pad_to=header_bytes))
    assert path.read_bytes()[0] == 0x80
    with load(path) as trace:
        assert trace.read("x").tolist() == [1.5, -2.0]


def test_tolerated_oddities(tmp_path):
    """Things other writers do that are valid: null metadata, non-string values, shared empty ranges, gaps."""
    header = {
        "__metadata__": {"n": 1, "list": [1, "a"], "s": "text"},
        "e1": f32([0, 3], 4, 4),
        "e2": f32([0], 4, 4),
        "x": f32([1], 8, 12),  # bytes 0-8 unused
    }
    path = tmp_path / "odd.st"
    path.write_bytes(st_bytes(header, bytes(8) + np.float32(7).tobytes()))
    with load(path) as trace:
        assert trace.metadata == {"n": "1", "list": '[1, "a"]', "s": "text"}
        assert trace.read("x").tolist() == [7.0] and trace.read("e1").shape == (0, 3)
    path.write_bytes(st_bytes({"__metadata__": None, "x": f32([], 0, 4)}, np.float32(3).tobytes()))
    with load(path) as trace:
        assert trace.metadata == {} and trace.read("x") == 3


def test_file_truncated_after_opening(tmp_path):
    path = save(tmp_path / "t.st", {"x": np.arange(1000.0)})
    with load(path) as trace:
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) - 100)
        expect_message = "truncated or changed while reading"
        with pytest.raises(TraceFileError, match=expect_message):
            trace.read("x")


def test_hostile_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py")
    good = save(tmp_path / "good.h5", {"x": np.arange(10.0), "y": np.ones((3, 3))})
    content = open(good, "rb").read()
    (tmp_path / "garbage.h5").write_bytes(b"this is not hdf5 at all" * 10)
    expect_error(tmp_path / "garbage.h5", "cannot be read as HDF5")
    (tmp_path / "st_named_h5.h5").write_bytes(open(save(tmp_path / "s.st", {"x": np.ones(2)}), "rb").read())
    expect_error(tmp_path / "st_named_h5.h5", "not an HDF5 file")
    for cut in (8, 100, 1000, len(content) // 2, len(content) - 10):
        (tmp_path / "cut.h5").write_bytes(content[:cut])
        expect_error(tmp_path / "cut.h5", "")
    with h5py.File(tmp_path / "future.h5", "w") as f:
        f.attrs["numtrace.container"] = "numtrace-trace/9"
    expect_error(tmp_path / "future.h5", "upgrade numtrace")
    with h5py.File(tmp_path / "wrong_dtype.h5", "w") as f:
        f.attrs["numtrace.container"] = "numtrace-trace/1"
        f["numtrace/metadata"] = "{}"
        f["stages/000000"] = np.ones(3, np.float32)
        f["stages/000000"].attrs.update({"name": "x", "dtype": "bfloat16"})
    expect_error(tmp_path / "wrong_dtype.h5", "stored as float32, not as bfloat16")
    with h5py.File(tmp_path / "no_meta.h5", "w") as f:
        f.attrs["numtrace.container"] = "numtrace-trace/1"
        f.create_group("stages")
    expect_error(tmp_path / "no_meta.h5", "/numtrace/metadata")
    with h5py.File(tmp_path / "bad_meta.h5", "w") as f:
        f.attrs["numtrace.container"] = "numtrace-trace/1"
        f["numtrace/metadata"] = "[1, 2"
    expect_error(tmp_path / "bad_meta.h5", "not a JSON object")


# --- fuzzing ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def valid_trace_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = save(
            os.path.join(d, "t.st"),
            {
                "a.0": (np.array([1.0, np.nan, -2.5], np.float32), "bfloat16"),
                "a.1": np.arange(6, dtype=np.float32).reshape(2, 3),
                "b": np.array(7, np.int64),
                "c": np.array([True, False]),
                "d": np.zeros((0, 2), np.float16),
                "e": (np.array([0.5, -448.0], np.float32), "float8_e4m3fn"),
            },
            metadata={"k": "v"},
        )
        return open(path, "rb").read()


def loads_cleanly_or_fails_cleanly(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "fuzz.safetensors")
        with open(path, "wb") as f:
            f.write(content)
        try:
            with load(path, role=ROLE) as trace:
                for name in trace.order:
                    info = trace.info(name)
                    value = trace.read(name)
                    assert value.shape == info.shape
                    assert sum(c.size for c in trace.iter_chunks(name, 2)) == info.size
        except TraceFileError as err:
            message = str(err)
            assert "\n" not in message and message.startswith(f"{ROLE} {path!r}: ")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutations=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(min_value=0)),
)
def test_fuzz_mutated_and_truncated_files(mutations, cut):
    content = bytearray(valid_trace_bytes())
    for position, value in mutations:
        content[position % len(content)] = value
    if cut is not None:
        del content[cut % (len(content) + 1) :]
    loads_cleanly_or_fails_cleanly(bytes(content))


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
entry = st.fixed_dictionaries(
    {},
    optional={
        "dtype": st.sampled_from(["F32", "BF16", "F8_E4M3", "BOOL", "I64", "C64", "F4", "", "f32"]) | json_value,
        "shape": st.lists(st.integers(-2, 2**40), max_size=4) | st.lists(st.integers(0, 5), max_size=3) | json_value,
        "data_offsets": st.lists(st.integers(-2, 80), min_size=0, max_size=3) | json_value,
    },
)
metadata = (
    st.none()
    | st.dictionaries(
        st.sampled_from(["numtrace.order", "k", "numtrace.format"]),
        st.sampled_from(['["a"]', '["a", "b"]', "[", "[1]", "{}"]) | json_value,
        max_size=3,
    )
    | json_value
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=st.dictionaries(
        st.sampled_from(["a", "b", "c", "__metadata__", "step.10"]) | st.text(max_size=4),
        entry | json_value,
        max_size=4,
    ),
    meta=st.none() | metadata,
    data=st.binary(max_size=80),
)
def test_fuzz_random_headers(entries, meta, data):
    header = dict(entries)
    if meta is not None:
        header["__metadata__"] = meta
    loads_cleanly_or_fails_cleanly(st_bytes(json.dumps(header).encode(), data))
