"""HDF5 traces: round trips, foreign files, lazy slicing, and lossless conversion both ways."""

from __future__ import annotations

import json
import os
import sys
import tracemalloc

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from numtrace import dtypes  # noqa: E402
from numtrace.errors import RecordingError, TapError, TraceFileError  # noqa: E402
from numtrace.formats import convert, load, open_writer, save
from numtrace.formats import writer as writer_module  # noqa: E402
from numtrace.formats.hdf5 import CONTAINER, HDF5Trace, HDF5Writer, _slabs  # noqa: E402
from numtrace.trace import FORMAT_KEY, ORDER_KEY  # noqa: E402

BF16_BITS = np.array([0x7FC1, 0xFFC0, 0x7F81, 0x7F80, 0xFF80, 0x8000, 0x0001, 0x7F7F, 0x3F80], np.uint16)


def raw_cases() -> dict[str, tuple[np.ndarray, str]]:
    """Stored bits of every recorded dtype at its extremes, in assorted shapes."""
    out: dict[str, tuple[np.ndarray, str]] = {"bool": (np.array([[True, False], [False, True]]), "bool")}
    for name in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"):
        info = np.iinfo(name)
        out[name] = (np.array([info.min, info.max, 0, 1], dtype=name), name)
    for name in ("float16", "float32", "float64"):
        info = np.finfo(name)
        values = np.array([np.nan, -np.nan, np.inf, -np.inf, -0.0, info.max, info.smallest_subnormal], dtype=name)
        out[name] = (values, name)
    for name in ("complex64", "complex128"):
        out[name] = (np.array([complex(np.nan, -0.0), complex(np.inf, 1)], dtype=name), name)
    out["bfloat16"] = (BF16_BITS.reshape(3, 3), "bfloat16")
    out["float8_e4m3fn"] = (np.arange(256, dtype=np.uint8).reshape(16, 16), "float8_e4m3fn")
    out["float8_e5m2"] = (np.arange(256, dtype=np.uint8), "float8_e5m2")
    out["scalar"] = (np.array(np.float32(2.5)), "float32")
    out["empty"] = (np.zeros((0, 4), np.uint16), "bfloat16")
    return out


def st_raw_cases() -> dict[str, tuple[np.ndarray, str]]:
    """raw_cases() less complex128: HDF5 holds it, safetensors has no code for it."""
    return {name: case for name, case in raw_cases().items() if case[1] != "complex128"}


def write_raw(path, cases, metadata=None) -> str:
    with open_writer(path) as writer:
        for name, (raw, dtype) in cases.items():
            writer.add_raw(name, raw, dtype)
        writer.metadata.update(metadata or {})
    return str(path)


def raw_of(trace, name) -> bytes:
    return b"".join(chunk.tobytes() for chunk in trace.iter_raw_chunks(name, 5))


def test_cases_cover_every_dtype():
    assert {dtype for _, dtype in raw_cases().values()} == set(dtypes.SAFETENSORS_CODES)


@pytest.mark.parametrize("suffix", [".h5", ".hdf5"])
def test_raw_round_trip_for_every_dtype(tmp_path, suffix):
    cases = raw_cases()
    path = write_raw(tmp_path / f"t{suffix}", cases, metadata={"model": "tiny"})
    with load(path) as trace:
        assert isinstance(trace, HDF5Trace)
        assert trace.order == list(cases) and trace.has_order and trace.user_metadata == {"model": "tiny"}
        for name, (raw, dtype) in cases.items():
            info = trace.info(name)
            assert (info.shape, info.dtype) == (raw.shape, dtype)
            assert raw_of(trace, name) == raw.tobytes(), name
            np.testing.assert_array_equal(trace.read(name), dtypes.decode(raw, dtype))


