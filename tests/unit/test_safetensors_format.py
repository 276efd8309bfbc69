"""Safetensors traces: exact round trips, interop with safetensors/torch/MLX, chunking, atomic writes."""

from __future__ import annotations

import json
import os
import pathlib
import struct

import numpy as np
import pytest

from numtrace import dtypes
from numtrace.errors import RecordingError, TapError, TraceFileError
from numtrace.formats import convert, load, open_writer, save
from numtrace.formats import writer as writer_module
from numtrace.formats.safetensors import NOT_IN_SAFETENSORS, SafetensorsTrace, SafetensorsWriter
from numtrace.trace import FORMAT_KEY, ORDER_KEY

# Raw bfloat16 bits: quiet and signalling NaNs with payloads, +-inf, -0.0, smallest subnormal, max.
BF16_BITS = np.array([0x7FC1, 0xFFC0, 0x7F81, 0x7F80, 0xFF80, 0x8000, 0x0001, 0x7F7F, 0x3F80, 0xC049], np.uint16)


def value_cases() -> dict[str, np.ndarray]:
    """One array per NumPy-native recorded dtype, at its extremes."""
    cases: dict[str, np.ndarray] = {"bool": np.array([True, False, True])}
    for name in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"):
        info = np.iinfo(name)
        cases[name] = np.array([info.min, info.max, 0, 1, info.max - 1], dtype=name)
    for name in ("float16", "float32", "float64"):
        info = np.finfo(name)
        cases[name] = np.array(
            [np.nan, np.inf, -np.inf, -0.0, 0.0, info.max, info.min, info.smallest_subnormal, 1 / 3], dtype=name
        )
    for name in ("complex64", "complex128"):
        cases[name] = np.array([complex(np.nan, 1), complex(-0.0, np.inf), 1 + 2j, -3.5 - 0.0j], dtype=name)
    return cases


def raw_cases() -> dict[str, tuple[np.ndarray, str]]:
    """Stored bits for every recorded dtype (all 256 codes for float8)."""
    out = {f"v.{name}": (dtypes.encode(values, name), name) for name, values in value_cases().items()}
    out["v.bfloat16"] = (BF16_BITS, "bfloat16")
    out["v.float8_e4m3fn"] = (np.arange(256, dtype=np.uint8), "float8_e4m3fn")
    out["v.float8_e5m2"] = (np.arange(256, dtype=np.uint8), "float8_e5m2")
    return out


def st_raw_cases() -> dict[str, tuple[np.ndarray, str]]:
    """raw_cases() less complex128, which safetensors has no code for (numtrace refuses to write it)."""
    return {name: case for name, case in raw_cases().items() if case[1] not in NOT_IN_SAFETENSORS}


def test_raw_cases_cover_every_dtype():
    assert {dtype for _, dtype in raw_cases().values()} == set(dtypes.SAFETENSORS_CODES)


def write_raw(path, cases) -> str:
    with open_writer(path) as writer:
        for name, (raw, dtype) in cases.items():
            writer.add_raw(name, raw, dtype)
    return str(path)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype.itemsize == b.dtype.itemsize and a.tobytes() == b.tobytes()