def test_layout_on_disk(tmp_path):
    big = np.arange(40_000, dtype=np.float32).reshape(200, 200)  # 160 KB: chunked + gzip
    path = save(
        tmp_path / "t.h5", {"enc/out": big, "small": np.ones(3, np.float32), "b": (np.ones(2, np.float32), "bfloat16")}
    )
    with h5py.File(path, "r") as f:
        assert f.attrs["numtrace.container"] == CONTAINER
        meta = json.loads(f["numtrace/metadata"][()])
        assert json.loads(meta[ORDER_KEY]) == ["enc/out", "small", "b"] and meta[FORMAT_KEY] == "1"
        assert sorted(f["stages"]) == ["000000", "000001", "000002"]
        first, small, b = f["stages/000000"], f["stages/000001"], f["stages/000002"]
        assert first.attrs["name"] == "enc/out" and first.compression == "gzip" and first.shuffle and first.chunks
        assert small.chunks is None and small.compression is None
        assert b.dtype == np.uint16 and b.attrs["dtype"] == "bfloat16" and b[()].tolist() == [0x3F80, 0x3F80]


def test_values_names_and_metadata_round_trip(tmp_path):
    names = ["a/b/c", "ünïcødé:名前", "y" * 5000, "/leading", "step.10", "step.2"]
    stages = {name: np.full((2, 2), i, np.float64).T for i, name in enumerate(names)}
    stages["zero_d"] = (np.array(-1.5, np.float32), "bfloat16")
    big_meta = {"config": "x" * 200_000, "n": 3}  # bigger than an HDF5 attribute could hold
    with load(save(tmp_path / "t.h5", stages, metadata=big_meta, order=list(reversed(stages)))) as trace:
        assert trace.order == list(reversed(stages))
        assert trace.metadata["config"] == "x" * 200_000 and trace.metadata["n"] == "3"
        for i, name in enumerate(names):
            assert trace.read(name).tolist() == [[i, i], [i, i]]
        assert trace.read("zero_d").shape == () and trace.read("zero_d") == -1.5


def test_chunked_reads_of_nd_datasets(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.normal(size=(5, 7, 300)).astype(np.float32)  # 42 KB
    big = rng.normal(size=(3, 50_000)).astype(np.float32)  # compressed
    with load(save(tmp_path / "t.h5", {"v": values, "big": big, "row": values[0, 0]})) as trace:
        small_sizes = (1, 7, 299, 300, 301, 2100, 10**6)
        for name, expected, sizes in (
            ("v", values, small_sizes),
            ("row", values[0, 0], small_sizes),
            ("big", big, (999, 50_001, 10**6)),
        ):
            for size in sizes:
                chunks = list(trace.iter_chunks(name, size))
                assert all(c.size == size for c in chunks[:-1]) and 0 < chunks[-1].size <= size
                np.testing.assert_array_equal(np.concatenate(chunks), expected.reshape(-1))


@pytest.mark.parametrize("shape", [(), (0,), (5,), (3, 4), (2, 3, 4), (1, 1, 7), (4, 0, 2), (2, 2, 2, 3)])
@pytest.mark.parametrize("limit", [1, 2, 3, 5, 6, 12, 100])
def test_slabs_cover_every_element_once_in_c_order(shape, limit):
    flat = np.arange(int(np.prod(shape))).reshape(shape)
    pieces = []
    for selection, block in _slabs(shape, limit):
        piece = flat[selection]
        assert piece.shape == block and 0 < piece.size <= limit
        pieces.append(piece.reshape(-1))
    got = np.concatenate(pieces) if pieces else np.empty(0, int)
    assert got.tolist() == list(range(flat.size))


def test_foreign_hdf5_file(tmp_path):
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f["decoder/final_proj"] = np.arange(12, dtype=np.float32).reshape(3, 4)
        f["encoder/step.10"] = np.ones(2, ">f8")  # big-endian
        f["encoder/step.2"] = np.array([True, False])
        f["scalar"] = np.int16(-7)
        f.create_dataset("packed", data=np.arange(100_000, dtype=np.int64), chunks=(1000,), compression="gzip")
        f["label"] = "not a tensor"
        f.create_dataset("nothing", dtype="f4")  # empty dataspace
        f.attrs["creator"] = "someone else"
    with load(path, role="candidate trace") as trace:
        assert trace.order == ["decoder/final_proj", "encoder/step.2", "encoder/step.10", "packed", "scalar"]
        assert not trace.has_order and trace.metadata == {}
        assert sorted(trace.skipped) == ["label", "nothing"]
        assert trace.info("encoder/step.10").dtype == "float64"
        assert trace.read("decoder/final_proj").tolist() == np.arange(12).reshape(3, 4).tolist()
        assert trace.read("encoder/step.10").tolist() == [1.0, 1.0]
        assert trace.read("encoder/step.2").tolist() == [True, False]
        assert trace.read("scalar") == -7 and trace.info("scalar").shape == ()
        assert np.concatenate(list(trace.iter_chunks("packed", 777))).tolist() == list(range(100_000))
    out = convert(path, tmp_path / "foreign.st")
    with load(out) as converted:
        assert converted.has_order and converted.order == [
            "decoder/final_proj",
            "encoder/step.2",
            "encoder/step.10",
            "packed",
            "scalar",
        ]
        assert converted.read("encoder/step.10").dtype == np.dtype("<f8")


def test_convert_safetensors_h5_safetensors_is_bit_exact(tmp_path):
    cases = st_raw_cases()
    meta = {"model": "tiny", "ünï": "cødé", "numtrace.backend": "torch"}
    order = list(reversed(cases))
    with open_writer(tmp_path / "a.safetensors") as writer:
        for name, (raw, dtype) in cases.items():
            writer.add_raw(name, raw, dtype)
        writer.close(order=order, metadata=meta)
    h5 = convert(tmp_path / "a.safetensors", tmp_path / "b.h5")
    back = convert(h5, tmp_path / "c.safetensors")
    with load(tmp_path / "a.safetensors") as a, load(h5) as b, load(back) as c:
        assert a.order == b.order == c.order == order
        assert a.metadata == b.metadata == c.metadata
        for name in order:
            assert a.info(name) == b.info(name) == c.info(name)
            assert raw_of(a, name) == raw_of(b, name) == raw_of(c, name) == cases[name][0].tobytes(), name
    # converting is deterministic: a second round trip reproduces the file byte for byte
    again = convert(convert(back, tmp_path / "d.h5"), tmp_path / "e.safetensors")
    assert (tmp_path / "c.safetensors").read_bytes() == open(again, "rb").read()


def test_convert_writes_natural_order_for_foreign_safetensors(tmp_path):
    from safetensors.numpy import save_file

    save_file({"step.10": np.ones(1), "step.2": np.zeros(1)}, str(tmp_path / "f.st"))
    with load(convert(tmp_path / "f.st", tmp_path / "f.h5")) as trace:
        assert trace.has_order and json.loads(trace.metadata[ORDER_KEY]) == ["step.2", "step.10"]


def test_writer_refusals_and_atomicity(tmp_path, monkeypatch):
    target = tmp_path / "t.h5"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with HDF5Writer(target) as writer:
            writer.add("x", np.ones(3))
            for bad in ("x", "", "__metadata__", "a\x00b", 7):
                with pytest.raises(TapError):
                    writer.add(bad, np.ones(1))
            with pytest.raises(TapError, match="too few"):
                writer.add_raw_chunks("short", (4,), "int8", [np.zeros(3, np.int8)])
            assert writer.names == ["x"]
            assert target.read_bytes() == b"old"
            raise RuntimeError("script failed")
    assert sorted(os.listdir(tmp_path)) == ["t.h5"] and target.read_bytes() == b"old"

    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(OSError(13, "Permission denied")))
    monkeypatch.setattr(writer_module, "_exchange", lambda first, second: False)  # the rename is what fails
    writer = HDF5Writer(target)
    writer.add("x", np.ones(3))
    with pytest.raises(RecordingError, match="Permission denied"):
        writer.close()
    assert sorted(os.listdir(tmp_path)) == ["t.h5"] and target.read_bytes() == b"old"
    monkeypatch.undo()

    with HDF5Writer(target) as writer:
        writer.add("x", np.ones(3))
        writer.add("short", np.zeros(0))
    assert sorted(os.listdir(tmp_path)) == ["t.h5"]
    with load(target) as trace:
        assert trace.order == ["x", "short"]