def test_complex128_is_refused_by_the_writer_but_read_when_another_writer_made_it(tmp_path):
    with pytest.raises(TapError, match="safetensors has no complex128"):
        save(tmp_path / "t.safetensors", {"z": np.array([1 + 2j])})
    assert not list(tmp_path.iterdir())
    values = np.array([1 + 2j, -0.5j])
    header = json.dumps({"z": {"dtype": "C128", "shape": [2], "data_offsets": [0, 32]}}).encode()
    (tmp_path / "c.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + values.tobytes())
    with load(tmp_path / "c.safetensors") as trace:
        assert trace.info("z").dtype == "complex128"
        np.testing.assert_array_equal(trace.read("z"), values)


@pytest.mark.parametrize("dtype", sorted(set(value_cases()) - NOT_IN_SAFETENSORS))
def test_values_round_trip_bit_exact(tmp_path, dtype):
    values = value_cases()[dtype]
    path = save(tmp_path / "t.safetensors", {"x": (values, dtype)})
    with load(path) as trace:
        assert trace.info("x").dtype == dtype and trace.info("x").shape == values.shape
        back = trace.read("x")
    assert back.dtype == values.dtype
    assert same_bits(back, values)  # NaN, -0.0 and extremes keep their exact bits


def test_raw_bits_round_trip_for_every_dtype(tmp_path):
    cases = st_raw_cases()
    with load(write_raw(tmp_path / "t.st", cases)) as trace:
        assert trace.order == list(cases)
        for name, (raw, dtype) in cases.items():
            got = np.concatenate(list(trace.iter_raw_chunks(name, 3)))
            assert same_bits(got, raw), name
            np.testing.assert_array_equal(trace.read(name), dtypes.decode(raw, dtype))


def test_bfloat16_and_float8_values_decode_exactly(tmp_path):
    path = write_raw(tmp_path / "t.st", st_raw_cases())
    with load(path) as trace:
        bf16 = trace.read("v.bfloat16")
        e4m3 = trace.read("v.float8_e4m3fn")
        e5m2 = trace.read("v.float8_e5m2")
    assert np.isnan(bf16[:3]).all() and bf16[3] == np.inf and bf16[4] == -np.inf
    assert bf16[5] == 0 and np.signbit(bf16[5]) and bf16[6] == 2.0**-133 and bf16[8] == 1.0 and bf16[9] == -3.140625
    assert e4m3[0x7E] == 448.0 and e4m3[0x01] == 2.0**-9 and np.isnan(e4m3[0x7F]) and np.isnan(e4m3[0xFF])
    assert e5m2[0x7B] == 57344.0 and e5m2[0x7C] == np.inf and e5m2[0xFC] == -np.inf and np.isnan(e5m2[0x7D])


def test_values_added_as_bfloat16_are_rounded_like_a_cast(tmp_path):
    values = np.array([1.0, 1.00390625, 1.01171875, -2.5], np.float32)  # ties round to even
    path = save(tmp_path / "t.st", {"x": (values, "bfloat16")})
    with load(path) as trace:
        assert trace.read("x").tolist() == [1.0, 1.0, 1.015625, -2.5]


def test_zero_d_and_zero_size(tmp_path):
    stages = {
        "scalar": np.array(3.5, np.float32),
        "scalar.bf16": (np.array(-1.5, np.float32), "bfloat16"),
        "empty": np.zeros((0, 3), np.int16),
        "empty.mid": (np.zeros((2, 0, 4), np.float32), "bfloat16"),
    }
    with load(save(tmp_path / "t.st", stages)) as trace:
        assert trace.read("scalar").shape == () and trace.read("scalar") == 3.5
        assert trace.read("scalar.bf16").shape == () and trace.read("scalar.bf16") == -1.5
        assert trace.info("empty").shape == (0, 3) and trace.read("empty").shape == (0, 3)
        assert trace.read("empty.mid").shape == (2, 0, 4)
        chunks = list(trace.iter_chunks("empty", 10))
        assert len(chunks) == 1 and chunks[0].size == 0


def test_awkward_names(tmp_path):
    names = ["enc/layer.0:attn", "ünïcødé.名前.🙂", "x" * 20_000, "with space", "new\nline", 'q"uote\\']
    stages = {name: np.full(2, i, np.int32) for i, name in enumerate(names)}
    with load(save(tmp_path / "t.st", stages)) as trace:
        assert trace.order == names
        for i, name in enumerate(names):
            assert trace.read(name).tolist() == [i, i]


def test_non_contiguous_arrays_are_written_in_logical_order(tmp_path):
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    stages = {
        "transposed": base.T,
        "strided": np.arange(100.0)[::3],
        "reversed": base[::-1, ::-2],
        "fortran": np.asfortranarray(base),
        "big_endian": base.astype(">f4"),
    }
    with load(save(tmp_path / "t.st", stages)) as trace:
        for name, value in stages.items():
            np.testing.assert_array_equal(trace.read(name), value)
    # and safetensors itself agrees
    from safetensors.numpy import load_file

    loaded = load_file(tmp_path / "t.st")
    np.testing.assert_array_equal(loaded["transposed"], base.T)
    np.testing.assert_array_equal(loaded["reversed"], base[::-1, ::-2])


def test_order_is_kept_and_falls_back_to_natural_sort(tmp_path):
    stages = {name: np.zeros(1) for name in ["step.10", "step.2", "step.1", "a"]}
    with load(save(tmp_path / "given.st", stages, order=["a", "step.1", "step.10", "step.2"])) as trace:
        assert trace.order == ["a", "step.1", "step.10", "step.2"] and trace.has_order
    from safetensors.numpy import save_file

    save_file(stages, str(tmp_path / "foreign.st"))
    with load(tmp_path / "foreign.st") as trace:
        assert trace.order == ["a", "step.1", "step.2", "step.10"] and not trace.has_order


def test_metadata_round_trip(tmp_path):
    meta = {"model": "tiny", "config": json.dumps({"layers": [1, 2]}), "ünï": "cødé", "numtrace.backend": "numpy"}
    with open_writer(tmp_path / "t.st") as writer:
        writer.add("x", np.ones(2))
        writer.metadata["seed"] = 7  # not a string: stored as JSON text
    with load(writer.path) as trace:
        assert trace.metadata["seed"] == "7"
    with load(save(tmp_path / "u.st", {"x": np.ones(1)}, metadata=meta)) as trace:
        assert trace.user_metadata == {k: v for k, v in meta.items() if not k.startswith("numtrace.")}
        assert trace.metadata["numtrace.backend"] == "numpy"
        assert json.loads(trace.metadata[ORDER_KEY]) == ["x"] and trace.metadata[FORMAT_KEY] == "1"


def test_header_is_padded_to_eight_bytes(tmp_path):
    for n in range(1, 9):
        path = save(tmp_path / f"t{n}.st", {"x" * n: np.ones(n, np.uint8)})
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
        assert length % 8 == 0


def test_zero_stages_is_a_valid_empty_trace(tmp_path):
    path = save(tmp_path / "empty.st", {})
    with load(path) as trace:
        assert trace.order == [] and len(trace) == 0
    from safetensors.numpy import load_file

    assert load_file(path) == {}


def test_chunked_reads_match_whole_reads(tmp_path):
    rng = np.random.default_rng(0)
    stages = {
        "f": rng.normal(size=(7, 13)).astype(np.float32),
        "b": (rng.normal(size=101).astype(np.float32), "bfloat16"),
    }
    with load(save(tmp_path / "t.st", stages)) as trace:
        for name in stages:
            whole = trace.read(name).reshape(-1)
            for size in (1, 2, 7, 50, 91, 1000):
                chunks = list(trace.iter_chunks(name, size))
                assert all(c.size == size for c in chunks[:-1]) and 0 < chunks[-1].size <= size
                np.testing.assert_array_equal(np.concatenate(chunks), whole)
        # chunk generators of different stages can interleave: each read seeks
        a, b = trace.iter_chunks("f", 10), trace.iter_chunks("b", 10)
        first_a, first_b, second_a = next(a), next(b), next(a)
        np.testing.assert_array_equal(np.concatenate([first_a, second_a]), stages["f"].reshape(-1)[:20])
        np.testing.assert_array_equal(first_b, trace.read("b")[:10])


def test_unknown_stage_and_closed_trace(tmp_path):
    path = save(tmp_path / "t.st", {"x": np.ones(3)})
    trace = load(pathlib.Path(path))
    assert isinstance(trace, SafetensorsTrace) and trace.label == path
    with pytest.raises(KeyError, match="t.st"):
        trace.info("y")
    with pytest.raises(KeyError, match="'y'"):
        trace.iter_chunks("y", 4)
    assert "x" in trace and "y" not in trace and list(trace) == ["x"]
    trace.close()
    with pytest.raises(ValueError, match="closed"):
        trace.read("x")


def test_load_sniffs_unknown_suffixes(tmp_path):
    st = save(tmp_path / "t.st", {"x": np.arange(3)})
    h5 = save(tmp_path / "t.h5", {"x": np.arange(3)})
    for src, kind in ((st, "SafetensorsTrace"), (h5, "HDF5Trace")):
        dst = tmp_path / (os.path.basename(src) + ".bin")
        dst.write_bytes(pathlib.Path(src).read_bytes())
        with load(dst) as trace:
            assert type(trace).__name__ == kind and trace.read("x").tolist() == [0, 1, 2]


def test_open_writer_rejects_unknown_suffix(tmp_path):
    with pytest.raises(TraceFileError, match=r"\.npz.*\.safetensors"):
        open_writer(tmp_path / "t.npz")


@pytest.mark.parametrize("bad", ["", "__metadata__", 3, None, "dup", "nul\x00", "\ud800"])
def test_writer_refuses_bad_names(tmp_path, bad):
    with SafetensorsWriter(tmp_path / "t.st") as writer:
        writer.add("dup", np.ones(1))
        with pytest.raises(TapError):
            writer.add(bad, np.ones(1))
        assert writer.names == ["dup"]
    with load(tmp_path / "t.st") as trace:
        assert trace.order == ["dup"]


def test_writer_checks_raw_data_and_order(tmp_path):
    writer = SafetensorsWriter(tmp_path / "t.st")
    with pytest.raises(TapError, match="uint16"):
        writer.add_raw("x", np.zeros(3, np.float32), "bfloat16")
    with pytest.raises(TapError, match="elements"):
        writer.add_raw_chunks("x", (2, 2), "float32", [np.zeros(3, np.float32)])
    writer.add_raw_chunks("x", (2, 2), "float32", [np.zeros(3, np.float32), np.ones(1, np.float32)])
    with pytest.raises(RecordingError, match="order"):
        writer.close(order=["x", "y"])  # a bad argument writes nothing and leaves the writer usable
    assert not (tmp_path / "t.st").exists()
    writer.close(order=["x"])
    with load(tmp_path / "t.st") as trace:
        assert trace.read("x").tolist() == [[0.0, 0.0], [0.0, 1.0]]
    with pytest.raises(RecordingError, match="closed"):
        writer.add("z", np.ones(1))


def test_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "t.st"
    target.write_bytes(b"old")
    writer = SafetensorsWriter(target)
    writer.add("x", np.ones(1000))
    temps = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(temps) == 1 and temps[0].startswith(".t.st.")
    assert target.read_bytes() == b"old"  # untouched until close
    writer.close()
    assert sorted(os.listdir(tmp_path)) == ["t.st"]
    with load(target) as trace:
        assert trace.read("x").sum() == 1000

    with pytest.raises(RuntimeError):
        with SafetensorsWriter(target) as writer:
            writer.add("y", np.zeros(5))
            raise RuntimeError("the traced script failed")
    assert sorted(os.listdir(tmp_path)) == ["t.st"]
    with load(target) as trace:
        assert trace.order == ["x"]

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    monkeypatch.setattr(writer_module, "_exchange", lambda first, second: False)  # the rename is what fails
    writer = SafetensorsWriter(target)
    writer.add("z", np.zeros(5))
    with pytest.raises(RecordingError, match="No space left"):
        writer.close()
    assert sorted(os.listdir(tmp_path)) == ["t.st"]  # no .tmp left behind


def test_writer_refuses_missing_directory(tmp_path):
    with pytest.raises(RecordingError, match="does not exist"):
        SafetensorsWriter(tmp_path / "nope" / "t.st")


def test_dropped_writer_removes_its_temp_file(tmp_path):
    writer = SafetensorsWriter(tmp_path / "t.st")
    writer.add("x", np.ones(3))
    del writer
    import gc

    gc.collect()
    assert os.listdir(tmp_path) == []


# --- interop ----------------------------------------------------------------------------

NATIVE = [n for n in value_cases() if n != "complex128"]  # safetensors has no C128


def test_safetensors_reads_what_we_write(tmp_path):
    from safetensors import safe_open

    cases = value_cases()
    path = save(tmp_path / "t.safetensors", {n: cases[n] for n in NATIVE}, metadata={"k": "v"})
    with safe_open(path, "np") as f:
        assert f.metadata()["k"] == "v" and json.loads(f.metadata()[ORDER_KEY]) == NATIVE
        assert list(f.offset_keys()) == NATIVE
        for name in NATIVE:
            assert same_bits(f.get_tensor(name), cases[name]), name


def test_we_read_what_safetensors_numpy_writes(tmp_path):
    from safetensors.numpy import save_file

    cases = value_cases()
    stages = {n: cases[n] for n in NATIVE}
    stages["scalar"] = np.array(2.0)
    stages["empty"] = np.zeros((3, 0), np.float32)
    save_file(stages, str(tmp_path / "t.st"), metadata={"who": "safetensors"})
    with load(tmp_path / "t.st") as trace:
        assert trace.metadata == {"who": "safetensors"} and not trace.has_order
        for name, value in stages.items():
            assert same_bits(trace.read(name), value), name


def test_torch_bfloat16_and_float8_interop(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    bf16 = torch.from_numpy(BF16_BITS.view(np.int16)).view(torch.bfloat16)
    f8 = torch.from_numpy(np.arange(256, dtype=np.uint8)).view(torch.float8_e4m3fn)
    save_file({"bf16": bf16, "f8": f8, "f16": torch.tensor([1.5, -0.0], dtype=torch.float16)}, str(tmp_path / "t.st"))
    with load(tmp_path / "t.st") as trace:
        assert trace.info("bf16").dtype == "bfloat16" and trace.info("f8").dtype == "float8_e4m3fn"
        assert same_bits(np.concatenate(list(trace.iter_raw_chunks("bf16", 4))), BF16_BITS)
        np.testing.assert_array_equal(trace.read("bf16"), bf16.float().numpy())
        np.testing.assert_array_equal(trace.read("f8"), f8.float().numpy())
    # and the other way: torch reads our bfloat16 bits unchanged
    ours = write_raw(
        tmp_path / "ours.st", {"bf16": (BF16_BITS, "bfloat16"), "f8": (np.arange(256, dtype=np.uint8), "float8_e5m2")}
    )
    back = load_file(ours)
    assert back["bf16"].dtype == torch.bfloat16 and same_bits(back["bf16"].view(torch.int16).numpy(), BF16_BITS)
    assert back["f8"].dtype == torch.float8_e5m2
    assert same_bits(back["f8"].view(torch.uint8).numpy(), np.arange(256, dtype=np.uint8))


@pytest.mark.parametrize(
    "metadata", [None, {"numtrace.order": json.dumps(["z", "b16", "step.10", "step.2"]), "k": "v"}]
)
def test_mlx_save_safetensors_interop(tmp_path, metadata):
    mx = pytest.importorskip("mlx.core")
    arrays = {
        "step.10": mx.arange(6, dtype=mx.int32).reshape(2, 3),
        "step.2": mx.array([1.5, -2.25], dtype=mx.float16),
        "b16": mx.array([1.0, -3.140625, float("inf")], dtype=mx.bfloat16),
        "z": mx.array(0.5),
    }
    mx.save_safetensors(str(tmp_path / "m"), arrays, metadata=metadata)  # MLX appends .safetensors
    with load(tmp_path / "m.safetensors") as trace:
        if metadata is None:
            assert trace.metadata == {} and trace.order == ["b16", "step.2", "step.10", "z"]
        else:
            assert trace.order == ["z", "b16", "step.10", "step.2"] and trace.user_metadata == {"k": "v"}
        for name, array in arrays.items():
            expected = np.array(array.astype(mx.float32)) if array.dtype == mx.bfloat16 else np.array(array)
            got = trace.read(name)
            assert got.shape == expected.shape and np.array_equal(got, expected), name
        assert trace.info("b16").dtype == "bfloat16"


def test_mlx_loads_what_we_write(tmp_path):
    mx = pytest.importorskip("mlx.core")
    path = save(
        tmp_path / "t.safetensors",
        {
            "b16": (np.array([1.0, -2.5, np.inf], np.float32), "bfloat16"),
            "x": np.arange(4.0, dtype=np.float32).reshape(2, 2).T,
        },
    )
    loaded, meta = mx.load(path, return_metadata=True)
    assert loaded["b16"].dtype == mx.bfloat16
    assert np.array(loaded["b16"].astype(mx.float32)).tolist() == [1.0, -2.5, np.inf]
    assert np.array(loaded["x"]).tolist() == [[0.0, 2.0], [1.0, 3.0]]
    assert json.loads(meta[ORDER_KEY]) == ["b16", "x"]


def test_convert_safetensors_to_safetensors_keeps_bits(tmp_path):
    src = write_raw(tmp_path / "a.st", st_raw_cases())
    dst = convert(src, tmp_path / "b.safetensors")
    with load(src) as a, load(dst) as b:
        assert a.order == b.order and a.metadata == b.metadata
        for name in a.order:
            assert a.info(name) == b.info(name)
            assert same_bits(
                np.concatenate(list(a.iter_raw_chunks(name, 7))), np.concatenate(list(b.iter_raw_chunks(name, 1 << 20)))
            )


def test_ml_dtypes_arrays_keep_their_exact_bits(tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf16 = BF16_BITS.view(ml_dtypes.bfloat16)
    e4m3 = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn)
    with load(save(tmp_path / "t.st", {"bf16": bf16, "e4m3": e4m3[::-1]})) as trace:
        assert trace.info("bf16").dtype == "bfloat16" and trace.info("e4m3").dtype == "float8_e4m3fn"
        assert same_bits(next(trace.iter_raw_chunks("bf16", 100)), BF16_BITS)  # signalling NaN 0x7F81 included
        assert same_bits(next(trace.iter_raw_chunks("e4m3", 1000)), np.arange(256, dtype=np.uint8)[::-1])