def test_empty_h5_trace(tmp_path):
    with load(save(tmp_path / "e.h5", {})) as trace:
        assert trace.order == [] and trace.has_order


def test_missing_h5py_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` fail
    for attempt in (lambda: load(tmp_path / "x.h5"), lambda: open_writer(tmp_path / "x.h5")):
        with pytest.raises(TraceFileError, match=r"pip install 'numtrace\[hdf5\]'"):
            attempt()


@pytest.mark.parametrize("suffix", [".h5", ".st"])
def test_reading_in_chunks_keeps_memory_bounded(tmp_path, suffix):
    values = np.random.default_rng(2).normal(size=(64, 65536)).astype(np.float32)  # 16 MiB
    path = save(tmp_path / f"big{suffix}", {"big": values})
    del values
    with load(path) as trace:
        tracemalloc.start()
        try:
            total = sum(float(chunk.sum(dtype=np.float64)) for chunk in trace.iter_chunks("big", 100_000))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert np.isfinite(total)
    assert peak < 4 * 1024 * 1024  # a few chunks of 400 KB, never the 16 MiB stage


def test_links_and_data_in_other_files_are_never_followed(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"do not read me!!")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["secret"] = np.arange(3)
    path = tmp_path / "links.h5"
    with h5py.File(path, "w") as f:
        f["a/x"] = np.ones(2)
        f["soft"] = h5py.SoftLink("/a/x")
        f["ext"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/secret")
        f.create_dataset("extstore", shape=(16,), dtype="u1", external=[(str(secret), 0, 16)])
        layout = h5py.VirtualLayout(shape=(3,), dtype="i8")
        layout[:] = h5py.VirtualSource(str(tmp_path / "other.h5"), "secret", shape=(3,))
        f.create_virtual_dataset("virt", layout)
    with load(path) as trace:
        assert trace.order == ["a/x"] and sorted(trace.skipped) == ["extstore", "virt"]
    # in numtrace's own layout such a stage makes the file unusable
    target = save(tmp_path / "t.h5", {"x": np.ones(2)})
    with h5py.File(target, "a") as f:
        f.create_dataset("stages/000001", shape=(16,), dtype="u1", external=[(str(secret), 0, 16)])
    with pytest.raises(TraceFileError, match="'stages/000001', which is not a plain numbered stage"):
        load(target)


def test_convert_refuses_names_the_destination_cannot_hold(tmp_path):
    from safetensors.numpy import save_file

    save_file({"ok": np.ones(1), "nul\x00name": np.ones(1)}, str(tmp_path / "odd.st"))
    with pytest.raises(TraceFileError, match=r"cannot convert .*odd\.st.*NUL"):
        convert(tmp_path / "odd.st", tmp_path / "odd.h5")
    assert sorted(os.listdir(tmp_path)) == ["odd.st"]  # nothing half-written


def test_an_hdf5_file_that_hangs_the_library_is_refused_in_bounded_time(monkeypatch):
    """A mutated file found by fuzzing made HDF5's C code spin for minutes; no signal stops C code."""
    from numtrace.formats import hdf5

    monkeypatch.setattr(hdf5, "PREFLIGHT_SECONDS", 1.0)
    sample = os.path.join(os.path.dirname(__file__), os.pardir, "data", "hdf5_hang_sample.h5")
    with pytest.raises(TraceFileError) as err:
        load(sample, role="candidate trace")
    message = str(err.value)
    assert message.startswith("candidate trace ") and "busy for over 1 s" in message
    assert "\n" not in message
